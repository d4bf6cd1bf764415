from __future__ import annotations

import pytest

from mltrail.errors import QuerySyntaxError
from mltrail.query.lexer import MAX_QUERY_LENGTH, tokenize


def kinds_values(query: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for token in tokenize(query)[:-1]:
        out.append((token.kind, token.segments if token.kind == "name" else token.value))
    return out


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status", [("name", ("status",))]),
        ("metrics.train/loss", [("name", ("metrics", "train/loss"))]),
        ("metrics.val-acc", [("name", ("metrics", "val-acc"))]),
        ("config.model.depth", [("name", ("config", "model", "depth"))]),
        ("config.layers.0.size", [("name", ("config", "layers", "0", "size"))]),
        ("params.`my key.with dots`", [("name", ("params", "my key.with dots"))]),
        ("params.`a\\`b\\\\c`", [("name", ("params", "a`b\\c"))]),
        ("params.a.`b c`.d", [("name", ("params", "a", "b c", "d"))]),
        ("tags.in", [("name", ("tags", "in"))]),
        ("AND", [("keyword", "and")]),
        ("Not", [("keyword", "not")]),
        ("NULL true FALSE", [("keyword", "null"), ("keyword", "true"), ("keyword", "false")]),
        ("'it\\'s'", [("string", "it's")]),
        ('"say \\"hi\\""', [("string", 'say "hi"')]),
        ("'a\"b'", [("string", 'a"b')]),
        ("'\\n\\t\\r\\\\'", [("string", "\n\t\r\\")]),
        ("'100\\%'", [("string", "100\\%")]),
        ("'a\\_b'", [("string", "a\\_b")]),
        ("''", [("string", "")]),
        ("'été ✓'", [("string", "été ✓")]),
        ("42", [("number", 42)]),
        ("-7", [("number", -7)]),
        ("0.5", [("number", 0.5)]),
        ("-0.5", [("number", -0.5)]),
        ("1e-3", [("number", 0.001)]),
        ("2E+2", [("number", 200.0)]),
        ("1.5e3", [("number", 1500.0)]),
        ("9223372036854775807", [("number", 2**63 - 1)]),
        ("-9223372036854775808", [("number", -(2**63))]),
        ("= == != <> < <= > >=", [("op", o) for o in ["=", "=", "!=", "!=", "<", "<=", ">", ">="]]),
        ("x>-1", [("name", ("x",)), ("op", ">"), ("number", -1)]),
        ("(a,b)", [("(", ""), ("name", ("a",)), (",", ""), ("name", ("b",)), (")", "")]),
        ("max(metrics.x)", [("name", ("max",)), ("(", ""), ("name", ("metrics", "x")), (")", "")]),
    ],
)
def test_tokens(query: str, expected: list[tuple[str, object]]) -> None:
    got = kinds_values(query)
    assert got == expected
    assert [type(v) for _, v in got] == [type(v) for _, v in expected]


def test_positions_and_eof() -> None:
    tokens = tokenize("  a = 'b'   ")
    assert [(t.kind, t.pos, t.text) for t in tokens] == [
        ("name", 2, "a"),
        ("op", 4, "="),
        ("string", 6, "'b'"),
        ("eof", 9, ""),
    ]


@pytest.mark.parametrize(
    ("query", "reason", "position"),
    [
        ("name = 'abc", "unterminated string", 7),
        ('name = "abc', "unterminated string", 7),
        ("name = 'abc\\", "unterminated string", 7),
        ("params.`abc", "unterminated key", 7),
        ("params.``", "empty key in backticks", 7),
        ("name = 'a\\qb'", "unknown escape '\\q'", 9),
        ("params.`a\\nb`", "unknown escape '\\n' in key", 9),
        ("a = 1\0", "NUL character is not allowed", 5),
        ("'\0'", "NUL character is not allowed", 1),
        ("a ; b", "unexpected character ';'", 2),
        ("a && b", "(use 'and')", 2),
        ("a || b", "(use 'or')", 2),
        ("!a", "(use 'not' or '!=')", 0),
        ("a = .5", "unexpected character '.'", 4),
        ("`a` = 1", "backticks quote a key", 0),
        ("a = - 1", "unexpected character '-'", 4),
        ("a = 1abc", "invalid number '1abc'", 4),
        ("a = 1.2.3", "invalid number '1.2.3'", 4),
        ("a = 1.", "invalid number '1.'", 4),
        ("a = 1e", "invalid number '1e'", 4),
        ("a = 1e999", "number out of range", 4),
        ("a = 9223372036854775808", "integer out of range", 4),
        ("a = -9223372036854775809", "integer out of range", 4),
        ("a = " + "9" * 5000, "integer out of range", 4),
        ("metrics.", "expected a key after '.'", 8),
        ("metrics. x", "expected a key after '.', got ' '", 8),
        ("metrics.x. = 1", "expected a key after '.'", 10),
        ("metrics.é", "expected a key after '.', got 'é'", 8),
        ("x" * (MAX_QUERY_LENGTH + 1), "query is too long (10,001 characters", MAX_QUERY_LENGTH),
    ],
)
def test_lex_errors(query: str, reason: str, position: int) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        tokenize(query)
    assert reason in info.value.reason
    assert info.value.position == position
    assert info.value.query == query


def test_longest_query_is_accepted() -> None:
    query = "a = 1" + " " * (MAX_QUERY_LENGTH - 5)
    assert len(tokenize(query)) == 4
