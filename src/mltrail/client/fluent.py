"""Module-level API: ``mltrail.init``, ``mltrail.log``, ``mltrail.finish``.

Also the process hooks that make sure a run always ends with a status: ``atexit``
(finished, or failed when an exception escaped), SIGTERM (killed) and KeyboardInterrupt
(killed).
"""

from __future__ import annotations

import atexit
import getpass
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from traceback import format_exception
from types import FrameType, TracebackType
from typing import Any, NoReturn

from mltrail.client import console as console_capture
from mltrail.client.console import console_mode
from mltrail.client.offline import OfflineStore
from mltrail.client.recovery import replay_spools
from mltrail.client.run import DisabledRun, Run, exit_status, normalize_tags
from mltrail.client.spool import SpoolWriter, find_spools
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
from mltrail.store.encoding import encode_param

__all__ = ["active_run", "finish", "init", "log", "seed_everything"]

_active: list[Run] = []
_lock = threading.Lock()
_hooks_installed = False
_uncaught: BaseException | None = None
_exit_code: object = None


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
    mode: str | None = None,
    console: str | None = None,
) -> Run:
    """Start (or resume) a run and make it the active one.

    ``project`` defaults to ``MLTRAIL_PROJECT`` or ``"default"``; the store comes from
    ``uri``, ``MLTRAIL_TRACKING_URI``, or ``./.mltrail/``. ``resume="allow"`` continues
    ``run_id`` if it exists and creates it otherwise, ``"must"`` requires it to exist.

    >>> with mltrail.init(project="mnist", config={"lr": 1e-3}) as run:  # doctest: +SKIP
    ...     run.log({"loss": 0.1})

    Inside a sweep's trial (``mltrail.agent``), ``init()`` joins the trial's run, whose
    config holds the trial's parameters; they win over ``config`` (defaults), as in W&B.
    """
    in_trial = run_id is None and _sweep_trial() is not None
    if in_trial:
        run_id, resume, project = _sweep_trial(), "allow", None
    if resume not in (None, "never", "allow", "must"):
        raise InvalidValueError(f"resume={resume!r} is not one of None, 'never', 'allow', 'must'")
    project = check_key(project or os.environ.get("MLTRAIL_PROJECT") or "default", "project")
    if name is not None:
        check_key(name, "run name")
    if run_id is not None and not is_valid_run_id(run_id):
        raise InvalidValueError(
            f"run_id {run_id!r} is not valid: use 1-48 letters, digits, '-' or '_'"
        )
    if resume == "must" and run_id is None:
        raise InvalidValueError("resume='must' needs run_id= the run to continue")
    mode = (mode or os.environ.get("MLTRAIL_MODE") or "online").lower()
    if mode not in ("online", "offline", "disabled"):
        raise InvalidValueError(
            f"mode={mode!r} is not one of 'online', 'offline', 'disabled'",
            hint="check the mode argument or MLTRAIL_MODE",
        )
    tag_map = normalize_tags(tags)
    clean_config = {
        k: param_value(k, v) for k, v in flatten(dict(config or {}), ".", what="config").items()
    }
    capture_console = console_mode(console)
    if mode == "disabled":
        null = DisabledRun(project, name, clean_config, tag_map, notes or "")
        with _lock:
            _active.append(null)
        return null
    cfg = settings()
    resolved = resolve_uri(uri)
    spool_dir = local_dir(resolved) / "spool"
    parent_id = parent.id if isinstance(parent, Run) else parent
    if mode == "offline":
        if resume == "must" or (run_id is not None and resume == "allow"):
            raise InvalidValueError(
                "offline runs cannot resume: the store is not reachable to read the run",
                hint="resume online, or start a new offline run",
            )
        run = _start_offline(
            resolved, spool_dir, cfg, project=project, name=name, run_id=run_id,
            group=group, job_type=job_type, parent_id=parent_id, notes=notes or "",
            tags=tag_map, config=clean_config,
        )  # fmt: skip
        return _activate(run, capture_console)
    store = open_store(resolved)
    if getattr(store, "remote", False) and not _reachable(store, resume, run_id):
        run = _start_offline(
            resolved, spool_dir, cfg, project=project, name=name, run_id=run_id,
            group=group, job_type=job_type, parent_id=parent_id, notes=notes or "",
            tags=tag_map, config=clean_config,
        )  # fmt: skip
        return _activate(run, capture_console)
    if find_spools(spool_dir):
        for report in replay_spools(store, spool_dir):
            _notice(
                f"recovered {report.points} points of run {report.run_id} from an unfinished "
                f"spool" + (f" ({'; '.join(report.problems)})" if report.problems else "")
            )

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
        if in_trial:  # the trial's parameters win over the function's defaults
            clean_config = {k: v for k, v in clean_config.items() if k not in existing.config}
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
            metadata=_capture(),
            started_at=time.time(),
        )
        if clean_config:
            store.log_params(record.id, clean_config, allow_change=allow_val_change)
            record = replace(record, config=_as_stored(clean_config))  # not re-read
        start_step = 0
    spool = SpoolWriter(spool_dir, record.id, resolved)
    run = Run(store, record, spool=spool, settings=cfg, start_step=start_step)
    return _activate(run, capture_console)


def _sweep_trial() -> str | None:
    """The run of the sweep trial this process runs (set by the agent), if any."""
    if os.environ.get("MLTRAIL_SWEEP_ID"):
        return os.environ.get("MLTRAIL_RUN_ID") or None
    return None


def _as_stored(config: Mapping[str, Any]) -> dict[str, Any]:
    """The params of a new run as the store reads them back (JSON round trip, sorted)."""
    return {k: json.loads(encode_param(v)[0]) for k, v in sorted(config.items())}


def _capture() -> dict[str, Any]:
    """Reproducibility metadata stored with a new run (see client/capture)."""
    from mltrail.client.capture import CaptureSettings, collect
    from mltrail.client.capture.seeds import detect_seeds

    info = collect(CaptureSettings.from_env())
    info["pid"] = os.getpid()
    seeds = detect_seeds()
    if seeds:
        info["seeds"] = seeds
    return info


def _start_monitor(run: Run) -> None:
    """System metrics under ``system/`` every MLTRAIL_SYSTEM_INTERVAL seconds (default 10)."""
    from mltrail.client.capture.system import SystemMonitor

    samples = [0]

    def sink(metrics: dict[str, float]) -> None:
        run._log_system(metrics, samples[0])
        samples[0] += 1

    monitor = SystemMonitor.from_env(sink)
    if not monitor.enabled:
        return
    monitor.start()

    def stop() -> None:
        monitor.stop()
        if monitor.energy is not None:
            run._store.merge_metadata(run.id, {"energy": monitor.energy.summary()})

    run._on_finish.append(stop)


def _activate(run: Run, capture_console: bool) -> Run:
    _start_monitor(run)
    if capture_console:
        sink = run._write_console
        console_capture.install(sink)
        run._on_finish.append(lambda: console_capture.uninstall(sink))
    with _lock:
        _active.append(run)
    _install_hooks()
    return run


def _start_offline(
    target_uri: str,
    spool_dir: Any,
    cfg: Any,
    *,
    project: str,
    name: str | None,
    run_id: str | None,
    group: str | None,
    job_type: str | None,
    parent_id: str | None,
    notes: str,
    tags: dict[str, str],
    config: dict[str, Any],
) -> Run:
    rid = run_id or new_run_id()
    spool = SpoolWriter(spool_dir, rid, target_uri, offline=True)
    store = OfflineStore(spool, target_uri)
    record = store.create_run(
        run_id=rid, project=project, name=name, user=_user(), group=group,
        job_type=job_type, parent_id=parent_id, notes=notes, tags=tags,
        metadata={**_capture(), "offline": True},
        started_at=time.time(),
    )  # fmt: skip
    if config:
        store.log_params(rid, config)
        record = store.get_run(rid)
    return Run(store, record, spool=spool, settings=cfg)


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


def seed_everything(seed: int) -> dict[str, Any]:
    """Seed ``random``, NumPy and PyTorch (those installed) and record it in the run.

    Recorded in the active run's metadata (``seeds``), or in the next run started.

    >>> mltrail.seed_everything(42)["seed"]  # doctest: +SKIP
    42
    """
    from mltrail.client.capture.seeds import detect_seeds
    from mltrail.client.capture.seeds import seed_everything as _seed

    info = _seed(seed)
    run = active_run()
    if run is not None and not isinstance(run, DisabledRun):
        run._store.merge_metadata(run.id, {"seeds": detect_seeds()})
    return info


def _forget(run: Run) -> None:
    with _lock:
        if run in _active:
            _active.remove(run)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _reachable(store: Any, resume: str | None, run_id: str | None) -> bool:
    """Whether a tracking server answers. When it does not, a new run is logged offline
    (into the spool; ``mltrail sync`` pushes it later) after one warning: training does
    not wait for the network. Resuming a run needs the server, so that still fails."""
    from mltrail.errors import StoreUnavailable

    try:
        store.ping()
    except StoreUnavailable as exc:
        if resume == "must" or (run_id is not None and resume == "allow"):
            raise
        _notice(
            f"{exc.message}; logging this run offline into the local spool. "
            "Push it when the server is back: mltrail sync"
        )
        return False
    return True


def _notice(msg: str) -> None:
    print(f"mltrail: {msg}", file=sys.stderr)


def _finish_all(status: str, exit_code: int | None, reason: str | None) -> None:
    """Finish every active run (SIGTERM)."""
    with _lock:
        runs = list(reversed(_active))
    for run in runs:
        try:
            run.finish(status, exit_code=exit_code, reason=reason)
        except Exception as exc:  # never mask the interpreter's own exit
            _notice(f"could not finish run {run.id}: {exc}")


def _at_exit() -> None:
    exc = _uncaught
    if exc is None and _exit_code not in (None, 0):
        exc = SystemExit(_exit_code)
    status, code, reason = exit_status(exc)
    trace = None
    if status == "failed" and exc is not None and not isinstance(exc, SystemExit):
        trace = "".join(format_exception(type(exc), exc, exc.__traceback__))
    with _lock:
        runs = list(reversed(_active))
    for run in runs:
        try:
            run.finish(status, exit_code=code, reason=reason, traceback=trace)
        except Exception as err:  # never mask the interpreter's own exit
            _notice(f"could not finish run {run.id}: {err}")


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    previous_hook = sys.excepthook
    previous_exit = sys.exit

    def _excepthook(
        tp: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        global _uncaught
        _uncaught = value
        previous_hook(tp, value, tb)

    def _exit(code: object = None) -> NoReturn:
        # SystemExit never reaches sys.excepthook; remember its code for atexit (as W&B).
        global _exit_code
        _exit_code = code
        previous_exit(code)  # type: ignore[arg-type]

    sys.excepthook = _excepthook
    sys.exit = _exit
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    _finish_all("killed", 128 + signum, "SIGTERM")
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
