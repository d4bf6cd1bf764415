from __future__ import annotations

import pytest

from mltrail.errors import QuerySyntaxError
from mltrail.query import (
    And,
    Attribute,
    Compare,
    Exists,
    Expr,
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
)

RUN_ATTRIBUTES = ["status", "name", "project", "created", "duration", "user", "run_id"]
ISSUE_QUERY = """\
metrics.val_acc > 0.9 and (params.optimizer = 'adam' or params.optimizer in ('sgd', 'rmsprop'))
and tags.team = 'cv' and not tags.archived and status != 'crashed'
and created > '2026-01-01' and name like 'resnet%'
and max(metrics.val_acc) >= 0.95 and config.model.depth >= 50 and git.dirty = false"""


def same(got: object, expected: object) -> None:
    """Equal and of equal types all the way down (Python has True == 1 == 1.0)."""
    assert got == expected
    assert repr(got) == repr(expected)


a, b, c = (Compare(Attribute(n), "=", 1) for n in "abc")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", None),
        ("   \n\t ", None),
        ("metrics.val_acc > 0.9", Compare(Metric("val_acc"), ">", 0.9)),
        ("metrics.train/loss <= 1", Compare(Metric("train/loss"), "<=", 1)),
        ("min(metrics.loss) < 0.1", Compare(Metric("loss", "min"), "<", 0.1)),
        ("MAX( metrics.acc ) >= 1", Compare(Metric("acc", "max"), ">=", 1)),
        ("count(metrics.acc) > 10", Compare(Metric("acc", "count"), ">", 10)),
        ("last(metrics.acc) = 1", Compare(Metric("acc"), "=", 1)),
        ("metric.acc = 1", Compare(Metric("acc"), "=", 1)),
        ("params.lr = 0.01", Compare(Param("lr"), "=", 0.01)),
        ("config.model.depth >= 50", Compare(Param("model.depth"), ">=", 50)),
        ("param.x = 'a'", Compare(Param("x"), "=", "a")),
        ("params.`my key.with dots` = 1", Compare(Param("my key.with dots"), "=", 1)),
        ("metrics.`val acc` > 1", Compare(Metric("val acc"), ">", 1)),
        ("config.model.`the head`.size = 3", Compare(Param("model.the head.size"), "=", 3)),
        ("tags.team = 'cv'", Compare(Tag("team"), "=", "cv")),
        ('tags.team == "cv"', Compare(Tag("team"), "=", "cv")),
        ("tags.team <> 'cv'", Compare(Tag("team"), "!=", "cv")),
        ("system.gpu_count > 0", Compare(Meta("system", "gpu_count"), ">", 0)),
        ("git.dirty = false", Compare(Meta("git", "dirty"), "=", False)),
        ("git.dirty = TRUE", Compare(Meta("git", "dirty"), "=", True)),
        ("env.python = '3.11'", Compare(Meta("env", "python"), "=", "3.11")),
        ("metadata.framework = 'torch'", Compare(Meta("metadata", "framework"), "=", "torch")),
        ("Metrics.acc > 1", Compare(Metric("acc"), ">", 1)),
        ("status != 'crashed'", Compare(Attribute("status"), "!=", "crashed")),
        ("attributes.status = 'x'", Compare(Attribute("status"), "=", "x")),
        ("attr.and = 1", Compare(Attribute("and"), "=", 1)),
        ("created > '2026-01-01'", Compare(Attribute("created"), ">", "2026-01-01")),
        ("max = 1", Compare(Attribute("max"), "=", 1)),
        ("x = -0.5", Compare(Attribute("x"), "=", -0.5)),
        ("x = 1e-3", Compare(Attribute("x"), "=", 0.001)),
        ("x = 'it\\'s'", Compare(Attribute("x"), "=", "it's")),
        ("name like 'resnet%'", Like(Attribute("name"), "resnet%")),
        ("name LIKE 'a\\_b'", Like(Attribute("name"), "a\\_b")),
        ("name ilike 'RES%'", Like(Attribute("name"), "RES%", case_insensitive=True)),
        ("name not like 'x%'", Like(Attribute("name"), "x%", negated=True)),
        ("name NOT ILIKE 'x%'", Like(Attribute("name"), "x%", True, True)),
        ("params.opt in ('sgd', 'rmsprop')", In(Param("opt"), ("sgd", "rmsprop"))),
        ("params.opt in ('sgd')", In(Param("opt"), ("sgd",))),
        ("params.n not in (1, 2.5, true)", In(Param("n"), (1, 2.5, True), negated=True)),
        ("tags.x is null", IsNull(Tag("x"))),
        ("tags.x IS NOT NULL", IsNull(Tag("x"), negated=True)),
        ("tags.archived", Exists(Tag("archived"))),
        ("not tags.archived", Not(Exists(Tag("archived")))),
        ("not not tags.archived", Not(Not(Exists(Tag("archived"))))),
        ("max(metrics.acc)", Exists(Metric("acc", "max"))),
        ("not a = 1", Not(a)),
        ("a = 1 and b = 1", And((a, b))),
        ("a = 1 AND b = 1 and c = 1", And((a, b, c))),
        ("a = 1 or b = 1 or c = 1", Or((a, b, c))),
        ("a = 1 or b = 1 and c = 1", Or((a, And((b, c))))),
        ("a = 1 and b = 1 or c = 1", Or((And((a, b)), c))),
        ("(a = 1 or b = 1) and c = 1", And((Or((a, b)), c))),
        ("not a = 1 and b = 1", And((Not(a), b))),
        ("not (a = 1 and b = 1)", Not(And((a, b)))),
        ("(a = 1 and b = 1) and c = 1", And((And((a, b)), c))),
        ("((a = 1))", a),
        ("a=1 and(b=1)", And((a, b))),
        ("tags.a and tags.b", And((Exists(Tag("a")), Exists(Tag("b"))))),
        ("(tags.a)", Exists(Tag("a"))),
    ],
)
def test_parse(query: str, expected: Expr | None) -> None:
    same(parse(query), expected)


def test_issue_example() -> None:
    same(
        parse(ISSUE_QUERY, attributes=RUN_ATTRIBUTES),
        And(
            (
                Compare(Metric("val_acc"), ">", 0.9),
                Or(
                    (
                        Compare(Param("optimizer"), "=", "adam"),
                        In(Param("optimizer"), ("sgd", "rmsprop")),
                    )
                ),
                Compare(Tag("team"), "=", "cv"),
                Not(Exists(Tag("archived"))),
                Compare(Attribute("status"), "!=", "crashed"),
                Compare(Attribute("created"), ">", "2026-01-01"),
                Like(Attribute("name"), "resnet%"),
                Compare(Metric("val_acc", "max"), ">=", 0.95),
                Compare(Param("model.depth"), ">=", 50),
                Compare(Meta("git", "dirty"), "=", False),
            )
        ),
    )


def test_attributes_are_matched_case_insensitively() -> None:
    same(parse("STATUS = 'x'", attributes=["status"]), Compare(Attribute("status"), "=", "x"))
    same(parse("Status = 'x'"), Compare(Attribute("Status"), "=", "x"))


def test_namespaces_restrict_prefixes() -> None:
    query = "type = 'model' and metadata.framework = 'torch'"
    same(
        parse(query, attributes=["type"], namespaces=["metadata"]),
        And(
            (
                Compare(Attribute("type"), "=", "model"),
                Compare(Meta("metadata", "framework"), "=", "torch"),
            )
        ),
    )
    with pytest.raises(ValueError, match="unknown namespaces"):
        parse("a = 1", namespaces=["metric"])


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        parse(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        parse("a = 1", attributes="status")


def error(query: str, **kwargs: object) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query, **kwargs)  # type: ignore[arg-type]
    err = info.value
    assert err.query == query
    assert 0 <= err.position <= len(query)
    assert str(err).endswith(" " * err.position + "^")
    return err


@pytest.mark.parametrize(
    ("query", "reason", "position"),
    [
        ("metrics.x >", "expected a value after '>', got the end of the query", 11),
        ("metrics.x >   ", "expected a value after '>'", 11),
        ("metrics.x > and y", "expected a value after '>', got 'and'", 12),
        ("metrics.x > metrics.y", "comparing two fields is not supported", 12),
        ("metrics.x > (1)", "expected a value after '>', got '('", 12),
        ("x = null", "use 'is null' to compare with null", 4),
        ("x != null", "use 'is not null'", 5),
        ("x < null", "cannot compare with null using '<'", 4),
        ("x in (1, null)", "null cannot be in a list", 9),
        ("x in ()", "expected a value after '('", 6),
        ("x in (1,)", "expected a value after ','", 8),
        ("x in (1 2)", "expected ',' or ')' in the list, got '2'", 8),
        ("x in (1", "missing ')' to close the '(' from position 5", 7),
        ("x in 1", "expected '(' after 'in', got '1'", 5),
        ("x not", "expected 'in', 'like' or 'ilike' after 'not'", 5),
        ("x not = 1", "expected 'in', 'like' or 'ilike' after 'not', got '='", 6),
        ("x like 1", "expected a quoted pattern after 'like'", 7),
        ("x ilike", "expected a quoted pattern after 'ilike'", 7),
        ("x is", "expected 'null' after 'is'", 4),
        ("x is not 1", "expected 'null' after 'is not', got '1'", 9),
        ("x is true", "expected 'null' after 'is'", 5),
        ("x lik 'a%'", "expected an operator after 'x', got 'lik' (did you mean 'like'?)", 2),
        ("x 'a'", "expected an operator after 'x', got \"'a'\"", 2),
        ("a=1and b=1", "invalid number '1and'", 2),
        ("x = 1 y = 2", "expected 'and' or 'or' before 'y'", 6),
        ("x = 1)", "unmatched ')'", 5),
        ("(x = 1", "missing ')' to close the '(' from position 0", 6),
        ("((x = 1) y", "expected 'and', 'or' or ')' before 'y'", 9),
        ("()", "expected a field, got ')'", 1),
        ("x = 1 and", "expected a condition after 'and'", 9),
        ("x = 1 or ", "expected a condition after 'or'", 8),
        ("not", "expected a condition after 'not'", 3),
        ("0.9 < metrics.x", "expected a field, got '0.9'", 0),
        ("= 1", "expected a field, got '='", 0),
        ("true", "expected a field, got 'true'", 0),
        ("metrics = 1", "expected '.' and a key after 'metrics'", 8),
        ("config", "expected '.' and a key after 'config'", 6),
        ("metrix.acc > 1", "unknown namespace 'metrix' (did you mean 'metrics'?", 0),
        ("foo.bar = 1", "unknown namespace 'foo'", 0),
        ("attributes.a.b = 1", "attribute names are plain identifiers", 0),
        ("attributes.`a b` = 1", "attribute names are plain identifiers", 0),
        ("avg(metrics.x) > 1", "unknown function 'avg'", 0),
        ("mux(metrics.x) > 1", "did you mean 'max'?", 0),
        ("max(params.x) > 1", "max() takes a metric, e.g. max(metrics.loss)", 4),
        ("max(x) > 1", "max() takes a metric", 4),
        ("max(max(metrics.x)) > 1", "max() takes a metric", 4),
        ("max(last(metrics.x)) > 1", "max() takes a metric", 4),
        ("max() > 1", "max() takes a metric", 4),
        ("max( metrics.x ) y", "expected an operator after 'max( metrics.x )', got 'y'", 17),
        ("max(metrics.x > 1", "expected ')' after max(metrics.x, got '>'", 14),
        ("'; DROP TABLE runs; --", "unterminated string", 0),
        ("name = ''; DROP TABLE runs; --", "unexpected character ';'", 9),
        ("(" * 101 + "x" + ")" * 101, "query nests too deeply (more than 100 levels)", 100),
        ("not " * 101 + "x", "query nests too deeply", 400),
        ("(not " * 51 + "x" + ")" * 51, "query nests too deeply", 250),
    ],
)
def test_parse_errors(query: str, reason: str, position: int) -> None:
    err = error(query)
    assert reason in err.reason
    assert err.position == position


def test_deepest_nesting_is_accepted() -> None:
    assert parse("(" * 100 + "x" + ")" * 100) == Exists(Attribute("x"))
    assert parse("not " * 99 + "(x)") is not None


@pytest.mark.parametrize(
    ("query", "reason", "position"),
    [
        ("staus = 'x'", "unknown attribute 'staus' (did you mean 'status'?); attributes: ", 0),
        ("status = 1 and zzz", "unknown attribute 'zzz'; attributes: created, duration, name", 15),
        ("attributes.staus = 1", "did you mean 'status'?", 0),
    ],
)
def test_unknown_attribute(query: str, reason: str, position: int) -> None:
    err = error(query, attributes=RUN_ATTRIBUTES)
    assert reason in err.reason
    assert err.position == position
    assert "project, run_id, status, user" in err.reason


def test_no_attributes_allowed() -> None:
    assert "no attributes here" in error("status = 1", attributes=[]).reason


@pytest.mark.parametrize(
    ("query", "position"),
    [("metrics.acc > 1", 0), ("x = 1 or max(metrics.acc) > 1", 13), ("config.a = 1", 0)],
)
def test_namespace_not_allowed(query: str, position: int) -> None:
    err = error(query, namespaces=["metadata", "tags"])
    assert "fields cannot be used here (namespaces: metadata, tags)" in err.reason
    assert err.position == position


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ([], []),
        ("", []),
        (["  "], []),
        (["metrics.val_acc desc"], [OrderBy(Metric("val_acc"), True)]),
        (
            ["metrics.val_acc desc", "created", "params.lr ASC"],
            [OrderBy(Metric("val_acc"), True), OrderBy(Attribute("created")), OrderBy(Param("lr"))],
        ),
        ("max(metrics.a) DESC, tags.t", [OrderBy(Metric("a", "max"), True), OrderBy(Tag("t"))]),
        (("config.`a b`",), [OrderBy(Param("a b"))]),
        (["desc"], [OrderBy(Attribute("desc"))]),
        (["desc desc"], [OrderBy(Attribute("desc"), True)]),
    ],
)
def test_parse_order_by(order_by: str | list[str], expected: list[OrderBy]) -> None:
    same(parse_order_by(order_by), expected)


@pytest.mark.parametrize(
    ("order_by", "reason", "position"),
    [
        ("metrics.a desc desc", "expected 'asc', 'desc' or ',' after 'metrics.a desc'", 15),
        ("metrics.a up", "expected 'asc', 'desc' or ',' after 'metrics.a', got", 10),
        ("metrics.a,", "expected a field to sort by after ','", 10),
        (", metrics.a", "expected a field, got ','", 0),
        ("metrics.a > 1", "expected 'asc', 'desc' or ','", 10),
        ("staus", "did you mean 'status'?", 0),
        ("'x'", "expected a field, got", 0),
    ],
)
def test_parse_order_by_errors(order_by: str, reason: str, position: int) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_order_by([order_by], attributes=RUN_ATTRIBUTES)
    assert reason in info.value.reason
    assert info.value.position == position


def test_order_by_items_must_be_strings() -> None:
    with pytest.raises(TypeError):
        parse_order_by([1])  # type: ignore[list-item]
