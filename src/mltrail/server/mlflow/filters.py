"""MLflow's search filter syntax, translated into our query language.

MLflow writes ``metrics.rmse < 1 and params.model = "tree" and attributes.status =
'FINISHED'``; ours is the same language with other attribute names (``name``,
``started``...), lower-case statuses and times in seconds. A filter is parsed with our
parser (which already reads MLflow's quoting, backticked keys, ``LIKE``/``ILIKE``/``IN``),
its fields and values are mapped, and the tree is printed back as our query text, so
nothing is ever spliced into SQL.

Experiments and registered models are few: their filters are evaluated in Python
(:func:`matches`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from mltrail.errors import InvalidValueError
from mltrail.query.ast import (
    And,
    Attribute,
    Compare,
    Exists,
    Expr,
    Field,
    In,
    IsNull,
    Like,
    Metric,
    Not,
    Or,
    OrderBy,
    Param,
    Tag,
)
from mltrail.query.parser import parse, parse_order_by
from mltrail.query.text import to_text

__all__ = [
    "DELETED_TAG",
    "STATUS_IN",
    "STATUS_OUT",
    "matches",
    "order_text",
    "run_query",
]

#: Our tag on a run MLflow's client deleted (MLflow deletes softly: restore undoes it).
DELETED_TAG = "mltrail.mlflow.deleted"

STATUS_OUT = {
    "running": "RUNNING",
    "finished": "FINISHED",
    "failed": "FAILED",
    "crashed": "FAILED",
    "killed": "KILLED",
}
STATUS_IN = {"RUNNING": "running", "SCHEDULED": "running", "FINISHED": "finished",
             "FAILED": "failed", "KILLED": "killed"}  # fmt: skip

# MLflow's run attributes -> ours
_RUN_ATTRIBUTES = {
    "run_name": "name",
    "status": "status",
    "start_time": "started",
    "end_time": "ended",
    "run_id": "id",
    "user_id": "user",
    "created": "created",
}
# MLflow's system tags kept in our run's own columns
_RUN_TAGS = {
    "mlflow.runName": "name",
    "mlflow.user": "user",
    "mlflow.parentRunId": "parent",
    "mlflow.note.content": "notes",
}
_TIMES = frozenset({"started", "ended", "created"})


def _run_field(field: Field) -> Field:
    if isinstance(field, Attribute):
        ours = _RUN_ATTRIBUTES.get(field.name.lower())
        if ours is None:
            raise InvalidValueError(
                f"MLflow run attribute {field.name!r} cannot be searched here",
                hint=f"searchable attributes: {', '.join(sorted(_RUN_ATTRIBUTES))}",
            )
        return Attribute(ours)
    if isinstance(field, Tag) and field.key in _RUN_TAGS:
        return Attribute(_RUN_TAGS[field.key])
    if isinstance(field, (Metric, Param, Tag)):
        return field
    raise InvalidValueError(
        f"{to_text(field)} cannot be searched through MLflow's API",
        hint="use metrics., params., tags. or attributes.",
    )


def _run_value(field: Field, value: Any) -> Any:
    if not isinstance(field, Attribute):
        return value
    if field.name == "status" and isinstance(value, str):
        status = STATUS_IN.get(value.upper())
        if status is None:
            raise InvalidValueError(
                f"run status {value!r} is not one of MLflow's",
                hint=f"one of {', '.join(STATUS_IN)}",
            )
        return status
    if field.name in _TIMES and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value / 1000.0  # MLflow's milliseconds, our seconds
    return value


def _run_expr(node: Expr) -> Expr:
    if isinstance(node, And):
        return And(tuple(_run_expr(o) for o in node.operands))
    if isinstance(node, Or):
        return Or(tuple(_run_expr(o) for o in node.operands))
    if isinstance(node, Not):
        return Not(_run_expr(node.operand))
    field = _run_field(node.field)
    if isinstance(node, Compare):
        return Compare(field, node.op, _run_value(field, node.value))
    if isinstance(node, In):
        return In(field, tuple(_run_value(field, v) for v in node.values), node.negated)
    if isinstance(node, Like):
        return Like(field, node.pattern, node.negated, node.case_insensitive)
    if isinstance(node, IsNull):
        return IsNull(field, node.negated)
    return Exists(field)


def run_query(
    filter_string: str | None, projects: Iterable[str] | None, view_type: str | None
) -> str | None:
    """Our query for MLflow's ``filter`` over ``projects`` (None: the caller scopes it)
    and ``run_view_type`` (ACTIVE_ONLY, DELETED_ONLY, ALL)."""
    parts: list[Expr] = []
    if filter_string and filter_string.strip():
        tree = parse(filter_string)
        if tree is not None:
            parts.append(_run_expr(tree))
    names = None if projects is None else sorted(set(projects))
    if names:
        parts.append(In(Attribute("project"), tuple(names)))
    view = (view_type or "ACTIVE_ONLY").upper()
    if view == "ACTIVE_ONLY":
        parts.append(IsNull(Tag(DELETED_TAG)))
    elif view == "DELETED_ONLY":
        parts.append(IsNull(Tag(DELETED_TAG), negated=True))
    elif view != "ALL":
        raise InvalidValueError(
            f"run_view_type {view_type!r} is not known",
            hint="one of ACTIVE_ONLY, DELETED_ONLY, ALL",
        )
    if not parts:
        return None
    return to_text(parts[0] if len(parts) == 1 else And(tuple(parts)))


def order_text(order_by: Iterable[str]) -> list[str]:
    """MLflow's ``order_by`` items (``metrics.rmse DESC``) as our sort keys."""
    out: list[str] = []
    for item in order_by:
        if not item or not item.strip():
            continue
        for key in parse_order_by(item):
            out.append(to_text(OrderBy(_run_field(key.field), key.descending)))
    return out


# -- filters on experiments and registered models, in Python ---------------------------


def _like(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


def _lookup(field: Field, attrs: Mapping[str, Any], tags: Mapping[str, str]) -> Any:
    if isinstance(field, Attribute):
        key = field.name.lower()
        if key not in attrs:
            raise InvalidValueError(
                f"attribute {field.name!r} cannot be searched here",
                hint=f"searchable attributes: {', '.join(sorted(attrs))}",
            )
        return attrs[key]
    if isinstance(field, Tag):
        return tags.get(field.key)
    raise InvalidValueError(
        f"{to_text(field)} cannot be searched here", hint="use attributes or tags."
    )


_COMPARE = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _holds(node: Expr, attrs: Mapping[str, Any], tags: Mapping[str, str]) -> bool:
    if isinstance(node, And):
        return all(_holds(o, attrs, tags) for o in node.operands)
    if isinstance(node, Or):
        return any(_holds(o, attrs, tags) for o in node.operands)
    if isinstance(node, Not):
        return not _holds(node.operand, attrs, tags)
    value = _lookup(node.field, attrs, tags)
    if isinstance(node, IsNull):
        return (value is None) != node.negated
    if isinstance(node, Exists):
        return bool(value)
    if value is None:
        # MLflow's client adds "tag.`mlflow.prompt.is_prompt` != 'true'" to every model
        # search: a missing tag differs from any value (and is in no list)
        if isinstance(node, Compare):
            return node.op == "!="
        return bool(getattr(node, "negated", False))
    if isinstance(node, Compare):
        other: Any = node.value
        if isinstance(value, (int, float)) and isinstance(other, str) and other.isdecimal():
            other = int(other)
        elif isinstance(value, str):
            other = str(other)
        try:
            return bool(_COMPARE[node.op](value, other))
        except TypeError:
            return False
    if isinstance(node, In):
        found = str(value) in {str(v) for v in node.values}
        return found != node.negated
    matched = _like(node.pattern, node.case_insensitive).fullmatch(str(value)) is not None
    return matched != node.negated


def matches(filter_string: str | None, attrs: Mapping[str, Any], tags: Mapping[str, str]) -> bool:
    """Whether an entity (its attributes by lower-case name, its tags) passes a filter."""
    if not filter_string or not filter_string.strip():
        return True
    tree = parse(filter_string)
    return tree is None or _holds(tree, attrs, tags)
