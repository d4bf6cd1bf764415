"""Compiling the query language (:mod:`mltrail.query`) to SQLAlchemy expressions.

Never string-spliced: every literal is a bound parameter. Rules, identical on SQLite
and PostgreSQL:

- ``metrics.k`` is the last value (``min(...)``, ``max(...)``, ``count(...)`` the
  summary's); a NaN last value matches no comparison.
- ``params.k``/``config.k``: a number literal compares with the param's number (params
  logged as strings that read as numbers count as numbers), a string literal with its
  text, ``true``/``false`` with a logged boolean.
- ``tags.k`` compare as text; ``git.k``, ``env.k``, ``system.k`` (the captured
  hardware), ``metadata.k`` read the run's captured metadata (JSON).
- ``x != v`` needs ``x`` to exist; ``not x = v`` also matches runs without ``x``.
- ``like`` is case-sensitive, ``ilike`` is not; ``\\%`` and ``\\_`` match themselves.
- ``created > '2026-01-01'`` takes ISO dates/times (UTC) or epoch seconds.

How it runs: every condition is an ``EXISTS`` the planner checks run by run, except
that :func:`compile_search` and :func:`compile_count` inner-join the summary row of a
metric that a top-level ``and`` compares with a number (for a page: the first sort key's
metric). The database can then start from ``ix_metric_summary_key_last_run``: a page
sorted on that metric reads runs in sort order and stops after the page instead of
sorting every match. The answer is the same (one summary row per run and key).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    and_,
    cast,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy import type_coerce as coerce

from mltrail.errors import InvalidValueError, QuerySyntaxError
from mltrail.query import (
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
    Param,
    Tag,
    parse,
    parse_order_by,
)
from mltrail.store.sql import schema as s

__all__ = [
    "ARTIFACT_ATTRIBUTES",
    "RUN_ATTRIBUTES",
    "RunSearch",
    "compile_artifact_where",
    "compile_count",
    "compile_order",
    "compile_search",
    "compile_where",
    "decode_cursor",
    "encode_cursor",
]

R = s.runs.c
RUN_ATTRIBUTES = (
    "id", "run_id", "name", "status", "project", "created", "started", "ended", "duration",
    "user", "group", "job_type", "parent", "notes", "exit_code", "sweep",
)  # fmt: skip
_META_ROOT = {"git": "git", "env": "env", "system": "hardware", "metadata": None}
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
}


def _time(value: Any, query: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            return dt.timestamp()
    raise QuerySyntaxError(
        f"{value!r} is not a date: use 'YYYY-MM-DD', 'YYYY-MM-DDTHH:MM:SS' or epoch seconds",
        query,
        0,
    )


class _Compiler:
    def __init__(self, query: str, dialect: str) -> None:
        self.query = query
        self.dialect = dialect
        # metric key -> its summary row joined to runs (compile_search): sort keys read it
        self.joined: dict[str, Any] = {}

    # -- fields -> SQL ----------------------------------------------------------------

    def attribute(self, name: str) -> Any:
        cols: dict[str, Any] = {
            "id": R.id, "run_id": R.id, "name": R.name, "status": R.status,
            "created": R.created_at, "started": R.started_at, "ended": R.ended_at,
            "user": R.user, "group": R.group_name, "job_type": R.job_type,
            "parent": R.parent_id, "notes": R.notes, "exit_code": R.exit_code,
        }  # fmt: skip
        if name == "project":  # an alias: the outer query may join projects itself
            proj = s.projects.alias("attr_project")
            return select(proj.c.name).where(proj.c.id == R.project_id).scalar_subquery()
        if name == "duration":
            return func.coalesce(R.ended_at, R.heartbeat_at) - R.started_at
        if name == "sweep":  # the sweep a trial's run belongs to (null for other runs)
            trials = s.sweep_trials.c
            return select(trials.sweep_id).where(trials.run_id == R.id).scalar_subquery()
        return cols[name]

    def meta(self, field: Meta) -> Any:
        root = _META_ROOT[field.namespace]
        path = tuple(p for p in ([root] if root else []) + field.key.split("."))
        doc = (
            cast(R.metadata_json, JSON)
            if self.dialect == "postgresql"
            else coerce(R.metadata_json, JSON)
        )
        return doc[path]

    def compare_value(self, field: Field, op: str, value: Any) -> ColumnElement[bool]:
        fn = _OPS[op]
        if isinstance(field, Attribute):
            col = self.attribute(field.name)
            if field.name in ("created", "started", "ended"):
                value = _time(value, self.query)
            return fn(col, value)  # type: ignore[no-any-return]
        if isinstance(field, Metric):
            return self._metric(field, lambda col: fn(col, value), value)
        if isinstance(field, Param):
            return self._exists_param(field.key, lambda p: fn(self._param_col(p, value), value))
        if isinstance(field, Tag):
            text = value if isinstance(value, str) else json.dumps(value)
            return self._exists_tag(field.key, lambda t: fn(t.value, text))
        if isinstance(field, Meta):
            return fn(self._meta_typed(field, value), value)  # type: ignore[no-any-return]
        raise InvalidValueError(f"cannot compare {field!r}")

    def _meta_typed(self, field: Meta, value: Any) -> Any:
        node = self.meta(field)
        if isinstance(value, bool):
            return node.as_boolean()
        if isinstance(value, (int, float)):
            return node.as_float()
        return node.as_string()

    def _param_col(self, p: Any, value: Any) -> Any:
        if isinstance(value, (int, float)):  # booleans are handled by expr()
            return p.value_num
        return p.value_text

    def _metric(self, field: Metric, cond: Any, value: Any = None) -> ColumnElement[bool]:
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and not numeric:
            raise QuerySyntaxError(
                f"metrics are numbers: compare metrics.{field.key} with a number", self.query, 0
            )
        m = s.metric_summary.c
        col = _agg_column(m, field.agg)
        return exists().where((m.run_id == R.id) & (m.key == field.key) & cond(col))

    def _exists_param(self, key: str, cond: Any) -> ColumnElement[bool]:
        p = s.params.c
        return exists().where((p.run_id == R.id) & (p.key == key) & cond(p))

    def _exists_tag(self, key: str, cond: Any) -> ColumnElement[bool]:
        t = s.tags.c
        return exists().where((t.run_id == R.id) & (t.key == key) & cond(t))

    # -- expressions ------------------------------------------------------------------

    def expr(self, node: Expr) -> ColumnElement[bool]:
        if isinstance(node, And):
            return and_(*(self.expr(o) for o in node.operands))
        if isinstance(node, Or):
            return or_(*(self.expr(o) for o in node.operands))
        if isinstance(node, Not):
            return not_(self.expr(node.operand))
        if isinstance(node, Compare):
            if isinstance(node.field, Param) and isinstance(node.value, bool):
                if node.op not in ("=", "!="):
                    raise QuerySyntaxError("booleans compare only with = and !=", self.query, 0)
                text = json.dumps(node.value)
                return self._exists_param(
                    node.field.key,
                    lambda p: p.value_json == text if node.op == "=" else p.value_json != text,
                )
            return self.compare_value(node.field, node.op, node.value)
        if isinstance(node, In):
            inner = or_(*(self.compare_value(node.field, "=", v) for v in node.values))
            if not node.negated:
                return inner
            if isinstance(node.field, (Metric, Param, Tag)):  # exists, and not one of them
                return and_(self.exists(node.field), not_(inner))
            return not_(inner)
        if isinstance(node, Like):
            return self.like(node)
        if isinstance(node, IsNull):
            present = self.exists(node.field)
            return present if node.negated else not_(present)
        if isinstance(node, Exists):
            return self.exists(node.field)
        raise InvalidValueError(f"cannot compile {node!r}")

    def like(self, node: Like) -> ColumnElement[bool]:
        def match(col: Any) -> Any:
            if node.case_insensitive:
                return col.ilike(node.pattern, escape="\\")
            return col.like(node.pattern, escape="\\")

        field = node.field
        if isinstance(field, Attribute):
            cond = match(self.attribute(field.name))
        elif isinstance(field, Param):
            cond = self._exists_param(field.key, lambda p: match(p.value_text))
        elif isinstance(field, Tag):
            cond = self._exists_tag(field.key, lambda t: match(t.value))
        elif isinstance(field, Meta):
            cond = match(self.meta(field).as_string())
        else:
            raise QuerySyntaxError("like needs text: metrics are numbers", self.query, 0)
        if not node.negated:
            return cond  # type: ignore[no-any-return]
        if isinstance(field, (Param, Tag)):
            inner = (
                self._exists_param(field.key, lambda p: not_(match(p.value_text)))
                if isinstance(field, Param)
                else self._exists_tag(field.key, lambda t: not_(match(t.value)))
            )
            return inner
        negated: ColumnElement[bool] = not_(cond)
        return negated

    def exists(self, field: Field) -> ColumnElement[bool]:
        if isinstance(field, Metric):
            m = s.metric_summary.c
            return exists().where((m.run_id == R.id) & (m.key == field.key))
        if isinstance(field, Param):
            return self._exists_param(field.key, lambda p: true())
        if isinstance(field, Tag):
            return self._exists_tag(field.key, lambda t: true())
        if isinstance(field, Meta):
            return self.meta(field).as_string().is_not(None)  # type: ignore[no-any-return]
        if isinstance(field, Attribute):
            col = self.attribute(field.name)
            return col.is_not(None)  # type: ignore[no-any-return]
        return false()

    # -- ordering ---------------------------------------------------------------------

    def order_key(self, field: Field) -> Any:
        if isinstance(field, Attribute):
            return self.attribute(field.name)
        if isinstance(field, Metric):
            joined = self.joined.get(field.key)
            if joined is not None:
                return _agg_column(joined.c, field.agg)
            m = s.metric_summary.c
            col = _agg_column(m, field.agg)
            return select(col).where((m.run_id == R.id) & (m.key == field.key)).scalar_subquery()
        if isinstance(field, Param):
            p = s.params.c
            return (
                select(p.value_num).where((p.run_id == R.id) & (p.key == field.key))
                .scalar_subquery()
            )  # fmt: skip
        if isinstance(field, Tag):
            t = s.tags.c
            return (
                select(t.value).where((t.run_id == R.id) & (t.key == field.key)).scalar_subquery()
            )
        assert isinstance(field, Meta)
        return self.meta(field).as_string()


def _agg_column(cols: Any, agg: str) -> Any:
    return {
        "last": cols.last_value,
        "min": cols.min_value,
        "max": cols.max_value,
        "count": cols.num_points,
    }[agg]


def compile_where(query: str | None, dialect: str) -> ColumnElement[bool] | None:
    """The SQL condition for ``query`` (None for an empty query)."""
    if not query or not query.strip():
        return None
    tree = parse(query, attributes=RUN_ATTRIBUTES)
    if tree is None:
        return None
    return _Compiler(query, dialect).expr(tree)


def compile_order(order_by: list[str] | str | None, dialect: str) -> list[Any]:
    """ORDER BY terms, missing values last, then newest first and id for stability."""
    terms: list[Any] = []
    compiler = _Compiler(str(order_by), dialect)
    for ob in parse_order_by(order_by or [], attributes=RUN_ATTRIBUTES):
        key = compiler.order_key(ob.field)
        terms.append(key.desc().nulls_last() if ob.descending else key.asc().nulls_last())
    terms += [R.created_at.desc(), R.id]
    return terms


@dataclass(frozen=True)
class RunSearch:
    """A compiled search: tables to inner-join to ``runs``, the condition, the order."""

    joins: tuple[tuple[Any, ColumnElement[bool]], ...]
    where: ColumnElement[bool] | None
    order: list[Any]


def _strict_metric_compare(node: Expr, key: str | None = None) -> tuple[Compare, Metric] | None:
    """``node`` and its metric if it compares ``metrics.<key>`` (any key when None, any
    aggregate) with a number.

    Such a condition holds only for runs that have a summary row of that key whose
    compared column is not NULL (every operator is false on NULL), so it can be applied
    to that row inner-joined to the run.
    """
    if (
        isinstance(node, Compare)
        and isinstance(node.field, Metric)
        and (key is None or node.field.key == key)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return node, node.field
    return None


def compile_search(query: str | None, order_by: list[str] | str | None, dialect: str) -> RunSearch:
    """``query`` and ``order_by`` compiled together for one page of runs.

    The same rows in the same order as ``compile_where`` + ``compile_order``. When the
    first sort key is a metric that a top-level ``and`` of the query compares with a
    number, that metric's summary row is inner-joined (one row per run and key) and the
    comparison applied to it, instead of an ``EXISTS`` and a per-run lookup: the planner
    can then read runs in sort order from ``ix_metric_summary_key_last_run`` and stop
    after a page. When the compared column is the sort column it is never NULL there, so
    the "missing values last" rule needs no ``NULLS LAST`` (which would keep PostgreSQL
    from reading the index backwards). Other mentions of the metric keep their ``EXISTS``.
    """
    tree = _parse(query)
    keys = parse_order_by(order_by or [], attributes=RUN_ATTRIBUTES)
    compiler = _Compiler(query or str(order_by), dialect)
    first = keys[0].field if keys else None
    sort_metric = first.key if isinstance(first, Metric) else None
    joins, where, non_null = _joined(tree, sort_metric, compiler)
    terms: list[Any] = []
    for ob in keys:
        key = compiler.order_key(ob.field)
        f = ob.field
        if isinstance(f, Metric) and f.key in compiler.joined and f.agg in non_null:
            terms.append(key.desc() if ob.descending else key.asc())  # never NULL here
        else:
            terms.append(key.desc().nulls_last() if ob.descending else key.asc().nulls_last())
    terms += [R.created_at.desc(), R.id]
    return RunSearch(joins, where, terms)


def compile_count(query: str | None, dialect: str) -> RunSearch:
    """``query`` for counting: the first metric a top-level ``and`` compares with a
    number is joined (as in :func:`compile_search`), so the count can start from the
    runs ``ix_metric_summary_key_last_run`` holds instead of checking every run."""
    tree = _parse(query)
    compiler = _Compiler(query or "", dialect)
    compared = (_strict_metric_compare(c) for c in _conjuncts(tree))
    key = next((found[1].key for found in compared if found), None)
    joins, where, _ = _joined(tree, key, compiler)
    return RunSearch(joins, where, [])


def _parse(query: str | None) -> Expr | None:
    return parse(query, attributes=RUN_ATTRIBUTES) if query and query.strip() else None


def _conjuncts(tree: Expr | None) -> tuple[Expr, ...]:
    return () if tree is None else tree.operands if isinstance(tree, And) else (tree,)


def _joined(
    tree: Expr | None, key: str | None, compiler: _Compiler
) -> tuple[tuple[tuple[Any, ColumnElement[bool]], ...], ColumnElement[bool] | None, set[str]]:
    """(joins, condition, aggregates that cannot be NULL) with metric ``key``'s summary
    row joined when a top-level conjunct compares it with a number."""
    joins: list[tuple[Any, ColumnElement[bool]]] = []
    conds: list[ColumnElement[bool]] = []
    non_null: set[str] = set()
    for node in _conjuncts(tree):
        found = _strict_metric_compare(node, key) if key is not None else None
        if found is None or key is None:
            conds.append(compiler.expr(node))
            continue
        cmp, metric = found
        if not joins:
            row = s.metric_summary.alias("metric_row")
            joins.append((row, (row.c.run_id == R.id) & (row.c.key == key)))
            compiler.joined[key] = row
        conds.append(_OPS[cmp.op](_agg_column(joins[0][0].c, metric.agg), cmp.value))
        non_null.add(metric.agg)
    where = None if not conds else conds[0] if len(conds) == 1 else and_(*conds)
    return tuple(joins), where, non_null


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        offset = json.loads(raw)["o"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidValueError(
            f"invalid cursor {cursor!r}", hint="pass the next_cursor of a previous page"
        ) from exc
    if not isinstance(offset, int) or offset < 0:
        raise InvalidValueError(f"invalid cursor {cursor!r}")
    return offset


ARTIFACT_ATTRIBUTES = (
    "name", "type", "version", "alias", "created", "size", "files", "run_id", "project",
    "reference",
)  # fmt: skip


class _ArtifactCompiler:
    """The same language over artifact versions: attributes and ``metadata.X``."""

    def __init__(self, query: str, dialect: str) -> None:
        self.query = query
        self.dialect = dialect
        self.a = s.artifacts.c
        self.v = s.artifact_versions.c

    def column(self, field: Field) -> Any:
        if isinstance(field, Meta):
            doc = (
                cast(self.v.metadata_json, JSON)
                if self.dialect == "postgresql"
                else coerce(self.v.metadata_json, JSON)
            )
            return doc[tuple(field.key.split("."))]
        assert isinstance(field, Attribute)
        if field.name == "project":
            proj = s.projects.alias("attr_project")
            return select(proj.c.name).where(proj.c.id == self.a.project_id).scalar_subquery()
        return {
            "name": self.a.name, "type": self.a.type, "version": self.v.version,
            "created": self.v.created_at, "size": self.v.size, "files": self.v.file_count,
            "run_id": self.v.run_id, "reference": self.v.reference,
        }[field.name]  # fmt: skip

    def _alias(self, cond: Callable[[Any], Any]) -> ColumnElement[bool]:
        al = s.artifact_aliases.c
        return exists().where(
            (al.artifact_id == self.v.artifact_id) & (al.version == self.v.version) & cond(al.alias)
        )

    def compare(self, field: Field, op: str, value: Any) -> ColumnElement[bool]:
        fn = _OPS[op]
        if isinstance(field, Attribute) and field.name == "alias":
            if value == "latest":  # not stored: the highest version of the artifact
                other = s.artifact_versions.alias("latest_version")
                top = (
                    select(func.max(other.c.version))
                    .where(other.c.artifact_id == self.v.artifact_id)
                    .scalar_subquery()
                )
                latest = self.v.version == top
                return latest if op == "=" else not_(latest)
            return self._alias(lambda a: fn(a, value))
        if isinstance(field, Meta):
            node = self.column(field)
            if isinstance(value, bool):
                col = node.as_boolean()
            elif isinstance(value, (int, float)):
                col = node.as_float()
            else:
                col = node.as_string()
            return fn(col, value)  # type: ignore[no-any-return]
        if isinstance(field, Attribute) and field.name == "created":
            value = _time(value, self.query)
        if not isinstance(field, (Attribute, Meta)):
            raise QuerySyntaxError(
                "artifacts have attributes and metadata.X fields only", self.query, 0
            )
        return fn(self.column(field), value)  # type: ignore[no-any-return]

    def expr(self, node: Expr) -> ColumnElement[bool]:
        if isinstance(node, And):
            return and_(*(self.expr(o) for o in node.operands))
        if isinstance(node, Or):
            return or_(*(self.expr(o) for o in node.operands))
        if isinstance(node, Not):
            return not_(self.expr(node.operand))
        if isinstance(node, Compare):
            return self.compare(node.field, node.op, node.value)
        if isinstance(node, In):
            inner = or_(*(self.compare(node.field, "=", v) for v in node.values))
            return not_(inner) if node.negated else inner
        if isinstance(node, Like):
            col = self.column(node.field)
            col = col.as_string() if isinstance(node.field, Meta) else col
            m = (col.ilike if node.case_insensitive else col.like)(node.pattern, escape="\\")
            return not_(m) if node.negated else m  # type: ignore[no-any-return]
        if isinstance(node, (IsNull, Exists)):
            col = self.column(node.field)
            col = col.as_string() if isinstance(node.field, Meta) else col
            present = col.is_not(None)
            if isinstance(node, Exists):
                return present  # type: ignore[no-any-return]
            return present if node.negated else not_(present)  # type: ignore[no-any-return]
        raise InvalidValueError(f"cannot compile {node!r}")


def compile_artifact_where(query: str | None, dialect: str) -> ColumnElement[bool] | None:
    if not query or not query.strip():
        return None
    tree = parse(query, attributes=ARTIFACT_ATTRIBUTES, namespaces=("metadata",))
    return None if tree is None else _ArtifactCompiler(query, dialect).expr(tree)
