"""Import W&B offline runs (``wandb/offline-run-*`` folders, ``WANDB_MODE=offline``).

>>> from mltrail.importers.wandb import import_wandb
>>> import_wandb(["wandb/"], mltrail.Client())  # doctest: +SKIP

A run folder's ``run-<id>.wandb`` file is W&B's record log (LevelDB log format: 32 KiB
blocks of CRC-checked records, each a ``wandb_internal.Record`` protobuf). It is read
here, with the record definitions of the ``wandb`` package
(``pip install 'mltrail[import-wandb]'``); nothing is sent anywhere. What maps to what:

- the run record: project (``project=`` overrides), display name, group, job type,
  notes, tags, start time; config updates -> params (nested keys joined with ``.``,
  W&B's own ``_wandb`` left out);
- history rows -> metrics at ``_step`` with ``_timestamp`` (numbers only: media and
  tables are counted as skipped), ``stats`` -> ``system/<key>`` on their own step axis;
- summary values not in the history (``run.summary["best"] = ...``) -> the summary;
- the exit record -> ``finished`` (exit code 0) or ``failed``; a run without one
  (killed) -> ``crashed``;
- the run's ``files/`` folder -> the ``file`` artifact ``run-<run id>``.

The W&B run id (and project) identify the run, so importing again adds nothing.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidValueError, MltrailError
from mltrail.importers import _base
from mltrail.importers._base import NULL_TRACKER, ImportReport, RunWriter, Tracker

if TYPE_CHECKING:
    from mltrail.client.client import Client

__all__ = ["import_wandb", "read_records"]

_BLOCK = 32 * 1024
_HEADER = struct.Struct("<IHB")  # checksum, length, type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_records(path: Path) -> Iterator[bytes]:
    """The payloads of a ``.wandb`` file; stops at the first torn or corrupt record (the
    end of a run that was killed while writing)."""
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise InvalidValueError(f"{path} is not a W&B run file (no :W&B header)")
    pos, pending = 7, b""
    while pos + _HEADER.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER.size:  # the rest of a block is padding
            pos += left
            continue
        crc, length, kind = _HEADER.unpack_from(data, pos)
        if crc == 0 and length == 0 and kind == 0:
            pos += left if left < _BLOCK else _HEADER.size
            continue
        chunk = data[pos + _HEADER.size : pos + _HEADER.size + length]
        if len(chunk) < length or zlib.crc32(chunk, zlib.crc32(bytes([kind]))) != crc:
            return
        pos += _HEADER.size + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


def _run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if path.is_file() and path.suffix == ".wandb":
            found.add(path.parent)
        elif path.is_dir():
            found.update(p.parent for p in path.rglob("run-*.wandb"))
        else:
            raise InvalidValueError(f"{raw} is neither a folder nor a .wandb file")
    return sorted(found)


def import_wandb(
    paths: Iterable[str | Path],
    client: Client,
    *,
    project: str | None = None,
    tracker: Tracker = NULL_TRACKER,
) -> ImportReport:
    """Import every offline run found under ``paths`` (run folders, ``wandb/`` folders
    or ``.wandb`` files)."""
    proto = _base.require("wandb.proto.wandb_internal_pb2", "import-wandb", "Importing W&B runs")
    dirs = _run_dirs(paths)
    report = ImportReport(source="wandb:" + ",".join(str(p) for p in paths))
    writer = RunWriter(client, "wandb")
    tracker.total(len(dirs), "run folders")
    for folder in dirs:
        try:
            _import_dir(proto, writer, report, folder, project)
        except MltrailError as exc:
            report.skip("run", folder.name, exc.message)
        tracker.advance(folder.name)
    return report


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else str(item.key)


def _import_dir(
    pb: Any, writer: RunWriter, report: ImportReport, folder: Path, project: str | None
) -> None:
    found = sorted(folder.glob("run-*.wandb"))
    if not found:
        raise InvalidValueError(f"{folder} has no run-*.wandb file")
    path = found[0]
    run: Any = None
    config: dict[str, Any] = {}
    history: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    system: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    summary: dict[str, Any] = {}
    exit_code: int | None = None
    skipped_values: set[str] = set()
    auto_step = 0
    for payload in read_records(path):
        record = pb.Record.FromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            for item in run.config.update:
                config[_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                config[_key(item)] = json.loads(item.value_json)
            for item in record.config.remove:
                config.pop(_key(item), None)
        elif kind == "history":
            row = {_key(i): json.loads(i.value_json) for i in record.history.item}
            step = int(row.pop("_step", auto_step))
            auto_step = step + 1
            ts = float(row.pop("_timestamp", 0.0))
            for key, value in row.items():
                if key.startswith("_"):
                    continue
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    history[key].append((step, float(value), ts))
                else:
                    skipped_values.add(key)
        elif kind == "stats":
            ts = record.stats.timestamp.seconds + record.stats.timestamp.nanos / 1e9
            for item in record.stats.item:
                value = json.loads(item.value_json)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    series = system[f"system/{item.key}"]
                    series.append((len(series), float(value), ts))
        elif kind == "summary":
            for item in record.summary.update:
                summary[_key(item)] = json.loads(item.value_json)
        elif kind == "exit":
            exit_code = int(record.exit.exit_code)
    if run is None:
        raise InvalidValueError(f"{path} holds no run record")
    source_id = f"{run.project}/{run.run_id}"
    rid = writer.run_id(source_id)
    if writer.complete(rid):
        report.skip("run", source_id, f"already imported as run {rid}")
        return
    target = _base.project_name(project or run.project or "uncategorized")
    started = run.start_time.seconds + run.start_time.nanos / 1e9
    config.pop("_wandb", None)
    writer.create(
        rid,
        source_id,
        project=target,
        name=run.display_name or run.run_id,
        started_at=started,
        tags={t: "" for t in run.tags},
        notes=run.notes,
        group=run.run_group or None,
        job_type=run.job_type or None,
        metadata={"wandb": {"run_id": run.run_id, "entity": run.entity, "folder": str(folder)}},
    )
    writer.params(rid, _flatten(config))
    points = sum(writer.metrics(rid, key, pts) for key, pts in sorted(history.items()))
    for key, pts in sorted(system.items()):
        writer.metrics(rid, key, pts)
    extra = {k: v for k, v in summary.items() if not k.startswith("_") and k not in history}
    writer.summary(rid, {k: v for k, v in extra.items() if isinstance(v, (int, float, str, bool))})
    files = folder / "files"
    if files.is_dir() and any(p.is_file() for p in files.rglob("*")):
        writer.artifact(rid, target, files, name=f"run-{rid}", metadata={"source": "wandb"})
    times = [p[2] for pts in history.values() for p in pts if p[2]]
    ended = max(times, default=started)
    status, reason = "finished", None
    if exit_code is None:
        status, reason = "crashed", "the W&B run has no exit record (killed?)"
    elif exit_code != 0:
        status, reason = "failed", f"exit code {exit_code}"
    writer.finish(rid, source_id, status=status, ended_at=ended, exit_code=exit_code, reason=reason)
    report.add("run", source_id, rid, project=target, metric_points=points)
    for key in sorted(skipped_values):
        report.skip(
            "value", f"{source_id}:{key}", "not a number (media, tables and text are not imported)"
        )


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            inner = value.get("value", value) if set(value) <= {"value", "desc"} else value
            if isinstance(inner, dict):
                out.update(_flatten(inner, f"{prefix}{key}."))
                continue
            value = inner
        out[f"{prefix}{key}"] = value
    return out
