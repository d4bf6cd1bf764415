"""Export a project to open formats: Parquet, CSV or JSON Lines.

>>> from mltrail.export import export_project
>>> export_project(mltrail.Client(), "mnist", "out/", fmt="parquet")  # doctest: +SKIP

Five tables, one file each (``<table>.parquet``, ``.csv`` or ``.jsonl``) in ``out``:

=============  ================================================================
``runs``       id, name, project, status, user, group, job_type, parent_id,
               notes, created_at, started_at, ended_at, duration, exit_code,
               exit_reason, tags (JSON object)
``params``     run_id, key, value (JSON text: the type survives), type
``metrics``    run_id, key, last, min, max, count, last_step, last_timestamp
``history``    run_id, key, step, value, timestamp: every point of every metric
``artifacts``  run_id, project, name, version, type, digest, size, files,
               aliases (JSON list), created_at, metadata (JSON object)
=============  ================================================================

Times are Unix seconds (UTC, float). Floats that are NaN or infinite are written as
such in Parquet, empty in CSV, and as the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"`` in JSON Lines. ``schema.json`` beside the files lists every column
and its type. Parquet needs pyarrow (``pip install 'mltrail[parquet]'``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import ExtraNotInstalled, InvalidValueError

if TYPE_CHECKING:
    from mltrail.client.client import Client

__all__ = ["FORMATS", "SCHEMA", "ExportReport", "export_project"]

FORMATS = ("parquet", "csv", "jsonl")

SCHEMA: dict[str, list[tuple[str, str]]] = {
    table: [(c.split(":")[0], c.split(":")[1]) for c in columns.split()]
    for table, columns in {
        "runs": "id:string name:string project:string status:string user:string group:string "
        "job_type:string parent_id:string notes:string created_at:float64 started_at:float64 "
        "ended_at:float64 duration:float64 exit_code:int64 exit_reason:string tags:json",
        "params": "run_id:string key:string value:json type:string",
        "metrics": "run_id:string key:string last:float64 min:float64 max:float64 count:int64 "
        "last_step:int64 last_timestamp:float64",
        "history": "run_id:string key:string step:int64 value:float64 timestamp:float64",
        "artifacts": "run_id:string project:string name:string version:int64 type:string "
        "digest:string size:int64 files:int64 aliases:json created_at:float64 metadata:json",
    }.items()
}
"""Each table's columns and types (``json``: a JSON text column)."""


Rows = Iterator[dict[str, Any]]


@dataclass(frozen=True)
class ExportReport:
    files: dict[str, Path]
    rows: dict[str, int]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "string"}.get(type(value), "json")


def _record(table: str, *values: Any) -> dict[str, Any]:
    return dict(zip((name for name, _ in SCHEMA[table]), values, strict=True))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _rows(client: Client, project: str, on_run: Callable[[str], None]) -> dict[str, Rows]:
    runs = client.list_runs(project)
    store: Any = client.store

    def runs_rows() -> Rows:
        for r in runs:
            yield _record("runs", r.id, r.name, r.project, r.status, r.user, r.group, r.job_type,
                          r.parent_id, r.notes, r.created_at, r.started_at, r.ended_at,
                          r.duration, r.exit_code, r.exit_reason, _json(r.tags))  # fmt: skip

    def params_rows() -> Rows:
        for r in runs:
            for k, v in sorted(r.config.items()):
                yield _record("params", r.id, k, _json(v), _type_name(v))

    def metrics_rows() -> Rows:
        for r in runs:
            for k, m in sorted(r.metrics.items()):
                yield _record("metrics", r.id, k, m.last, m.min, m.max, m.count, m.last_step,
                              m.last_timestamp)  # fmt: skip

    def history_rows() -> Rows:
        for r in runs:
            on_run(r.name)
            for k in sorted(r.metrics):
                for p in client.metric_history(r.id, k):
                    yield _record("history", r.id, k, p.step, p.value, p.timestamp)

    def artifact_rows() -> Rows:
        for r in runs if hasattr(store, "run_artifacts") else ():
            for a in store.run_artifacts(r.id)["out"]:
                yield _record("artifacts", r.id, a.project, a.name, a.version, a.type, a.digest,
                              a.size, a.file_count, _json(list(a.aliases)), a.created_at,
                              _json(a.metadata))  # fmt: skip

    return {"runs": runs_rows(), "params": params_rows(), "metrics": metrics_rows(),
            "history": history_rows(), "artifacts": artifact_rows()}  # fmt: skip


def export_project(
    client: Client,
    project: str,
    out: str | Path,
    *,
    fmt: str = "parquet",
    on_run: Callable[[str], None] | None = None,
) -> ExportReport:
    """Write ``project``'s runs, params, metric summaries, histories and artifacts to
    ``out`` (created if missing) in ``fmt``; ``on_run(name)`` is called as each run's
    history is written (progress)."""
    if fmt not in FORMATS:
        raise InvalidValueError(f"unknown export format {fmt!r}", hint=f"use one of {FORMATS}")
    if project not in {p.name for p in client.list_projects()}:
        from mltrail.errors import ProjectNotFound

        raise ProjectNotFound(
            f"no project named {project!r}", hint="see the projects with: mltrail projects ls"
        )
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    write = {"parquet": _parquet, "csv": _csv, "jsonl": _jsonl}[fmt]
    files: dict[str, Path] = {}
    counts: dict[str, int] = {}
    for table, rows in _rows(client, project, on_run or (lambda _name: None)).items():
        path = folder / f"{table}.{fmt}"
        counts[table] = write(path, SCHEMA[table], rows)
        files[table] = path
    schema = {
        "format": fmt,
        "project": project,
        "tables": {
            t: {
                "file": files[t].name,
                "rows": counts[t],
                "columns": [{"name": n, "type": ty} for n, ty in cols],
            }
            for t, cols in SCHEMA.items()
        },
    }
    (folder / "schema.json").write_text(json.dumps(schema, indent=2) + "\n")
    return ExportReport(files, counts)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _jsonl(path: Path, columns: list[tuple[str, str]], rows: Iterator[dict[str, Any]]) -> int:
    with path.open("w", encoding="utf-8") as fh:
        lines = (json.dumps({k: _jsonable(v) for k, v in row.items()}, ensure_ascii=False)
                 for row in rows)  # fmt: skip
        return sum(1 for line in lines if fh.write(line + "\n"))


def _csv(path: Path, columns: list[tuple[str, str]], rows: Iterator[dict[str, Any]]) -> int:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, [c for c, _ in columns])
        writer.writeheader()
        cells = ({k: _csv_cell(v) for k, v in row.items()} for row in rows)
        return sum(1 for row in cells if writer.writerow(row) is not None)


def _csv_cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


_BATCH = 50_000


def _parquet(path: Path, columns: list[tuple[str, str]], rows: Iterator[dict[str, Any]]) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExtraNotInstalled("pyarrow", "parquet", "mltrail export --format parquet") from None
    types = {
        "string": pa.string(),
        "json": pa.string(),
        "float64": pa.float64(),
        "int64": pa.int64(),
    }
    schema = pa.schema([(name, types[kind]) for name, kind in columns])
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                n += len(batch)
                batch = []
        if batch or n == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            n += len(batch)
    return n
