"""Replaying spool files left behind by processes that died or lost the store."""

from __future__ import annotations

import time
from pathlib import Path

from mltrail.client.run import decode_metrics
from mltrail.client.spool import KIND_METRICS, ReplayReport, SpoolReader, find_spools
from mltrail.errors import MltrailError, RunNotFound, SpoolError
from mltrail.store import Store

__all__ = ["replay_spools"]


def replay_spools(
    store: Store, spool_dir: Path, *, run_id: str | None = None
) -> list[ReplayReport]:
    """Apply every abandoned spool of this store in ``spool_dir``; returns what was done.

    A spool is abandoned when no live process holds its lock. Records already in the
    store (up to the offset it recorded) are skipped, so replay never applies twice.
    A run left 'running' by a dead process becomes 'crashed', unless its spool ends
    with the finish record the process wrote (then the recorded status is applied).
    """
    reports: list[ReplayReport] = []
    for path in find_spools(spool_dir):
        if run_id is not None and not path.name.startswith(run_id + "."):
            continue
        try:
            reader = SpoolReader(path)
        except BlockingIOError:
            continue  # a live process owns it
        except FileNotFoundError:
            continue  # another process replayed it just now
        except SpoolError as exc:
            bad = path.with_suffix(".spool.bad")
            path.rename(bad)
            report = ReplayReport(path.stem, "?")
            report.problems.append(f"{exc}; moved aside to {bad.name}")
            reports.append(report)
            continue
        try:
            if reader.header.get("uri") != store.uri:
                continue
            reports.append(_replay_one(store, reader))
        finally:
            reader.close()
    return reports


def _replay_one(store: Store, reader: SpoolReader) -> ReplayReport:
    report = ReplayReport(reader.spool_id, reader.run_id)
    start = store.spool_offset(reader.spool_id)
    finish: tuple[str, int | None, str | None, float] | None = None
    for rec in reader.records(start, report):
        if rec.kind == KIND_METRICS:
            batch = decode_metrics(rec.body)
            report.points += sum(len(s) for s in batch.values())
            store.write_metrics(
                reader.run_id, batch, spool_id=reader.spool_id, spool_offset=rec.end
            )
        elif rec.kind == "finish":
            finish = rec.body
    try:
        run = store.get_run(reader.run_id)
    except RunNotFound:
        report.problems.append(f"run {reader.run_id} no longer exists; spool discarded")
        run = None
    if run is not None and run.status == "running":
        if finish is not None:
            status, code, reason, ended = finish
            store.update_run(
                run.id, status=status, exit_code=code, exit_reason=reason, ended_at=ended
            )
        else:
            note = f"the process died without finishing; recovered {report.points} points"
            if report.problems:
                note += f"; spool damaged ({'; '.join(report.problems)})"
            store.update_run(
                run.id,
                status="crashed",
                ended_at=run.heartbeat_at or time.time(),
                exit_reason=note,
            )
    if report.problems:  # keep the damaged tail for inspection
        reader.path.rename(reader.path.with_suffix(".spool.bad"))
    else:
        reader.path.unlink(missing_ok=True)
    try:
        store.forget_spool(reader.spool_id)
    except MltrailError:
        pass
    return report
