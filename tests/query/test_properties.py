"""Properties: any text gives a tree or a QuerySyntaxError; trees survive printing."""

from __future__ import annotations

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from mltrail.errors import QuerySyntaxError
from mltrail.query import (
    AGGREGATES,
    META_NAMESPACES,
    And,
    Attribute,
    Compare,
    Exists,
    Expr,
    Field,
    In,
    IsNull,
    Like,
    Meta,
    Metric,
    Not,
    Or,
    OrderBy,
    Param,
    Tag,
    parse,
    parse_order_by,
    to_text,
)

RUN_ATTRIBUTES = ["status", "name", "created", "run_id"]
_WORDS = r"""
and or not in like ilike is null true false AND Or NOT
= == != <> < <= > >= ( ) , ; . ` ' " \ - -- /* */ && || !
metrics.acc metrics.train/loss params.lr config.model.depth tags.team
git.dirty env.x system.y metadata.z status name created staus foo.bar
max( min( count( last( avg( metrics. `x` attributes.and
0 1 -1 0.5 -0.5 1e-3 1e999 9223372036854775808 .5 1. 'cv' "x" 'a\'b'
"""
SOUP = [*_WORDS.split(), "params.`a b`", "'; DROP TABLE runs; --", "\0", " ", "\n"]
MALICIOUS = [
    "'; DROP TABLE runs; --",
    "name = ''; DROP TABLE runs; --'",
    "name = '' or 1=1 --",
    "name = 'x\\' or 1=1",
    "metrics.`a` = 1 UNION SELECT * FROM runs",
    "status = 'a\0b'",
    "((((((((",
    "))))",
    "'''''",
    '"""',
    "`````",
    "a = " + "9" * 5000,
    "a = 1" + "e9" * 10,
    "(" * 5000 + "a" + ")" * 5000,
    "not " * 2500,
    "a = 1 and " * 999 + "a = 1",
    "x" * 10_001,
]


def check_parse(query: str, **kwargs: list[str]) -> None:
    """parse() returns a tree that prints back to itself, or raises QuerySyntaxError."""
    try:
        tree = parse(query, **kwargs)
    except QuerySyntaxError as err:
        assert err.reason
        assert err.query == query
        assert 0 <= err.position <= len(query)
        return
    if tree is None:
        assert not query.strip()
        return
    again = parse(to_text(tree), **kwargs)
    assert again == tree
    assert repr(again) == repr(tree)


@settings(max_examples=300, deadline=None)
@given(st.text())
@example("")
@example("\0")
def test_random_text(query: str) -> None:
    check_parse(query)
    check_parse(query, attributes=RUN_ATTRIBUTES)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(SOUP), max_size=30), st.sampled_from([" ", ""]))
def test_token_soup(tokens: list[str], sep: str) -> None:
    check_parse(sep.join(tokens))
    check_parse(sep.join(tokens), attributes=RUN_ATTRIBUTES)


@settings(max_examples=len(MALICIOUS), deadline=None)
@given(st.sampled_from(MALICIOUS))
def test_malicious_strings(query: str) -> None:
    check_parse(query)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 400), st.sampled_from(["(", "not ", "not (", "(not "]))
def test_deep_nesting(depth: int, opener: str) -> None:
    closer = ")" * opener.count("(")
    check_parse(opener * depth + "tags.x" + closer * depth)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-(10**400), max_value=10**400) | st.floats())
def test_numbers(number: int | float) -> None:
    check_parse(f"metrics.x > {number}")


# -- generated trees ---------------------------------------------------------------------

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
keys = st.from_regex(r"[A-Za-z0-9_/-]{1,6}(\.[A-Za-z0-9_/-]{1,6}){0,2}", fullmatch=True) | st.text(
    st.characters(blacklist_characters="\0"), min_size=1, max_size=12
)
texts = st.text(st.characters(blacklist_characters="\0"), max_size=12)
scalars = (
    texts
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
)
fields: st.SearchStrategy[Field] = st.one_of(
    st.builds(Attribute, identifiers),
    st.builds(Metric, keys, st.sampled_from(AGGREGATES)),
    st.builds(Param, keys),
    st.builds(Tag, keys),
    st.builds(Meta, st.sampled_from(META_NAMESPACES), keys),
)
predicates: st.SearchStrategy[Expr] = st.one_of(
    st.builds(Compare, fields, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), scalars),
    st.builds(In, fields, st.lists(scalars, min_size=1, max_size=4).map(tuple), st.booleans()),
    st.builds(Like, fields, texts, st.booleans(), st.booleans()),
    st.builds(IsNull, fields, st.booleans()),
    st.builds(Exists, fields),
)


def _connectives(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    operands = st.lists(children, min_size=2, max_size=4).map(tuple)
    return st.builds(And, operands) | st.builds(Or, operands) | st.builds(Not, children)


trees = st.recursive(predicates, _connectives, max_leaves=12)


def nesting(tree: Expr) -> int:
    """Levels of parentheses and 'not' that to_text() writes for ``tree``."""
    if isinstance(tree, Not):
        return 1 + nesting(tree.operand) + isinstance(tree.operand, And | Or)
    if isinstance(tree, And | Or):
        wrap = (And, Or) if isinstance(tree, And) else (Or,)
        return max(nesting(op) + isinstance(op, wrap) for op in tree.operands)
    return 0


@settings(max_examples=200, deadline=None)
@given(trees)
def test_round_trip(tree: Expr) -> None:
    assume(nesting(tree) <= 100)
    text = to_text(tree)
    assume(len(text) <= 10_000)
    again = parse(text)
    assert again == tree
    assert repr(again) == repr(tree)  # also 1 vs 1.0 vs True
    assert to_text(again) == text


@settings(max_examples=100, deadline=None)
@given(st.lists(st.builds(OrderBy, fields, st.booleans()), max_size=4))
def test_order_by_round_trip(order_by: list[OrderBy]) -> None:
    text = ", ".join(to_text(item) for item in order_by)
    assert parse_order_by(text) == order_by
    assert parse_order_by([to_text(item) for item in order_by]) == order_by


@settings(max_examples=200, deadline=None)
@given(trees, st.data())
def test_mutated_queries(tree: Expr, data: st.DataObject) -> None:
    """Near-valid text: a printed tree with a span cut out or a soup token put in."""
    text = to_text(tree)
    start = data.draw(st.integers(0, len(text)), label="start")
    end = data.draw(st.integers(start, min(len(text), start + 8)), label="end")
    insert = data.draw(st.sampled_from(["", *SOUP]), label="insert")
    check_parse(text[:start] + insert + text[end:])
