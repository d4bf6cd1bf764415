"""Applying spool records to a store: the writer's catch-up, crash recovery, ``sync``.

Record kinds (``SpoolWriter.append(kind, body)``):

=============  ==========================================================
``metrics``    ``{key: (steps, values, timestamps)}`` packed arrays
``logs``       console output text
``create_run`` keyword arguments of ``Store.create_run`` (offline runs)
``params``     ``(params, allow_change)``
``tags``       ``{key: value}``; ``delete_tag``: ``key``
``summary``    ``{key: value}``; ``metadata``: ``{key: value}``
``update_run`` ``{field: value}``
``finish``     ``(status, exit_code, reason, ended_at)``
=============  ==========================================================

The store records the offset it has reached for each spool file (metric batches in the
same transaction), so replaying a spool twice applies nothing twice.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mltrail.client.spool import (
    KIND_METRICS,
    Record,
    ReplayReport,
    SpoolReader,
    find_spools,
)
from mltrail.errors import RunNotFound, SpoolError
from mltrail.series import Series
from mltrail.store import Store

__all__ = ["apply_record", "decode_metrics", "encode_metrics", "replay_spools"]


def encode_metrics(cols: dict[str, Series]) -> dict[str, tuple[bytes, bytes, bytes]]:
    return {
        k: (s.steps.tobytes(), s.values.tobytes(), s.timestamps.tobytes()) for k, s in cols.items()
    }


def decode_metrics(body: dict[str, tuple[bytes, bytes, bytes]]) -> dict[str, Series]:
    out: dict[str, Series] = {}
    for k, (st, va, ts) in body.items():
        series = Series.empty()
        series.steps.frombytes(st)
        series.values.frombytes(va)
        series.timestamps.frombytes(ts)
        out[k] = series
    return out


def apply_record(store: Store, run_id: str, spool_id: str, rec: Record) -> int:
    """Apply one spool record; returns the number of metric points it held."""
    kind, body = rec.kind, rec.body
    points = 0
    if kind == KIND_METRICS:
        batch = decode_metrics(body)
        points = sum(len(s) for s in batch.values())
        store.write_metrics(run_id, batch, spool_id=spool_id, spool_offset=rec.end)
        return points
    if kind == "create_run":
        try:
            store.get_run(run_id)
        except RunNotFound:
            store.create_run(**body)
    elif kind == "logs":
        store.append_logs(run_id, body)
    elif kind == "params":
        params, allow = body
        store.log_params(run_id, params, allow_change=True if allow else allow)
    elif kind == "tags":
        store.set_tags(run_id, body)
    elif kind == "delete_tag":
        store.delete_tag(run_id, body)
    elif kind == "summary":
        store.set_summary(run_id, body)
    elif kind == "metadata":
        store.merge_metadata(run_id, body)
    elif kind == "update_run":
        store.update_run(run_id, **body)
    elif kind == "finish":
        status, code, reason, ended = body
        store.update_run(run_id, status=status, exit_code=code, exit_reason=reason, ended_at=ended)
    else:
        raise SpoolError(f"unknown spool record kind {kind!r} (written by a newer mltrail?)")
    store.commit_spool(spool_id, run_id, rec.end)
    return points


def replay_spools(
    store: Store,
    spool_dir: Path,
    *,
    run_id: str | None = None,
    include_offline: bool = False,
    any_uri: bool = False,
) -> list[ReplayReport]:
    """Apply every abandoned spool in ``spool_dir`` (or the one file it names).

    A spool is abandoned when no live process holds its lock. By default only spools
    written for this store are replayed; offline spools only when ``include_offline``
    (``mltrail sync``), and spools of any store when ``any_uri``. Records the store
    already has are skipped. A run left 'running' by a dead process becomes 'crashed',
    unless its spool ends with the finish record the process wrote.
    """
    paths = [spool_dir] if spool_dir.is_file() else find_spools(spool_dir)
    reports: list[ReplayReport] = []
    for path in paths:
        if run_id is not None and not path.name.startswith(run_id + "."):
            continue
        try:
            reader = SpoolReader(path)
        except (BlockingIOError, FileNotFoundError):
            continue  # a live process owns it, or another process just replayed it
        except SpoolError as exc:
            bad = path.with_suffix(".spool.bad")
            path.rename(bad)
            report = ReplayReport(path.stem, "?")
            report.problems.append(f"{exc}; moved aside to {bad.name}")
            reports.append(report)
            continue
        try:
            offline = bool(reader.header.get("offline"))
            if offline and not include_offline:
                continue
            if not any_uri and not offline and reader.header.get("uri") != store.uri:
                continue
            reports.append(_replay_one(store, reader))
        finally:
            reader.close()
    return reports


def _replay_one(store: Store, reader: SpoolReader) -> ReplayReport:
    report = ReplayReport(reader.spool_id, reader.run_id)
    start = store.spool_offset(reader.spool_id)
    finished = False
    for rec in reader.records(start, report):
        report.points += apply_record(store, reader.run_id, reader.spool_id, rec)
        finished = finished or rec.kind == "finish"
    try:
        run: Any = store.get_run(reader.run_id)
    except RunNotFound:
        report.problems.append(f"run {reader.run_id} does not exist in the store")
        run = None
    if run is not None and run.status == "running" and not finished:
        note = f"the process died without finishing; recovered {report.points} points"
        if report.problems:
            note += f"; spool damaged ({'; '.join(report.problems)})"
        store.update_run(
            run.id, status="crashed", ended_at=run.heartbeat_at or time.time(), exit_reason=note
        )
    if report.problems:  # keep the damaged tail for inspection
        reader.path.rename(reader.path.with_suffix(".spool.bad"))
    else:
        reader.path.unlink(missing_ok=True)
    return report
