"""The background writer: the run's buffers -> spool file -> store.

Every ``flush_interval`` seconds the writer takes the run's metric columns and console
output, appends them to the spool as records, then applies them to the store (metric
batches in one transaction that also records the spool offset). When the store fails,
new records still go to the spool; the writer retries with exponential back-off
(``flush_interval`` doubling up to 10 s) and catches up from the spool file. When the
spool cannot be written (disk full), records go to the store directly.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from mltrail.client.recovery import apply_record, encode_metrics
from mltrail.client.spool import KIND_METRICS, ReplayReport, SpoolWriter, iter_records
from mltrail.config import Settings
from mltrail.errors import MltrailError, StoreError
from mltrail.series import Series

if TYPE_CHECKING:
    from mltrail.client.run import Run

__all__ = ["Writer"]

MAX_BACKOFF = 10.0


class Writer(threading.Thread):
    """Drains a run's buffers to its spool and its store."""

    def __init__(self, run: Run, spool: SpoolWriter, settings: Settings) -> None:
        super().__init__(name=f"mltrail-writer-{run.id}", daemon=True)
        self._run = run
        self._store = run._store
        self._spool = spool
        self._interval = settings.flush_interval
        self._heartbeat_every = settings.heartbeat_interval
        self._last_heartbeat = time.time()
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self.committed = spool.offset  # the store has every record before this offset
        self.error: MltrailError | None = None
        self.spool_error: OSError | None = None
        self.points = 0
        self._backoff = self._interval
        self._retry_at = 0.0

    # -- thread ---------------------------------------------------------------------

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            try:
                self.drain()
                self._heartbeat()
            except MltrailError as exc:  # keep going: the data is in the spool
                self.error = exc
            except Exception as exc:  # a bug here must not kill training silently
                self.error = MltrailError(f"background writer failed: {exc!r}")
                print(f"mltrail: {self.error}", file=sys.stderr)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join()

    def _heartbeat(self) -> None:
        now = time.time()
        if self.error is None and now - self._last_heartbeat >= self._heartbeat_every:
            self._last_heartbeat = now
            self._store.update_run(self._run.id, heartbeat_at=now)

    @property
    def caught_up(self) -> bool:
        return self.committed == self._spool.offset and self.error is None

    # -- draining -------------------------------------------------------------------

    def drain(self, *, force: bool = False) -> None:
        """Spool everything buffered, then bring the store up to date.

        After a store failure, catching up waits for the back-off unless ``force``.
        """
        with self._lock:
            cols, text = self._run._take_buffers()
            if cols:
                self.points += sum(len(s) for s in cols.values())
                self._handle(KIND_METRICS, cols, text=None)
            if text:
                self._handle("logs", None, text=text)
            behind = self.committed != self._spool.offset or self.error is not None
            if behind and (force or time.monotonic() >= self._retry_at):
                self._catch_up()

    def _handle(self, kind: str, cols: dict[str, Series] | None, text: str | None) -> None:
        live = self.caught_up
        body = encode_metrics(cols) if cols is not None else text
        try:
            offset = self._spool.append(kind, body)
        except OSError as exc:
            self._spool_failed(cols, text, exc)
            return
        if not live:
            return  # _catch_up applies it from the spool, in order
        try:
            if cols is not None:
                self._store.write_metrics(
                    self._run.id, cols, spool_id=self._spool.spool_id, spool_offset=offset
                )
            else:
                self._store.append_logs(self._run.id, text or "")
                self._store.commit_spool(self._spool.spool_id, self._run.id, offset)
        except StoreError as exc:
            self._failed(exc)
            return
        self.committed = offset

    def _catch_up(self) -> None:
        report = ReplayReport(self._spool.spool_id, self._run.id)
        try:
            for rec in iter_records(self._spool.path, self.committed, report):
                apply_record(self._store, self._run.id, self._spool.spool_id, rec)
                self.committed = rec.end
        except StoreError as exc:
            self._failed(exc)
            return
        if report.problems:
            self.error = MltrailError(f"spool unreadable: {'; '.join(report.problems)}")
            return
        self.error = None
        self._backoff = self._interval

    def _failed(self, exc: StoreError) -> None:
        self.error = exc
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)

    def _spool_failed(self, cols: dict[str, Series] | None, text: str | None, exc: OSError) -> None:
        if self.spool_error is None:
            print(
                f"mltrail: cannot write the spool {self._spool.path} ({exc.strerror}); "
                "writing to the store directly until it works again",
                file=sys.stderr,
            )
        self.spool_error = exc
        try:
            if cols is not None:
                self._store.write_metrics(self._run.id, cols)
            elif text:
                self._store.append_logs(self._run.id, text)
        except StoreError as store_exc:
            # Neither place takes it: keep it in memory for the next attempt.
            self._failed(store_exc)
            self._run._put_back(cols, text)
