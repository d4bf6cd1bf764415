"""/api/v1 routes: read-side views of runs for the web UI (and any other client).

- ``GET /runs:table``: one page of a search, each run cut down to the columns asked
  for (``column=params.lr&column=metrics.loss``, the query language's field names), so a
  table of 100,000 runs moves only what it shows.
- ``GET /runs:keys``: the param, metric, tag and captured-metadata keys of a project,
  read from its latest runs (a column picker's choices).
- ``GET /runs:groups``: the runs of a search grouped by one field's value, each group
  with its count and the query that selects it.
- ``GET /runs:export``: the same table as CSV, every matching run, streamed.
- ``GET /runs/{run_id}/series``: metric series for a chart: only the steps in a range,
  reduced on the server to about ``points`` points (largest-triangle-three-buckets over
  each bucket's first, min, max and last point) with each bucket's min and max (a band).

Every column, group and sort key is a field of the query language, so what the table
shows is what a search can filter and sort by.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from mltrail.entities import RunRecord
from mltrail.errors import InvalidValueError
from mltrail.query import ast as q
from mltrail.query import parse, to_text
from mltrail.series import Series
from mltrail.server.auth import param_scope, require, run_scope
from mltrail.store.sql.search import RUN_ATTRIBUTES
from mltrail.wire import to_wire

__all__ = ["reduce_series", "router"]

router = APIRouter()

_READ = [require("reader", param_scope("project"))]
MAX_COLUMNS = 200
MAX_KEYS = 32  # series per request
_META_ROOT = {"system": "hardware", "git": "git", "env": "env", "metadata": None}
# captured metadata too big or too noisy to offer as columns
_META_SKIP = {"packages", "errors", "energy", "pid"}
_GIT_SKIP = {"diff", "untracked", "untracked_content"}


def _store(request: Request) -> Any:
    return request.app.state.mltrail.store


# -- columns -----------------------------------------------------------------------------


def parse_column(text: str) -> q.Field:
    """A column named like a field of the query language (``params.lr``, ``status``)."""
    tree = parse(text, attributes=RUN_ATTRIBUTES)
    if not isinstance(tree, q.Exists):
        raise InvalidValueError(
            f"column {text!r} is not a field",
            hint="name a field: params.lr, metrics.loss, max(metrics.acc), tags.team, "
            "system.cpu.model, git.commit, status, duration",
        )
    return tree.field


def _attribute(record: RunRecord, name: str) -> Any:
    values = {
        "id": record.id, "run_id": record.id, "name": record.name, "status": record.status,
        "project": record.project, "created": record.created_at, "started": record.started_at,
        "ended": record.ended_at, "duration": record.duration, "user": record.user,
        "group": record.group, "job_type": record.job_type, "parent": record.parent_id,
        "notes": record.notes, "exit_code": record.exit_code,
    }  # fmt: skip
    return values.get(name)


def cell(record: RunRecord, field: q.Field) -> Any:
    """The value of ``field`` for one run (None when it has none)."""
    if isinstance(field, q.Attribute):
        return _attribute(record, field.name)
    if isinstance(field, q.Param):
        return record.config.get(field.key)
    if isinstance(field, q.Tag):
        return record.tags.get(field.key)
    if isinstance(field, q.Metric):
        summary = record.metrics.get(field.key)
        if summary is None:
            return None
        return {"last": summary.last, "min": summary.min, "max": summary.max,
                "count": summary.count}[field.agg]  # fmt: skip
    root = _META_ROOT[field.namespace]
    node: Any = record.metadata.get(root) if root else record.metadata
    for part in field.key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _all_fields(record: RunRecord, names: dict[tuple[str, str], str]) -> dict[str, Any]:
    """Every param, metric (last value) and tag of a run, keyed by column name."""
    out: dict[str, Any] = {}
    for kind, items in (
        ("params", record.config.items()),
        ("metrics", ((k, s.last) for k, s in record.metrics.items())),
        ("tags", record.tags.items()),
    ):
        for key, value in items:
            name = names.get((kind, key))
            if name is None:
                field: q.Field = q.Param(key) if kind == "params" else (
                    q.Metric(key) if kind == "metrics" else q.Tag(key)
                )  # fmt: skip
                name = names[(kind, key)] = to_text(field)
            out[name] = value
    return out


def _row(record: RunRecord, columns: list[tuple[str, q.Field]]) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "status": record.status,
        "project": record.project,
        "cells": {name: cell(record, field) for name, field in columns},
    }


def _columns(texts: list[str] | None) -> list[tuple[str, q.Field]]:
    texts = texts or []
    if len(texts) > MAX_COLUMNS:
        raise InvalidValueError(f"{len(texts)} columns asked for; at most {MAX_COLUMNS}")
    out = []
    for text in texts:
        field = parse_column(text)
        out.append((to_text(field), field))
    return out


class Runs:
    """The runs a view reads: those of ``project`` matching ``query`` (both optional)."""

    def __init__(
        self, request: Request, project: str | None = None, query: str | None = None
    ) -> None:
        self.store = _store(request)
        self.project = project
        self.query = query or None
        self.tree = parse(query, attributes=RUN_ATTRIBUTES) if query else None

    def latest(self, n: int) -> list[RunRecord]:
        runs: list[RunRecord] = self.store.search_runs(self.project, self.query, limit=n)
        return runs

    def count(self, query: str) -> int:
        return int(self.store.count_runs(self.project, query))


class Table(Runs):
    """What a table of runs shows (the query parameters of ``runs:table`` and ``:export``)."""

    def __init__(
        self,
        request: Request,
        project: str | None = None,
        query: str | None = None,
        order_by: Annotated[list[str] | None, Query()] = None,
        column: Annotated[list[str] | None, Query(description="a field, e.g. params.lr")] = None,
    ) -> None:
        super().__init__(request, project, query)
        self.order_by = order_by or None
        self.columns = _columns(column)

    def page(self, limit: int, offset: int = 0) -> list[RunRecord]:
        runs: list[RunRecord] = self.store.search_runs(
            self.project, self.query, order_by=self.order_by, limit=limit, offset=offset
        )
        return runs


@router.get("/runs:table", dependencies=_READ)
def runs_table(
    table: Annotated[Table, Depends()],
    all_columns: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """One page of runs matching ``query``, each with ``id``, ``name``, ``status``,
    ``project`` and ``cells``: the value of every ``column`` (repeatable; names as in the
    query language), or with ``all_columns`` every param, metric (last value) and tag."""
    columns = table.columns
    runs = table.page(limit, offset)
    rows = [_row(r, columns) for r in runs]
    if all_columns:
        names: dict[tuple[str, str], str] = {}
        for row, record in zip(rows, runs, strict=True):
            row["cells"].update(_all_fields(record, names))
    return {"offset": offset, "rows": to_wire(rows)}


# -- keys and groups -----------------------------------------------------------------------


def _flatten(node: Any, prefix: str, out: set[str], depth: int = 0) -> None:
    if isinstance(node, dict) and depth < 4:
        for key, value in node.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out, depth + 1)
    elif prefix and not isinstance(node, (list, dict)):
        out.add(prefix)


def _meta_keys(records: list[RunRecord]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"system": set(), "git": set(), "env": set(), "metadata": set()}
    for record in records:
        meta = record.metadata
        _flatten(meta.get("hardware"), "", found["system"])
        git = meta.get("git")
        if isinstance(git, dict):
            _flatten({k: v for k, v in git.items() if k not in _GIT_SKIP}, "", found["git"])
        env = meta.get("env")
        if isinstance(env, dict):
            _flatten({k: v for k, v in env.items() if k != "variables"}, "", found["env"])
        rest = {k: v for k, v in meta.items() if k not in _META_SKIP | {"hardware", "git", "env"}}
        _flatten(rest, "", found["metadata"])
    return found


@router.get("/runs:keys", dependencies=_READ)
def run_keys(
    runs: Annotated[Runs, Depends()], sample: Annotated[int, Query(ge=1, le=5000)] = 500
) -> dict[str, Any]:
    """Column names a table of these runs can show, by kind (``params``, ``metrics``,
    ``tags``, ``system``, ``git``, ``env``, ``metadata``, ``attributes``), read from the
    latest ``sample`` runs matching ``query``."""
    records = runs.latest(sample)
    params: set[str] = set()
    metrics: set[str] = set()
    tags: set[str] = set()
    for r in records:
        params.update(r.config)
        metrics.update(r.metrics)
        tags.update(r.tags)

    def names(make: Any, keys: set[str]) -> list[str]:
        return [to_text(make(k)) for k in sorted(keys)]

    meta = _meta_keys(records)
    return {
        "sampled": len(records),
        "attributes": [a for a in RUN_ATTRIBUTES if a != "run_id"],
        "params": names(q.Param, params),
        "metrics": names(q.Metric, metrics),
        "tags": names(q.Tag, tags),
        **{ns: names(lambda k, ns=ns: q.Meta(ns, k), keys) for ns, keys in meta.items()},
    }


def _groupable(field: q.Field) -> q.Field:
    if isinstance(field, q.Metric):
        raise InvalidValueError(
            "runs cannot be grouped by a metric (its values are continuous)",
            hint="group by a param, a tag, a captured field or status/user/group/job_type",
        )
    return field


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and value == value  # not NaN


@router.get("/runs:groups", dependencies=_READ)
def run_groups(
    runs: Annotated[Runs, Depends()],
    by: Annotated[str, Query(description="the field to group by, e.g. params.optimizer")],
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    sample: Annotated[int, Query(ge=1, le=10_000)] = 2000,
) -> dict[str, Any]:
    """The runs matching ``query`` grouped by the value of ``by``: the ``limit`` values
    most frequent among the latest ``sample`` runs, then the runs with any other value
    and those without one. Each group has its ``count`` and the ``query`` selecting it."""
    field = _groupable(parse_column(by))
    seen = Counter(v for r in runs.latest(sample) if _scalar(v := cell(r, field)))
    values = [v for v, _ in seen.most_common(limit)]

    def group(cond: q.Expr) -> dict[str, Any]:
        text = to_text(cond if runs.tree is None else q.And((runs.tree, cond)))
        return {"query": text, "count": runs.count(text)}

    groups = [{"value": v, **group(q.Compare(field, "=", v))} for v in values]
    present = q.IsNull(field, negated=True)
    rest: q.Expr = q.And((present, q.In(field, tuple(values), negated=True))) if values else present
    return {
        "by": to_text(field), "groups": to_wire(groups),
        "other": group(rest), "missing": group(q.IsNull(field)),
    }  # fmt: skip


# -- CSV -------------------------------------------------------------------------------------


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, sort_keys=True)
    return value


@router.get("/runs:export", dependencies=_READ, response_model=None)
def export_runs(table: Annotated[Table, Depends()]) -> StreamingResponse:
    """Every run matching ``query`` as CSV: ``id``, ``name``, ``status`` and each
    ``column`` (default: every param, metric and tag of the first page of runs)."""
    page = 1000
    first = table.page(page)  # errors (a bad query) are raised here, before the response
    columns = table.columns
    if not columns:
        names: dict[tuple[str, str], str] = {}
        seen: dict[str, None] = {}
        for record in first:
            seen.update(dict.fromkeys(_all_fields(record, names)))
        columns = [(name, parse_column(name)) for name in seen]

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["id", "name", "status", *(name for name, _ in columns)])
        batch, offset = first, 0
        while batch:
            for record in batch:
                values = [cell(record, field) for _, field in columns]
                writer.writerow([record.id, record.name, record.status, *map(_csv_value, values)])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(batch) < page:
                break
            offset += page
            batch = table.page(page, offset)

    name = table.project or "runs"
    filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    headers = {"Content-Disposition": f'attachment; filename="{filename}-runs.csv"'}
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=headers)


# -- series ------------------------------------------------------------------------------------


def _bucket_min_max(values: Any) -> tuple[float, float, int, int]:
    """Min and max of a slice ignoring NaN, with their offsets (C-speed when no NaN)."""
    total = sum(values)
    if total == total:
        lo, hi = min(values), max(values)
        return lo, hi, values.index(lo), values.index(hi)
    finite = [v for v in values if v == v]
    if not finite:
        nan = float("nan")
        return nan, nan, 0, 0
    lo, hi = min(finite), max(finite)
    return lo, hi, values.index(lo), values.index(hi)


def reduce_series(series: Series, points: int) -> tuple[Series, list[float], list[float]]:
    """About ``points`` points of ``series`` that keep its shape, with each one's band.

    The series is cut into ``points - 2`` buckets of consecutive points; each bucket's
    candidates are its first, min, max and last point, and largest-triangle-three-buckets
    picks the candidate making the largest triangle with the point picked before and the
    next bucket's mean. The first and last points are kept. Returns the points and, for
    each, its bucket's min and max (NaN ignored). Slices, ``min`` and ``max`` run in C, so
    a 1,000,000-point series takes tens of milliseconds.
    """
    n = len(series)
    steps, values, times = series.steps, series.values, series.timestamps
    if n <= max(points, 2):
        return series, list(values), list(values)
    buckets = max(1, points - 2)
    width = (n - 2) / buckets
    bounds = [1 + int(b * width) for b in range(buckets)] + [n - 1]
    picks = [0]
    lows, highs = [values[0]], [values[0]]
    prev_x, prev_y = float(steps[0]), values[0]
    for b in range(buckets):
        a, z = bounds[b], bounds[b + 1]
        if z <= a:
            continue
        chunk = values[a:z]
        lo, hi, i_lo, i_hi = _bucket_min_max(chunk)
        if b + 1 < buckets and bounds[b + 2] > z:
            nxt = values[z : bounds[b + 2]]
            avg_x = (steps[z] + steps[bounds[b + 2] - 1]) / 2
            avg_y = sum(nxt) / len(nxt)
        else:
            avg_x, avg_y = float(steps[n - 1]), values[n - 1]
        if avg_y != avg_y:
            avg_y = (lo + hi) / 2
        best, best_area = a, -1.0
        for i in dict.fromkeys((a, a + i_lo, a + i_hi, z - 1)):
            area = abs(
                (prev_x - avg_x) * (values[i] - prev_y) - (prev_x - steps[i]) * (avg_y - prev_y)
            )
            if area > best_area:
                best, best_area = i, area
        picks.append(best)
        lows.append(lo)
        highs.append(hi)
        prev_x, prev_y = float(steps[best]), values[best]
    picks.append(n - 1)
    lows.append(values[n - 1])
    highs.append(values[n - 1])
    out = Series.empty()
    out.steps.extend(steps[i] for i in picks)
    out.values.extend(values[i] for i in picks)
    out.timestamps.extend(times[i] for i in picks)
    return out, lows, highs


def _at_steps(other: Series, steps: Any) -> list[float | None]:
    """The value of ``other`` at each step (its latest point at or before it)."""
    out: list[float | None] = []
    for step in steps:
        i = bisect_right(other.steps, step) - 1
        out.append(other.values[i] if i >= 0 else None)
    return out


@router.get("/runs/{run_id}/series", dependencies=[require("reader", run_scope())])
def run_series(
    request: Request,
    run_id: str,
    key: Annotated[list[str], Query(description="a metric key (repeatable)")],
    points: Annotated[int, Query(ge=10, le=20_000)] = 1000,
    step_min: int | None = None,
    step_max: int | None = None,
    x_key: Annotated[str | None, Query(description="a metric to use as the x axis")] = None,
) -> dict[str, Any]:
    """Metric series for a chart: for each ``key``, the points with steps in
    ``[step_min, step_max]`` (and one either side), reduced to about ``points`` points
    (see ``reduce_series``): ``steps``, ``values``, ``times``, and the min (``lo``) and
    max (``hi``) of the points each one stands for; ``x``: the value of metric ``x_key``
    at each step. ``count`` is the length of the whole series, ``in_range`` of the part
    asked for."""
    if len(key) > MAX_KEYS:
        raise InvalidValueError(f"{len(key)} keys asked for; at most {MAX_KEYS} per request")
    store = _store(request)
    x_series = store.metric_history(run_id, x_key) if x_key else None
    out = []
    for k in dict.fromkeys(key):
        full: Series = store.metric_history(run_id, k)
        n = len(full)
        lo = 0 if step_min is None else max(0, bisect_left(full.steps, step_min) - 1)
        hi = n if step_max is None else min(n, bisect_right(full.steps, step_max) + 1)
        part = full if (lo, hi) == (0, n) else full.slice(lo, hi)
        reduced, lows, highs = reduce_series(part, points)
        out.append({
            "key": k,
            "count": n,
            "in_range": len(part),
            "first_step": full.steps[0] if n else None,
            "last_step": full.steps[-1] if n else None,
            "steps": list(reduced.steps),
            "values": list(reduced.values),
            "times": list(reduced.timestamps),
            "lo": lows,
            "hi": highs,
            "x": _at_steps(x_series, reduced.steps) if x_series is not None else None,
        })  # fmt: skip
    return {"run_id": run_id, "series": to_wire(out)}
