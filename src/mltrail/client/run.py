"""A live run: the logging hot path and its background writer.

``Run.log`` validates cheaply and appends each value to per-key ``array`` columns
(24 bytes a point, no Python object per point). A daemon thread swaps the columns out
every ``flush_interval`` seconds, appends them to the run's spool file, then writes
them to the store in one transaction that also records the spool offset. When the
store fails, the writer keeps appending to the spool and catches up from the file
once the store answers again.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from traceback import format_exception
from typing import TYPE_CHECKING, Any

from mltrail.client.spool import SpoolWriter
from mltrail.client.values import check_key, flatten, metric_value, param_value
from mltrail.config import Settings
from mltrail.errors import InvalidValueError, MltrailError, RunFinishedError
from mltrail.series import Series

if TYPE_CHECKING:
    from mltrail.entities import ArtifactVersion, RunRecord
    from mltrail.store import Store

__all__ = ["Config", "DisabledRun", "Run", "Summary", "normalize_tags"]

_I64 = 1 << 63
_BIG = 1 << 1000  # ints beyond this are not representable as float64
_now = time.time


_Column = tuple[Series, Callable[[int], None], Callable[[float], None], Callable[[float], None]]


def _column(series: Series | None = None) -> _Column:
    s = series if series is not None else Series.empty()
    return (s, s.steps.append, s.values.append, s.timestamps.append)


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
        spool: SpoolWriter,
        settings: Settings,
        start_step: int = 0,
    ) -> None:
        from mltrail.client.writer import Writer

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
        # Points not yet taken by the writer: per key, its columns and their bound
        # append methods (no attribute lookups on the hot path).
        self._cols: dict[str, _Column] = {}
        self._console: list[str] = []  # console output not yet taken by the writer
        self._known: set[str] = set()
        self._step = start_step
        self.config = Config(self, record.config)
        self.summary = Summary(self)
        self._tags = dict(record.tags)
        self._notes = record.notes
        self._spool = spool
        self._writer = Writer(self, spool, settings)
        self._writer.start()
        self._on_finish: list[Callable[[], None]] = []
        self._inputs: list[dict[str, Any]] = list(record.metadata.get("inputs", []))
        self._object_store: Any = None
        self._user = record.user

    def _take_buffers(self) -> tuple[dict[str, Series], str]:
        with self._lock:
            taken, self._cols = self._cols, {}
            text = "".join(self._console)
            self._console = []
        return {k: c[0] for k, c in taken.items()}, text

    def _put_back(self, cols: dict[str, Series] | None, text: str | None) -> None:
        with self._lock:
            if cols:
                for key, later in self._cols.items():
                    if key in cols:
                        cols[key].extend(later[0])
                    else:
                        cols[key] = later[0]
                self._cols = {k: _column(series) for k, series in cols.items()}
            if text:
                self._console.insert(0, text)

    def _write_console(self, text: str) -> None:
        """Console capture appends here (see capture/console.py)."""
        if not self._closed:
            self._console.append(text)

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
                    c = cols[k] = _column()
                c[1](step)
                c[2](v)
                c[3](ts)
        if commit and step >= self._step:
            self._step = step + 1

    def _log_system(self, metrics: Mapping[str, float], step: int) -> None:
        """System metrics: their own step axis (sample number), never the user's step."""
        if self._closed:
            return
        ts = _now()
        with self._lock:
            cols = self._cols
            for k, v in metrics.items():
                c = cols.get(k)
                if c is None:
                    c = cols[k] = _column()
                c[1](step)
                c[2](float(v))
                c[3](ts)

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

    def use_dataset(self, path: str | os.PathLike[str], *, name: str | None = None) -> str:
        """Record a file or directory as an input of this run, by content hash.

        Returns the hash (a directory's is the hash of its sorted ``path oid size``
        listing). Stored in the run's metadata under ``inputs``.

        If ``PATH.mltrail`` (a ``mltrail data add`` pointer) exists, the files are not
        hashed: the pointer's hash is used and its dataset artifact version is recorded
        as an input of the run, so ``mltrail lineage`` shows data -> run.
        """
        self._check_open()
        from mltrail.objects.hashing import hash_bytes, hash_file

        p = Path(path)
        found = None
        if not getattr(self._store, "offline", False):
            from mltrail.data.versions import record_input

            found = record_input(self._store, self.id, self.project, p)
        if found is not None:  # a data pointer: its hash, and data -> run lineage
            pointer = found[0]
            p = p.with_name(p.name.removesuffix(".mltrail"))
            digest, size, files = pointer.hash, pointer.size, pointer.files
        elif not p.exists():
            raise InvalidValueError(f"dataset path {str(p)!r} does not exist")
        elif p.is_dir():
            lines = []
            size = 0
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                oid, n = hash_file(f)
                lines.append(f"{f.relative_to(p).as_posix()} {oid} {n}\n")
                size += n
            files = len(lines)
            digest = hash_bytes("".join(lines).encode())
        else:
            digest, size = hash_file(p)
            files = 1
        entry = {"name": name or p.name, "path": str(p.resolve()), "hash": digest,
                 "size": size, "files": files}  # fmt: skip
        inputs = [i for i in self._inputs if i["path"] != entry["path"]] + [entry]
        self._store.merge_metadata(self.id, {"inputs": inputs})
        self._inputs = inputs
        return digest

    # -- artifacts ------------------------------------------------------------------

    def _objects(self) -> Any:
        if getattr(self._store, "offline", False):
            from mltrail.errors import ConfigurationError

            raise ConfigurationError(
                "artifacts cannot be logged or used by an offline run",
                hint="log artifacts from an online run, or with `mltrail artifacts put`",
            )
        if self._object_store is None:
            from mltrail.config import objects_uri
            from mltrail.objects import open_object_store

            self._object_store = open_object_store(objects_uri(self._store.uri))
            from mltrail.artifacts.ops import register_store

            register_store(self._object_store, self._store.uri)
        return self._object_store

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        type: str = "file",
        metadata: Mapping[str, Any] | None = None,
        aliases: list[str] | tuple[str, ...] | None = None,
    ) -> ArtifactVersion:
        """Store a file or directory as the next version of artifact ``name``.

        Content already stored is not stored again; if the files equal the latest
        version's, that version is returned (and the new aliases point at it).

        >>> run.log_artifact("model/", type="model", aliases=["best"])  # doctest: +SKIP
        """
        return self._log_artifact(path, name, type, metadata, aliases, reference=False)

    def log_reference(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        type: str = "file",
        metadata: Mapping[str, Any] | None = None,
        aliases: list[str] | tuple[str, ...] | None = None,
    ) -> ArtifactVersion:
        """Track files that stay where they are, by content hash, without copying them."""
        return self._log_artifact(path, name, type, metadata, aliases, reference=True)

    def _log_artifact(
        self,
        path: str | os.PathLike[str],
        name: str | None,
        type: str,
        metadata: Mapping[str, Any] | None,
        aliases: list[str] | tuple[str, ...] | None,
        *,
        reference: bool,
    ) -> ArtifactVersion:
        from mltrail.artifacts.hashcache import hash_cache_path
        from mltrail.artifacts.names import validate_name
        from mltrail.artifacts.ops import log_files, metadata_dict

        self._check_open()
        name = validate_name(Path(path).name if name is None else name)
        validate_name(type, "artifact type")
        alias_list = tuple(validate_name(a, "alias") for a in (aliases or ()))
        meta = metadata_dict(metadata)
        digest, size, count = log_files(
            self._objects(), path, reference=reference, hash_cache=hash_cache_path(self._store.uri)
        )
        return self._store.create_artifact_version(  # type: ignore[attr-defined, no-any-return]
            project=self.project, name=name, type=type, digest=digest, size=size,
            file_count=count, metadata=meta, run_id=self.id, reference=reference,
            aliases=alias_list, actor=self._user,
        )  # fmt: skip

    def use_artifact(self, spec: str, *, root: str | os.PathLike[str] | None = None) -> Path:
        """Download (or reuse from the cache) ``name[:vN|:alias]`` and record it as an input.

        Returns the folder holding the artifact's files.
        """
        from mltrail.artifacts.names import parse_spec, split_project
        from mltrail.artifacts.ops import download

        self._check_open()
        project, rest = split_project(spec)
        name, ref = parse_spec(rest)
        store: Any = self._store
        version = store.get_artifact_version(project or self.project, name, ref)
        path = download(self._objects(), version, root)
        store.add_run_input(self.id, version.project, version.name, version.version)
        return path

    def add_input(self, spec: str) -> ArtifactVersion:
        """Record ``name[:vN|:alias]`` as an input of this run without downloading it.

        For lineage when the files are already at hand (a pipeline stage reading what
        an earlier stage wrote). Returns the version recorded.
        """
        from mltrail.artifacts.names import parse_spec, split_project

        self._check_open()
        project, rest = split_project(spec)
        name, ref = parse_spec(rest)
        store: Any = self._store
        version: ArtifactVersion = store.get_artifact_version(project or self.project, name, ref)
        store.add_run_input(self.id, version.project, version.name, version.version)
        return version

    def _check_open(self) -> None:
        if self._closed:
            raise RunFinishedError(f"run {self.id} is finished; it can no longer change")

    # -- lifecycle ------------------------------------------------------------------

    def flush(self) -> None:
        """Block until everything logged so far is in the store (or safe in the spool)."""
        self._writer.drain(force=True)

    def finish(
        self,
        status: str = "finished",
        *,
        exit_code: int | None = None,
        reason: str | None = None,
        traceback: str | None = None,
    ) -> None:
        """End the run: drain every buffered point, then record the final status."""
        if self._closed:
            return
        if status not in ("finished", "failed", "killed", "crashed"):
            raise InvalidValueError(f"unknown final status {status!r}")
        if exit_code is None and status == "finished":
            exit_code = 0
        for hook in self._on_finish:
            try:
                hook()
            except Exception as exc:  # a capture hook must not block finishing
                print(f"mltrail: finishing hook failed: {exc!r}", file=sys.stderr)
        self._closed = True
        writer = self._writer
        writer.stop()
        ended = _now()
        writer.drain(force=True)
        lost = sum(len(c[0]) for c in self._cols.values())
        finish_at: tuple[int, int] | None = None  # where the finish record starts and ends
        try:
            if traceback:
                self._spool.append("metadata", {"traceback": traceback})
            if lost:
                self._spool.append("tags", {"mltrail.incomplete": f"{lost} points lost"})
            start = self._spool.offset
            finish_at = (start, self._spool.append("finish", (status, exit_code, reason, ended)))
        except OSError:
            pass  # applied below directly
        try:
            online = not getattr(self._store, "offline", False)
            if (
                finish_at is not None
                and online
                and writer.committed == finish_at[0]
                and writer.error is None
            ):
                # The store has everything but the finish record: apply it here, in one
                # transaction, without recording its spool offset. The spool is deleted
                # next; a process that dies before that leaves it to be replayed, which
                # sets the same status again.
                self._store.update_run(
                    self.id, status=status, exit_code=exit_code, exit_reason=reason,
                    ended_at=ended,
                )  # fmt: skip
                writer.committed = finish_at[1]
            elif not writer.caught_up:
                writer.drain(force=True)
            if writer.spool_error is not None:  # the spool missed some: write directly
                if traceback:
                    self._store.merge_metadata(self.id, {"traceback": traceback})
                if lost:
                    self._store.set_tags(self.id, {"mltrail.incomplete": f"{lost} points lost"})
                self._store.update_run(
                    self.id, status=status, ended_at=ended, exit_code=exit_code,
                    exit_reason=reason, heartbeat_at=ended,
                )  # fmt: skip
            saved = writer.caught_up
        except MltrailError as exc:
            saved = False
            writer.error = writer.error or exc
        if saved:
            self._status = status
        if lost:
            print(
                f"mltrail: run {self.id}: {lost} points could not be written to the spool or "
                f"the store ({writer.spool_error or writer.error}); the run is tagged "
                "mltrail.incomplete",
                file=sys.stderr,
            )
        elif getattr(self._store, "offline", False):
            print(
                f"mltrail: offline run {self.id} is saved in {self._spool.path}; "
                "push it with `mltrail sync`",
                file=sys.stderr,
            )
        elif not saved:
            print(
                f"mltrail: run {self.id} could not be fully written to the store "
                f"({writer.error}); its data is kept in {self._spool.path}; "
                "run `mltrail sync` when the store is back",
                file=sys.stderr,
            )
        keep = not saved or getattr(self._store, "offline", False)
        self._spool.close(delete=not keep)
        from mltrail.client import fluent

        fluent._forget(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        status, code, reason = exit_status(exc)
        trace = None
        if status == "failed" and exc is not None and not isinstance(exc, SystemExit):
            trace = "".join(format_exception(type(exc), exc, tb))
        self.finish(status, exit_code=code, reason=reason, traceback=trace)

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.name} id={self.id} status={self._status}>"


class _LocalConfig(dict[str, Any]):
    """Config of a disabled run: a plain dict with the Config methods."""

    def update(  # type: ignore[override]
        self, values: Mapping[str, Any] | None = None, /, *, allow_val_change: bool = False,
        **kw: Any,
    ) -> None:  # fmt: skip
        merged = dict(values or {})
        merged.update(kw)
        super().update(flatten(merged, ".", what="config"))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self)


class DisabledRun(Run):
    """``mode="disabled"``: the same API as :class:`Run`, every call a no-op.

    Nothing is written anywhere; ``config`` and ``summary`` are plain in-memory dicts so
    code that reads them back keeps working.
    """

    def __init__(
        self, project: str, name: str | None, config: Mapping[str, Any], tags: dict[str, str],
        notes: str,
    ) -> None:  # fmt: skip
        self.id = "disabled"
        self.name = name or "disabled"
        self.project = project
        self.parent_id = None
        self.group = None
        self.job_type = None
        self._status = "running"
        self._closed = False
        self._step = 0
        cfg = _LocalConfig()
        cfg.update(config)
        self.config = cfg  # type: ignore[assignment]
        self.summary = {}  # type: ignore[assignment]
        self._tags = dict(tags)
        self._notes = notes

    def log(self, data: Mapping[str, Any], step: int | None = None, commit: bool = True) -> None:
        self._step = (step if step is not None else self._step) + (1 if commit else 0)

    def set_tags(self, tags: Mapping[str, Any] | list[str]) -> None:
        self._tags.update(normalize_tags(tags))

    def remove_tag(self, key: str) -> None:
        self._tags.pop(key, None)

    @property
    def notes(self) -> str:
        return self._notes

    @notes.setter
    def notes(self, text: str) -> None:
        self._notes = str(text)

    def flush(self) -> None:
        return None

    def finish(
        self,
        status: str = "finished",
        *,
        exit_code: int | None = None,
        reason: str | None = None,
        traceback: str | None = None,
    ) -> None:
        if not self._closed:
            self._closed = True
            self._status = status
            from mltrail.client import fluent

            fluent._forget(self)

    def __repr__(self) -> str:
        return f"<DisabledRun {self.project}/{self.name}>"


def exit_status(exc: BaseException | None) -> tuple[str, int | None, str | None]:
    """(status, exit code, reason) for a run ended by ``exc`` (None: normal end)."""
    if exc is None:
        return "finished", 0, None
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None or code == 0:
            return "finished", 0, None
        return "failed", code if isinstance(code, int) else 1, f"sys.exit({code!r})"
    if isinstance(exc, KeyboardInterrupt):
        return "killed", 130, "KeyboardInterrupt"
    return "failed", 1, f"{type(exc).__name__}: {exc}"


def normalize_tags(tags: Mapping[str, Any] | list[str] | tuple[str, ...] | None) -> dict[str, str]:
    """``["cnn"]`` -> ``{"cnn": ""}``; dict values become strings."""
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        return {check_key(k, "tag"): "" if v is None else str(v) for k, v in tags.items()}
    if isinstance(tags, str):
        tags = [tags]
    return {check_key(t, "tag"): "" for t in tags}
