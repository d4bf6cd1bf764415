"""A live run: the logging hot path and its background writer.

``Run.log`` validates cheaply and appends each value to per-key ``array`` columns
(24 bytes a point, no Python object per point). A daemon thread swaps the columns out
every ``flush_interval`` seconds, appends them to the run's spool file, then writes
them to the store in one transaction that also records the spool offset. When the
store fails, the writer keeps appending to the spool and catches up from the file
once the store answers again.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.client.spool import KIND_METRICS, ReplayReport, SpoolWriter, iter_records
from mltrail.client.values import check_key, flatten, metric_value, param_value
from mltrail.config import Settings
from mltrail.errors import InvalidValueError, MltrailError, RunFinishedError, StoreError
from mltrail.series import Series

if TYPE_CHECKING:
    from mltrail.entities import RunRecord
    from mltrail.store import Store

__all__ = ["Config", "Run", "Summary", "decode_metrics", "encode_metrics"]

_I64 = 1 << 63
_BIG = 1 << 1000  # ints beyond this are not representable as float64
_now = time.time


def encode_metrics(cols: Mapping[str, Series]) -> dict[str, tuple[bytes, bytes, bytes]]:
    return {
        k: (s.steps.tobytes(), s.values.tobytes(), s.timestamps.tobytes()) for k, s in cols.items()
    }


def decode_metrics(body: Mapping[str, tuple[bytes, bytes, bytes]]) -> dict[str, Series]:
    out: dict[str, Series] = {}
    for k, (st, va, ts) in body.items():
        series = Series.empty()
        series.steps.frombytes(st)
        series.values.frombytes(va)
        series.timestamps.frombytes(ts)
        out[k] = series
    return out


class _Writer(threading.Thread):
    """Drains the run's columns to the spool and the store."""

    def __init__(self, run: Run, spool: SpoolWriter, settings: Settings) -> None:
        super().__init__(name=f"mltrail-writer-{run.id}", daemon=True)
        self._run = run
        self._store = run._store
        self._spool = spool
        self._interval = settings.flush_interval
        self._heartbeat_every = settings.heartbeat_interval
        self._last_heartbeat = _now()
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self.committed = spool.offset  # spool offset the store has everything up to
        self.error: MltrailError | None = None
        self.spool_error: OSError | None = None
        self.points = 0

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            try:
                self.drain()
                if _now() - self._last_heartbeat >= self._heartbeat_every:
                    self._last_heartbeat = _now()
                    self._store.update_run(self._run.id, heartbeat_at=self._last_heartbeat)
            except MltrailError as exc:  # keep running: data is safe in the spool
                self.error = exc
            except Exception as exc:  # a bug must not kill training silently
                self.error = MltrailError(f"background writer failed: {exc!r}")
                print(f"mltrail: {self.error}", file=sys.stderr)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join()

    @property
    def caught_up(self) -> bool:
        return self.committed == self._spool.offset

    def drain(self) -> None:
        """Write everything logged so far to the spool, then to the store."""
        with self._lock:
            run = self._run
            with run._lock:
                cols, run._cols = run._cols, {}
            if cols:
                was_caught_up = self.caught_up and self.error is None
                try:
                    offset = self._spool.append(KIND_METRICS, encode_metrics(cols))
                except OSError as exc:  # disk full, spool folder gone: go straight to the store
                    self._spool_failed(cols, exc)
                    return
                self.points += sum(len(s) for s in cols.values())
                if was_caught_up:
                    self._commit(cols, offset)
                    return
            if not self.caught_up:
                self._catch_up()

    def _spool_failed(self, cols: dict[str, Series], exc: OSError) -> None:
        if self.spool_error is None:
            print(
                f"mltrail: cannot write the spool {self._spool.path} ({exc.strerror}); "
                "writing to the store directly until it works again",
                file=sys.stderr,
            )
        self.spool_error = exc
        try:
            self._store.write_metrics(self._run.id, cols)
        except StoreError as store_exc:
            # Neither place can take the points: keep them in memory for the next try.
            self.error = store_exc
            run = self._run
            with run._lock:
                for key, later in run._cols.items():
                    if key in cols:
                        cols[key].extend(later)
                    else:
                        cols[key] = later
                run._cols = cols
            return
        self.points += sum(len(s) for s in cols.values())

    def _commit(self, cols: dict[str, Series], offset: int) -> None:
        try:
            self._store.write_metrics(
                self._run.id, cols, spool_id=self._spool.spool_id, spool_offset=offset
            )
        except StoreError as exc:
            self.error = exc
            return
        self.committed = offset
        self.error = None

    def _catch_up(self) -> None:
        """The store failed earlier: apply what the spool holds past the commit point."""
        report = ReplayReport(self._spool.spool_id, self._run.id)
        for rec in iter_records(self._spool.path, self.committed, report):
            if rec.kind != KIND_METRICS:
                continue
            self._commit(decode_metrics(rec.body), rec.end)
            if self.error is not None:
                return
        if self.committed != self._spool.offset:
            self.committed = self._spool.offset  # non-metric records only


class Config(MutableMapping[str, Any]):
    """A run's params: flat ``a.b`` keys, fixed once logged.

    ``run.config["lr"]``, ``run.config.lr``, ``run.config.update({...})``; nested dicts
    are flattened with dots (``{"model": {"depth": 50}}`` -> ``model.depth``).
    """

    def __init__(self, run: Run, initial: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_data", dict(initial))

    def update(  # type: ignore[override]
        self,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        allow_val_change: bool = False,
        **kw: Any,
    ) -> None:
        merged = dict(values or {})
        merged.update(kw)
        flat = flatten(merged, ".", what="config")
        clean = {k: param_value(k, v) for k, v in flat.items()}
        self._run._check_open()
        self._run._store.log_params(self._run.id, clean, allow_change=allow_val_change)
        self._data.update(clean)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        raise InvalidValueError("params cannot be deleted once logged")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def __repr__(self) -> str:
        return f"Config({self._data!r})"

    def as_dict(self) -> dict[str, Any]:
        return dict(self._data)


class Summary(MutableMapping[str, Any]):
    """Last value of every logged metric, unless set explicitly (``run.summary[k] = v``)."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def _current(self) -> dict[str, Any]:
        self._run.flush()
        return self._run._store.get_run(self._run.id).summary

    def __getitem__(self, key: str) -> Any:
        return self._current()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, values: Mapping[str, Any] | None = None, /, **kw: Any) -> None:  # type: ignore[override]
        merged = dict(values or {})
        merged.update(kw)
        clean = {check_key(k, "summary"): param_value(k, v) for k, v in merged.items()}
        self._run._store.set_summary(self._run.id, clean)

    def __delitem__(self, key: str) -> None:
        raise InvalidValueError("summary values cannot be deleted; set another value")

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def __repr__(self) -> str:
        return f"Summary({self._current()!r})"


class Run:
    """One execution being tracked. Create with :func:`mltrail.init`.

    >>> run = mltrail.init(project="demo", config={"lr": 0.01})  # doctest: +SKIP
    >>> run.log({"loss": 0.3}, step=0)  # doctest: +SKIP
    >>> run.finish()  # doctest: +SKIP
    """

    def __init__(
        self,
        store: Store,
        record: RunRecord,
        *,
        spool_dir: Path,
        settings: Settings,
        start_step: int = 0,
    ) -> None:
        self._store = store
        self.id: str = record.id
        self.name: str = record.name
        self.project: str = record.project
        self.parent_id = record.parent_id
        self.group = record.group
        self.job_type = record.job_type
        self._status = record.status
        self._closed = False
        self._lock = threading.Lock()
        self._cols: dict[str, Series] = {}  # points not yet taken by the writer
        self._known: set[str] = set()
        self._step = start_step
        self.config = Config(self, record.config)
        self.summary = Summary(self)
        self._tags = dict(record.tags)
        self._notes = record.notes
        self._spool = SpoolWriter(spool_dir, self.id, store.uri)
        self._writer = _Writer(self, self._spool, settings)
        self._writer.start()

    # -- the hot path ---------------------------------------------------------------

    def log(self, data: Mapping[str, Any], step: int | None = None, commit: bool = True) -> None:
        """Record metric values at a step (default: the next step).

        Cheap: values are checked and queued; a background thread writes them. Logging
        a key twice at the same step keeps the last value. ``commit=False`` keeps the
        step open so several calls can add keys to it.
        """
        if self._closed:
            raise RunFinishedError(
                f"run {self.id} is finished; cannot log to it",
                hint="start a new run, or resume this one with "
                f"mltrail.init(run_id={self.id!r}, resume='allow')",
            )
        if type(data) is dict:
            known = self._known
            for k, v in data.items():
                tv = type(v)
                if k not in known or not (tv is float or (tv is int and -_BIG < v < _BIG)):
                    data = self._clean(data)
                    break
        else:
            data = self._clean(data)
        if step is None:
            step = self._step
        elif type(step) is not int or not -_I64 <= step < _I64:
            step = self._check_step(step)
        ts = _now()
        with self._lock:
            cols = self._cols
            for k, v in data.items():
                c = cols.get(k)
                if c is None:
                    c = cols[k] = Series.empty()
                c.steps.append(step)
                c.values.append(v)
                c.timestamps.append(ts)
        if commit and step >= self._step:
            self._step = step + 1

    def _clean(self, data: Mapping[str, Any]) -> dict[str, float]:
        if not isinstance(data, Mapping):
            raise InvalidValueError(
                f"run.log() takes a dict of metric values, got {type(data).__name__}",
                hint='call run.log({"loss": value})',
            )
        out: dict[str, float] = {}
        for k, v in flatten(data, "/", what="metric").items():
            out[k] = metric_value(k, v)
            self._known.add(k)
        return out

    @staticmethod
    def _check_step(step: object) -> int:
        index = getattr(type(step), "__index__", None)
        if isinstance(step, bool) or index is None:
            raise InvalidValueError(
                f"step must be an integer, got {type(step).__name__} {step!r}",
                hint="pass step=int(step), or omit it to auto-increment",
            )
        value = int(index(step))
        if not -_I64 <= value < _I64:
            raise InvalidValueError(f"step {value} does not fit in 64 bits")
        return value

    @property
    def step(self) -> int:
        """The step the next ``log`` without ``step=`` will use."""
        return self._step

    # -- metadata -------------------------------------------------------------------

    @property
    def status(self) -> str:
        return self._status

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._tags)

    def set_tags(self, tags: Mapping[str, Any] | list[str]) -> None:
        """Add or change tags: a list of labels or a dict of ``key: value``."""
        self._check_open()
        clean = normalize_tags(tags)
        self._store.set_tags(self.id, clean)
        self._tags.update(clean)

    def set_tag(self, key: str, value: Any = "") -> None:
        self.set_tags({key: value})

    def remove_tag(self, key: str) -> None:
        self._check_open()
        self._store.delete_tag(self.id, key)
        self._tags.pop(key, None)

    @property
    def notes(self) -> str:
        return self._notes

    @notes.setter
    def notes(self, text: str) -> None:
        self._check_open()
        self._store.update_run(self.id, notes=str(text))
        self._notes = str(text)

    def _check_open(self) -> None:
        if self._closed:
            raise RunFinishedError(f"run {self.id} is finished; it can no longer change")

    # -- lifecycle ------------------------------------------------------------------

    def flush(self) -> None:
        """Block until everything logged so far is in the store (or safe in the spool)."""
        self._writer.drain()

    def finish(
        self, status: str = "finished", *, exit_code: int | None = None, reason: str | None = None
    ) -> None:
        """End the run: drain every queued point, then record the final status."""
        if self._closed:
            return
        if status not in ("finished", "failed", "killed", "crashed"):
            raise InvalidValueError(f"unknown final status {status!r}")
        if exit_code is None and status == "finished":
            exit_code = 0
        self._closed = True
        writer = self._writer
        writer.stop()
        ended = _now()
        writer.drain()  # store failures are kept in writer.error, never raised here
        try:
            self._spool.append("finish", (status, exit_code, reason, ended))
        except OSError:
            pass  # the store below still gets the status
        if not writer.caught_up or writer.error is not None:
            writer.drain()
        lost = sum(len(c) for c in self._cols.values())
        try:
            self._store.update_run(
                self.id,
                status=status,
                ended_at=ended,
                exit_code=exit_code,
                exit_reason=reason,
                heartbeat_at=ended,
            )
            self._status = status
            saved = True
        except MltrailError as exc:
            saved = False
            writer.error = writer.error or exc
        caught_up = saved and writer.caught_up and writer.error is None
        if lost:
            print(
                f"mltrail: run {self.id}: {lost} points could not be written to the spool or "
                f"the store ({writer.spool_error or writer.error}) and are lost",
                file=sys.stderr,
            )
        elif not caught_up:
            print(
                f"mltrail: run {self.id} could not be fully written to the store "
                f"({writer.error}); its data is kept in {self._spool.path}; "
                "run `mltrail sync` when the store is back",
                file=sys.stderr,
            )
        if caught_up:
            try:
                self._store.forget_spool(self._spool.spool_id)
            except MltrailError:
                pass
        self._spool.close(delete=caught_up)
        from mltrail.client import fluent

        fluent._forget(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("killed", exit_code=130, reason="KeyboardInterrupt")
        else:
            self.finish("failed", exit_code=1, reason=f"{type(exc).__name__}: {exc}")

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.name} id={self.id} status={self._status}>"


def normalize_tags(tags: Mapping[str, Any] | list[str] | tuple[str, ...] | None) -> dict[str, str]:
    """``["cnn"]`` -> ``{"cnn": ""}``; dict values become strings."""
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        return {check_key(k, "tag"): "" if v is None else str(v) for k, v in tags.items()}
    if isinstance(tags, str):
        tags = [tags]
    return {check_key(t, "tag"): "" for t in tags}
