"""Import the Parquet files written by neptune-exporter (Neptune 2.x/3.x migrations).

>>> from mltrail.importers.neptune import import_neptune
>>> import_neptune("exports/data", mltrail.Client(), files_path="exports/files")  # doctest: +SKIP

neptune-exporter writes one folder per project and ``<run>_part_<n>.parquet`` files per
run, every row one value of one attribute: ``project_id``, ``run_id``,
``attribute_path``, ``attribute_type``, ``step`` (decimal), ``timestamp`` and one typed
value column (``int_value``, ``float_value``, ``string_value``, ``bool_value``,
``datetime_value``, ``string_set_value``, ``file_value.path``, ``histogram_value``).
pyarrow reads them (``pip install 'mltrail[import-neptune]'``). What maps to what:

- ``project_id`` -> project (``/`` as ``-``; ``project=`` overrides); the run keeps its
  id (``sys/custom_run_id`` when set) as its name, ``sys/name`` as its group,
  ``sys/tags`` as tags, ``sys/description`` as notes, ``sys/owner`` as user,
  ``sys/creation_time`` and ``sys/modification_time`` as start and end,
  ``sys/failed`` -> status ``failed``; other ``sys/`` fields go to the run's metadata;
- ``float``/``int``/``string``/``bool``/``datetime``/``string_set`` -> params;
- ``float_series`` -> metrics, steps times ``step_multiplier`` (a series whose steps are
  not then whole numbers is skipped with that reason);
- ``file`` and ``file_series`` -> the ``file`` artifact ``run-<run id>`` (from
  ``files_path``); ``string_series`` and ``histogram_series`` are listed as skipped.

The project and run ids identify a run, so importing again adds nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import MltrailError
from mltrail.importers import _base
from mltrail.importers._base import NULL_TRACKER, ImportReport, RunWriter, Tracker

if TYPE_CHECKING:
    from mltrail.client.client import Client

__all__ = ["import_neptune"]

_PARAM_COLUMNS = {
    "float": "float_value",
    "int": "int_value",
    "string": "string_value",
    "bool": "bool_value",
    "datetime": "datetime_value",
    "string_set": "string_set_value",
}


def import_neptune(
    data_path: str | Path,
    client: Client,
    *,
    files_path: str | Path | None = None,
    project: str | None = None,
    step_multiplier: int = 1,
    tracker: Tracker = NULL_TRACKER,
) -> ImportReport:
    """Import every run of the neptune-exporter Parquet files under ``data_path``."""
    pq = _base.require("pyarrow.parquet", "import-neptune", "Importing Neptune exports")
    root = _base.source_folder(data_path, "neptune-exporter's --data-path")
    parts: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for file in sorted(root.rglob("*_part_*.parquet")):
        head = pq.read_table(file, columns=["project_id", "run_id"]).slice(0, 1).to_pylist()
        if head:
            parts[(head[0]["project_id"], head[0]["run_id"])].append(file)
    report = ImportReport(source=f"neptune:{root}")
    writer = RunWriter(client, "neptune")
    tracker.total(len(parts), "runs")
    files_root = Path(files_path).expanduser().resolve() if files_path else None
    for (project_id, run_id), files in sorted(parts.items()):
        rows: list[dict[str, Any]] = []
        for file in files:
            rows.extend(pq.read_table(file).to_pylist())
        try:
            _import_run(
                writer,
                report,
                project_id,
                run_id,
                rows,
                project,
                step_multiplier,
                files_root,
                files[0].parent.name,
            )
        except MltrailError as exc:
            report.skip("run", f"{project_id}/{run_id}", exc.message)
        tracker.advance(run_id)
    return report


def _value(row: dict[str, Any]) -> Any:
    column = _PARAM_COLUMNS[row["attribute_type"]]
    value = row[column]
    if row["attribute_type"] == "datetime" and value is not None:
        return value.isoformat()
    return value


def _import_run(
    writer: RunWriter,
    report: ImportReport,
    project_id: str,
    run_id: str,
    rows: list[dict[str, Any]],
    project: str | None,
    multiplier: int,
    files_root: Path | None,
    folder_name: str,
) -> None:
    source_id = f"{project_id}/{run_id}"
    rid = writer.run_id(source_id)
    if writer.complete(rid):
        report.skip("run", source_id, f"already imported as run {rid}")
        return
    sys_fields: dict[str, Any] = {}
    params: dict[str, Any] = {}
    series: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    bad_steps: set[str] = set()
    files: list[tuple[str, str, Any]] = []
    for row in rows:
        path, kind = row["attribute_path"], row["attribute_type"]
        if kind in _PARAM_COLUMNS:
            (sys_fields if path.startswith("sys/") else params)[path] = _value(row)
        elif kind == "float_series":
            step = Decimal(row["step"] or 0) * multiplier
            if step != step.to_integral_value():
                bad_steps.add(path)
                continue
            ts = row["timestamp"].timestamp() if row["timestamp"] is not None else 0.0
            series[path].append((int(step), row["float_value"], ts))
        elif kind in ("file", "file_series") and (row.get("file_value") or {}).get("path"):
            files.append((path, row["file_value"]["path"], row["step"]))
        else:
            report.skip(kind, f"{source_id}:{path}", f"Neptune {kind} values are not imported")
    target = _base.project_name(project or project_id)
    created = sys_fields.get("sys/creation_time")
    started = (
        _ts(created) if created else min((p[2] for s in series.values() for p in s), default=0.0)
    )
    tags = {str(t): "" for t in sys_fields.get("sys/tags") or []}
    writer.create(
        rid,
        source_id,
        project=target,
        name=sys_fields.get("sys/custom_run_id") or run_id,
        started_at=started,
        user=sys_fields.get("sys/owner"),
        tags=tags,
        notes=sys_fields.get("sys/description") or "",
        group=sys_fields.get("sys/name") or None,
        metadata={
            "neptune": {
                "project_id": project_id,
                "run_id": run_id,
                **{k[4:]: v for k, v in sys_fields.items()},
            }
        },
    )
    writer.params(rid, params)
    points = sum(writer.metrics(rid, key, pts) for key, pts in sorted(series.items()))
    for key in sorted(bad_steps):
        report.skip(
            "float_series",
            f"{source_id}:{key}",
            f"steps are not whole numbers times {multiplier}; use --step-multiplier",
        )
    if files and files_root is not None:
        _log_files(writer, report, rid, target, source_id, files, files_root, folder_name)
    elif files:
        report.skip("file", source_id, f"{len(files)} files: no --files-path given")
    modified = sys_fields.get("sys/modification_time")
    failed = bool(sys_fields.get("sys/failed"))
    writer.finish(
        rid,
        source_id,
        status="failed" if failed else "finished",
        ended_at=_ts(modified) if modified else started,
    )
    report.add("run", source_id, rid, project=target, metric_points=points)


def _ts(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


def _log_files(
    writer: RunWriter,
    report: ImportReport,
    rid: str,
    project: str,
    source_id: str,
    files: list[tuple[str, str, Any]],
    root: Path,
    folder_name: str,
) -> None:
    with tempfile.TemporaryDirectory(prefix="mltrail-neptune-") as tmp:
        copied = 0
        for attribute, rel, step in files:
            found = next((p for p in (root / rel, root / folder_name / rel) if p.is_file()), None)
            if found is None:
                report.skip("file", f"{source_id}:{attribute}", f"{rel} not found under {root}")
                continue
            name = attribute if step is None else f"{attribute}/step-{step}"
            dest = Path(tmp) / name / found.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found, dest)
            copied += 1
        if copied:
            writer.artifact(rid, project, tmp, name=f"run-{rid}", metadata={"source": "neptune"})
