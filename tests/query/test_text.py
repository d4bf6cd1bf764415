from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mltrail.query
from mltrail.query import (
    And,
    Attribute,
    Compare,
    Exists,
    Expr,
    Field,
    In,
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


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("metrics.val_acc>0.9", "metrics.val_acc > 0.9"),
        ("last(metrics.a) == 1", "metrics.a = 1"),
        ("MAX(metric.a) <> 1", "max(metrics.a) != 1"),
        ("config.model.depth >= 5e1", "params.model.depth >= 50.0"),
        ("params.`a.b` = 1", "params.a.b = 1"),
        ("params.`my key` = 1", "params.`my key` = 1"),
        ("params.a.`b c` = 1", "params.`a.b c` = 1"),
        ("params.`a\\`b` = 1", "params.`a\\`b` = 1"),
        ("metrics.train/loss < 1", "metrics.train/loss < 1"),
        ('tags.t = "it\'s"', "tags.t = 'it\\'s'"),
        ("tags.t = 'a\\nb\\\\'", "tags.t = 'a\\nb\\\\'"),
        ("name like 'a\\_%'", "name like 'a\\\\_%'"),
        ("name NOT ILIKE 'a'", "name not ilike 'a'"),
        ("x IN (1,2.0,'a',TRUE)", "x in (1, 2.0, 'a', true)"),
        ("x not in (false)", "x not in (false)"),
        ("x is NOT null", "x is not null"),
        ("NOT tags.archived", "not tags.archived"),
        ("not (a = 1 or b = 1)", "not (a = 1 or b = 1)"),
        ("a = 1 or b = 1 and c = 1", "a = 1 or b = 1 and c = 1"),
        ("(a = 1 or b = 1) and c = 1", "(a = 1 or b = 1) and c = 1"),
        ("(a = 1 and b = 1) and c = 1", "(a = 1 and b = 1) and c = 1"),
        ("((a = 1 or b = 1)) or c = 1", "(a = 1 or b = 1) or c = 1"),
        ("(a = 1 and b = 1) or c = 1", "a = 1 and b = 1 or c = 1"),
        ("attributes.status = 1", "status = 1"),
        ("attributes.and = 1", "attributes.and = 1"),
        ("attr.metrics = 1", "attributes.metrics = 1"),
        ("x = 1e-05", "x = 1e-05"),
        ("x = 1e16", "x = 1e+16"),
        ("x = -0.0", "x = -0.0"),
    ],
)
def test_canonical_text(query: str, canonical: str) -> None:
    tree = parse(query)
    assert tree is not None
    assert to_text(tree) == canonical
    assert parse(canonical) == tree


@pytest.mark.parametrize(
    ("node", "text"),
    [
        (Metric("a", "min"), "min(metrics.a)"),
        (Meta("system", "gpu name"), "system.`gpu name`"),
        (OrderBy(Metric("a"), descending=True), "metrics.a desc"),
        (OrderBy(Attribute("created")), "created"),
    ],
)
def test_fields_and_order_by(node: Field | OrderBy, text: str) -> None:
    assert to_text(node) == text
    if isinstance(node, OrderBy):
        assert parse_order_by([text]) == [node]


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (Compare(Attribute("a b"), "=", 1), "not an identifier"),
        (Compare(Param(""), "=", 1), "cannot be empty"),
        (Compare(Tag("x"), "=", float("nan")), "has no query literal"),
        (Compare(Tag("x"), "=", float("inf")), "has no query literal"),
    ],
)
def test_unprintable_trees(node: Expr, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_text(node)


def test_not_a_node() -> None:
    with pytest.raises(TypeError, match="not a query node"):
        to_text("a = 1")  # type: ignore[arg-type]


def test_connectives_need_operands() -> None:
    with pytest.raises(ValueError):
        And((Exists(Tag("a")),))
    with pytest.raises(ValueError):
        Or(())
    with pytest.raises(ValueError):
        In(Tag("a"), ())
    assert Not(Exists(Tag("a"))) == Not(Exists(Tag("a")))


def test_public_names() -> None:
    exported = {name for name in dir(mltrail.query) if not name.startswith("_")}
    modules = {"annotations", "ast", "lexer", "parser", "text"}
    assert set(mltrail.query.__all__) == exported - modules


def test_import_uses_only_the_standard_library() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import mltrail.query\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'mltrail'}))\n"
    )
    src = str(Path(mltrail.query.__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"
