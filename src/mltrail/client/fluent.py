"""Module-level API: ``mltrail.init``, ``mltrail.log``, ``mltrail.finish``.

Also the process hooks that make sure a run always ends with a status: ``atexit``
(finished, or failed when an exception escaped), SIGTERM (killed) and KeyboardInterrupt
(killed).
"""

from __future__ import annotations

import atexit
import getpass
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType, TracebackType
from typing import Any

from mltrail.client.recovery import replay_spools
from mltrail.client.run import Run, normalize_tags
from mltrail.client.spool import find_spools
from mltrail.client.values import check_key, flatten, param_value
from mltrail.config import local_dir, resolve_uri, settings
from mltrail.errors import (
    InvalidValueError,
    MltrailError,
    RunAlreadyExists,
    RunNotFound,
    RunStillActive,
)
from mltrail.ids import is_valid_run_id, new_run_id
from mltrail.store import open_store

__all__ = ["active_run", "finish", "init", "log"]

_active: list[Run] = []
_lock = threading.Lock()
_hooks_installed = False
_uncaught: BaseException | None = None


def init(
    project: str | None = None,
    *,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | list[str] | None = None,
    notes: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    parent: Run | str | None = None,
    run_id: str | None = None,
    resume: str | None = None,
    uri: str | None = None,
    allow_val_change: bool = False,
) -> Run:
    """Start (or resume) a run and make it the active one.

    ``project`` defaults to ``MLTRAIL_PROJECT`` or ``"default"``; the store comes from
    ``uri``, ``MLTRAIL_TRACKING_URI``, or ``./.mltrail/``. ``resume="allow"`` continues
    ``run_id`` if it exists and creates it otherwise, ``"must"`` requires it to exist.

    >>> with mltrail.init(project="mnist", config={"lr": 1e-3}) as run:  # doctest: +SKIP
    ...     run.log({"loss": 0.1})
    """
    if resume not in (None, "never", "allow", "must"):
        raise InvalidValueError(f"resume={resume!r} is not one of None, 'never', 'allow', 'must'")
    project = check_key(project or os.environ.get("MLTRAIL_PROJECT") or "default", "project")
    if name is not None:
        check_key(name, "run name")
    if run_id is not None and not is_valid_run_id(run_id):
        raise InvalidValueError(
            f"run_id {run_id!r} is not valid: use 1-64 letters, digits, '-' or '_'"
        )
    if resume == "must" and run_id is None:
        raise InvalidValueError("resume='must' needs run_id= the run to continue")
    cfg = settings()
    resolved = resolve_uri(uri)
    store = open_store(resolved)
    spool_dir = local_dir(resolved) / "spool"
    if find_spools(spool_dir):
        for report in replay_spools(store, spool_dir):
            _notice(
                f"recovered {report.points} points of run {report.run_id} from an unfinished "
                f"spool" + (f" ({'; '.join(report.problems)})" if report.problems else "")
            )
    parent_id = parent.id if isinstance(parent, Run) else parent
    tag_map = normalize_tags(tags)
    clean_config = {
        k: param_value(k, v) for k, v in flatten(dict(config or {}), ".", what="config").items()
    }

    existing = None
    if run_id is not None:
        try:
            existing = store.get_run(run_id)
        except RunNotFound:
            if resume == "must":
                raise RunNotFound(
                    f"resume='must' but there is no run {run_id!r} in {resolved}",
                    hint="check the id, or use resume='allow' to create it",
                ) from None
    if existing is not None:
        if resume in (None, "never"):
            raise RunAlreadyExists(
                f"a run with id {run_id!r} already exists",
                hint="pass resume='allow' to continue it, or omit run_id for a new run",
            )
        if any(p.name.startswith(f"{existing.id}.") for p in find_spools(spool_dir)):
            raise RunStillActive(
                f"run {existing.id} is being written by another live process",
                hint="finish that process first",
            )
        if existing.project != project and project != "default":
            raise InvalidValueError(
                f"run {existing.id} belongs to project {existing.project!r}, not {project!r}"
            )
        updates: dict[str, Any] = {
            "status": "running",
            "ended_at": None,
            "exit_code": None,
            "exit_reason": None,
            "heartbeat_at": time.time(),
        }
        if name:
            updates["name"] = name
        if notes is not None:
            updates["notes"] = notes
        store.update_run(existing.id, **updates)
        if tag_map:
            store.set_tags(existing.id, tag_map)
        if clean_config:
            store.log_params(existing.id, clean_config, allow_change=allow_val_change)
        record = store.get_run(existing.id)
        start_step = max((m.last_step + 1 for m in record.metrics.values()), default=0)
    else:
        record = store.create_run(
            run_id=run_id or new_run_id(),
            project=project,
            name=name,
            user=_user(),
            group=group,
            job_type=job_type,
            parent_id=parent_id,
            notes=notes or "",
            tags=tag_map,
            metadata={"command": sys.argv, "pid": os.getpid()},
            started_at=time.time(),
        )
        if clean_config:
            store.log_params(record.id, clean_config, allow_change=allow_val_change)
            record = store.get_run(record.id)
        start_step = 0
    run = Run(store, record, spool_dir=spool_dir, settings=cfg, start_step=start_step)
    with _lock:
        _active.append(run)
    _install_hooks()
    return run


def active_run() -> Run | None:
    """The most recently started run that has not finished."""
    with _lock:
        return _active[-1] if _active else None


def _require_active() -> Run:
    run = active_run()
    if run is None:
        raise MltrailError(
            "no active run", hint="call mltrail.init(...) before mltrail.log()/finish()"
        )
    return run


def log(data: Mapping[str, Any], step: int | None = None, commit: bool = True) -> None:
    """``run.log`` on the active run."""
    _require_active().log(data, step=step, commit=commit)


def finish(status: str = "finished", *, exit_code: int | None = None) -> None:
    """Finish the active run."""
    _require_active().finish(status, exit_code=exit_code)


def _forget(run: Run) -> None:
    with _lock:
        if run in _active:
            _active.remove(run)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _notice(msg: str) -> None:
    print(f"mltrail: {msg}", file=sys.stderr)


def _finish_all(status: str, exit_code: int | None, reason: str | None) -> None:
    with _lock:
        runs = list(reversed(_active))
    for run in runs:
        try:
            run.finish(status, exit_code=exit_code, reason=reason)
        except Exception as exc:  # never mask the interpreter's own exit
            _notice(f"could not finish run {run.id}: {exc}")


def _at_exit() -> None:
    exc = _uncaught
    if exc is None:
        _finish_all("finished", 0, None)
    elif isinstance(exc, KeyboardInterrupt):
        _finish_all("killed", 130, "KeyboardInterrupt")
    else:
        _finish_all("failed", 1, f"{type(exc).__name__}: {exc}")


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    previous_hook = sys.excepthook

    def _excepthook(
        tp: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        global _uncaught
        _uncaught = value
        previous_hook(tp, value, tb)

    sys.excepthook = _excepthook
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    _finish_all("killed", 128 + signum, "SIGTERM")
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
