"""Agents: claim a sweep's next trial from the store, run it, report it, repeat.

A :class:`Worker` runs one trial at a time, in this process (``function``) or as a
child process (the sweep's ``program``). For each trial it creates the trial's run
(parent: the sweep's run; config: the trial's parameters), points the environment at
it (``MLTRAIL_SWEEP_ID``, ``MLTRAIL_RUN_ID``: ``mltrail.init()`` with no arguments then
joins that run) and starts a monitor thread that, every ``lease/6`` seconds:

- renews the trial's lease (``MLTRAIL_SWEEP_LEASE`` seconds, default 60): a trial whose
  agent stops renewing it (killed, machine gone) is ``crashed`` and, per the config's
  ``max_retries``, handed to the next agent that asks;
- stops the trial when the sweep is canceled or the lease was lost, or when
  ``early_terminate`` (hyperband) says so, from the metric the runs have logged so far.

Stopping a function trial raises :class:`TrialStopped` (a ``KeyboardInterrupt``) in the
thread running it; stopping a program sends it SIGTERM (SIGKILL 10 s later).
"""

from __future__ import annotations

import ctypes
import math
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from mltrail.entities import Sweep, Trial, TrialReport, TrialRequest
from mltrail.errors import (
    ConfigurationError,
    MltrailError,
    RunAlreadyExists,
    RunNotFound,
    SweepConfigError,
)
from mltrail.ids import new_run_id
from mltrail.store import SweepStore, open_store
from mltrail.sweeps.config import SweepSpec, parse_config
from mltrail.sweeps.hyperband import stop_reason
from mltrail.sweeps.propose import propose

__all__ = ["ENV_RUN_ID", "ENV_SWEEP_ID", "FailureGuard", "TrialStopped", "Worker", "lease"]

ENV_SWEEP_ID = "MLTRAIL_SWEEP_ID"
ENV_RUN_ID = "MLTRAIL_RUN_ID"
_KILL_AFTER = 10.0  # seconds between SIGTERM and SIGKILL for a program trial
_RUN_STATUS_TO_TRIAL = {
    "finished": "finished",
    "failed": "failed",
    "killed": "killed",
    "crashed": "crashed",
    "running": "finished",
}


class TrialStopped(KeyboardInterrupt):
    """Raised inside a trial's function when its agent stops it (early termination, a
    canceled sweep, a lost lease). A ``KeyboardInterrupt``, so ``except Exception``
    in training code does not swallow it; the run ends ``killed`` with the reason."""


def _env_number(name: str, default: float, low: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number", hint=f"unset {name}") from None
    if value < low:
        raise ConfigurationError(f"{name}={raw!r} is below {low}", hint=f"unset {name}")
    return value


def lease() -> float:
    """Seconds an agent owns a running trial without renewing it (``MLTRAIL_SWEEP_LEASE``)."""
    return _env_number("MLTRAIL_SWEEP_LEASE", 60.0, 0.2)


def _finite(value: Any) -> float | None:
    """A metric's value as a float, or None (missing, not a number, NaN, infinite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _notice(msg: str) -> None:
    print(f"mltrail: {msg}", file=sys.stderr, flush=True)


def _set_async_exc(thread_id: int, exc: type[BaseException]) -> None:
    """Raise ``exc`` in thread ``thread_id`` at its next bytecode."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))


@contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ[k] for k in values if k in os.environ}
    os.environ.update(values)
    try:
        yield
    finally:
        for k in set(values) - set(saved):
            os.environ.pop(k, None)
        os.environ.update(saved)


class _Stop:
    """How the monitor stops a trial: once, and only while it still runs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status: str | None = None  # what the trial ends as when it was stopped
        self.reason: str | None = None
        self.delivered = False  # the trial really ended because of it

    def request(self, status: str, reason: str) -> bool:
        """Record the request; True the first time (the caller then acts on it)."""
        if self.status is not None:
            return False
        self.status, self.reason = status, reason
        return True


class _InThread(_Stop):
    """Runs a function in the calling thread; a stop raises TrialStopped inside it.

    The exception is raised asynchronously, so it may arrive just after the function
    returned: a raised one is then waited for here, inside the ``try``, so it never
    escapes into the agent's own code. (Cancelling it instead with
    ``PyThreadState_SetAsyncExc(id, NULL)`` hangs CPython 3.11 under a profiler.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.thread_id = threading.get_ident()
        self.active = False
        self.raised = False

    def call(self, function: Callable[[], Any]) -> None:
        try:
            try:
                with self.lock:
                    self.active = True
                function()
            except TrialStopped:
                if self.status is None:
                    raise  # not ours: the function raised it itself
                self.delivered = True
            finally:
                with self.lock:
                    self.active = False
                    pending = self.raised and not self.delivered
                while pending:  # ends when the TrialStopped raised in this thread arrives
                    time.sleep(0.001)
        except TrialStopped:
            if self.status is None:
                raise
            self.delivered = True

    def stop(self, status: str, reason: str) -> None:
        with self.lock:
            if self.active and self.request(status, reason):
                self.raised = True
                _set_async_exc(self.thread_id, TrialStopped)


class _Monitor(threading.Thread):
    """Renews the lease and decides whether to stop the trial, every beat."""

    def __init__(self, worker: Worker, trial: Trial, stop: Callable[[str, str], None]) -> None:
        super().__init__(name=f"mltrail-sweep-{trial.sweep_id}-{trial.number}", daemon=True)
        self.worker = worker
        self.trial = trial
        self.stop_trial = stop
        self.halt = threading.Event()

    def run(self) -> None:
        w = self.worker
        while not self.halt.wait(w.beat):
            try:
                beat = TrialReport(w.name, "running", lease=w.lease)
                answer = w.store.report_trial(self.trial.sweep_id, self.trial.number, beat)
                if answer == "lost":
                    self.stop_trial("killed", "the trial's lease was lost: another agent took it")
                elif answer == "cancel":
                    self.stop_trial("killed", "the sweep was canceled")
                elif w.spec.early_terminate is not None:
                    reason = w.early_stop_reason(self.trial)
                    if reason is not None:
                        self.stop_trial("stopped", reason)
            except MltrailError as exc:  # the store hiccuped: the next beat tries again
                _notice(f"sweep {self.trial.sweep_id}: heartbeat failed: {exc.message}")

    def close(self) -> None:
        self.halt.set()
        self.join()


class FailureGuard:
    """Stops an agent whose first trials all fail (a bug, not bad luck), as W&B does
    after ``MLTRAIL_AGENT_MAX_INITIAL_FAILURES`` (default 3; 0: never)."""

    def __init__(self) -> None:
        self.limit = int(_env_number("MLTRAIL_AGENT_MAX_INITIAL_FAILURES", 3, 0))
        self.failed: list[Trial] = []
        self.passed = False

    def check(self, trial: Trial) -> None:
        if self.passed or not self.limit:
            return
        if trial.status != "failed":
            self.passed = True
            return
        self.failed.append(trial)
        if len(self.failed) >= self.limit:
            runs = ", ".join(t.run_id or "?" for t in self.failed)
            raise MltrailError(
                f"the first {len(self.failed)} trials of this agent failed "
                f"(last: {trial.reason}); stopping the agent",
                hint=f"fix the training code (mltrail runs show RUN for each of {runs}), "
                "then start the agent again",
            )


def sweep_store(uri: str) -> SweepStore:
    store = open_store(uri)
    if not hasattr(store, "claim_trial"):
        raise ConfigurationError(f"the store {uri} cannot hold sweeps")
    return cast(SweepStore, store)


def ensure_sweep_run(store: SweepStore, sweep: Sweep) -> None:
    """The sweep's run (same id as the sweep): the parent of every trial's run."""
    try:
        store.get_run(sweep.id)
        return
    except RunNotFound:
        pass
    try:
        store.create_run(
            run_id=sweep.id,
            project=sweep.project,
            name=sweep.name,
            user=sweep.created_by,
            group=None,
            job_type="sweep",
            parent_id=None,
            notes="",
            tags={},
            metadata={"sweep": sweep.config},
            started_at=time.time(),
        )
    except RunAlreadyExists:
        pass


class Worker:
    """Claims and runs the trials of one sweep, one at a time."""

    def __init__(
        self, store: SweepStore, uri: str, sweep: Sweep, function: Callable[[], Any] | None
    ) -> None:
        self.store = store
        self.uri = uri
        self.sweep = sweep
        self.spec: SweepSpec = parse_config(sweep.config)
        if function is None and self.spec.program is None:
            raise SweepConfigError(
                f"sweep {sweep.id} has no program to run",
                hint=f"start the agent from Python: mltrail.agent({sweep.id!r}, function=train), "
                "or add program: train.py to the sweep config",
            )
        self.function = function
        self.name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.lease = lease()
        self.beat = min(max(self.lease / 6, 0.05), 10.0)
        self._final: dict[int, list[float]] = {}  # histories of trials that have ended
        ensure_sweep_run(store, sweep)

    @classmethod
    def open(cls, uri: str, sweep_id: str, function: Callable[[], Any] | None) -> Worker:
        store = sweep_store(uri)
        return cls(store, uri, store.get_sweep(sweep_id), function)

    # -- claiming ------------------------------------------------------------------------

    def claim(self, *, wait: bool = True) -> Trial | str:
        """The next trial, now this agent's; else ``"done"`` (or ``"wait"``, if not
        ``wait``: nothing to start now, but trials still run elsewhere)."""
        while True:
            trials = self.store.list_trials(self.sweep.id)
            proposal = propose(self.spec, self.sweep.seed, trials)
            wanted = None if proposal is None else proposal.as_dict()
            request = TrialRequest(self.name, new_run_id(), self.lease, len(trials), wanted)
            got = self.store.claim_trial(self.sweep.id, request)
            if got.outcome == "claimed" and got.trial is not None:
                return got.trial
            if got.outcome == "stale":  # another agent was faster: look again
                time.sleep(random.uniform(0, 0.02))
                continue
            if got.outcome == "wait":
                if not wait:
                    return "wait"
                time.sleep(self.beat)
                continue
            if got.sweep_state != "finished":
                _notice(
                    f"sweep {self.sweep.id} is {got.sweep_state}; resume it with: "
                    f"mltrail sweep resume {self.sweep.id}"
                )
            return "done"

    # -- running -------------------------------------------------------------------------

    def run(self, trial: Trial) -> Trial:
        """Run a claimed trial to its end and report it; the trial as it ended."""
        assert trial.run_id is not None
        run_id = trial.run_id
        self._create_run(trial)
        _notice(f"sweep {self.sweep.id}: trial {trial.number} (run {run_id}): {trial.params}")
        env = {
            ENV_SWEEP_ID: self.sweep.id,
            ENV_RUN_ID: run_id,
            "MLTRAIL_PROJECT": self.sweep.project,
            "MLTRAIL_TRACKING_URI": self.uri,
        }
        if self.function is not None:
            stop, error = self._run_function(trial, env)
        else:
            stop, error = self._run_program(trial, env)
        record = self.store.get_run(run_id)
        value = _finite(record.summary.get(self.spec.metric)) if self.spec.metric else None
        if stop.delivered:
            status, reason = stop.status or "stopped", stop.reason
        elif error is not None:
            status, reason = "failed", error
        else:
            status, reason = _RUN_STATUS_TO_TRIAL.get(record.status, "finished"), None
            reason = record.exit_reason if status != "finished" else None
        end = TrialReport(self.name, status, value=value, reason=reason)
        if self.store.report_trial(self.sweep.id, trial.number, end) == "lost":
            _notice(f"sweep {self.sweep.id}: trial {trial.number} was taken over; result dropped")
        shown = "-" if value is None else f"{value:.6g}"
        _notice(f"sweep {self.sweep.id}: trial {trial.number} {status}: {self.spec.metric} {shown}")
        return replace(trial, status=status, value=value, reason=reason, ended_at=time.time())

    def _create_run(self, trial: Trial) -> None:
        from mltrail.client.fluent import _capture, _user
        from mltrail.client.values import flatten, param_value

        assert trial.run_id is not None
        self.store.create_run(
            run_id=trial.run_id,
            project=self.sweep.project,
            name=f"{self.sweep.name}-{trial.number}",
            user=_user(),
            group=None,
            job_type=None,
            parent_id=self.sweep.id,
            notes="",
            tags={},
            metadata=_capture(),
            started_at=time.time(),
        )
        flat = flatten(trial.params, ".", what="config")
        if flat:
            self.store.log_params(trial.run_id, {k: param_value(k, v) for k, v in flat.items()})

    def _run_function(self, trial: Trial, env: Mapping[str, str]) -> tuple[_Stop, str | None]:
        """Run ``function`` here; (how it was stopped, the failure it ended with)."""
        from mltrail.client.fluent import active_run
        from mltrail.client.run import exit_status

        assert self.function is not None and trial.run_id is not None
        box = _InThread()
        monitor = _Monitor(self, trial, box.stop)
        error: BaseException | None = None
        with _environ(env):
            monitor.start()
            try:
                box.call(self.function)
            except BaseException as exc:  # the run's end; Ctrl-C stops the agent too (below)
                error = exc
                if isinstance(exc, Exception):
                    traceback.print_exc()
            finally:
                monitor.close()
        status, code, reason = exit_status(error)
        trace = None
        if box.delivered:
            status, code, reason = "killed", None, box.reason
        elif status == "failed" and not isinstance(error, SystemExit) and error is not None:
            trace = "".join(traceback.format_exception(error))
        run = active_run()
        if run is not None and run.id == trial.run_id:
            run.finish(status, exit_code=code, reason=reason, traceback=trace)
        else:
            self._end_run(trial.run_id, status, code, reason, box.reason if box.delivered else None)
        if isinstance(error, KeyboardInterrupt):  # Ctrl-C: the trial is killed, the agent stops
            end = TrialReport(self.name, "killed", reason="KeyboardInterrupt")
            self.store.report_trial(self.sweep.id, trial.number, end)
            raise error
        return box, reason if status == "failed" else None

    def _end_run(
        self, run_id: str, status: str, code: int | None, reason: str | None, stopped: str | None
    ) -> None:
        """Set the run's end when the trial did not (it never joined, or was killed)."""
        record = self.store.get_run(run_id)
        if record.ended_at is None and record.status in ("running", "crashed"):
            now = time.time()
            self.store.update_run(
                run_id,
                status=status,
                exit_code=code,
                exit_reason=reason,
                ended_at=now,
                heartbeat_at=now,
            )
        elif stopped is not None:
            self.store.update_run(run_id, exit_reason=stopped)

    def _run_program(self, trial: Trial, env: Mapping[str, str]) -> tuple[_Stop, str | None]:
        from mltrail.sweeps.command import build_command

        assert trial.run_id is not None
        box = _Stop()
        with tempfile.TemporaryDirectory(prefix="mltrail-sweep-") as tmp:
            argv = build_command(self.spec, trial.params, Path(tmp) / "args.json")
            try:
                proc = subprocess.Popen(argv, env={**os.environ, **env})
            except OSError as exc:
                self._end_run(trial.run_id, "failed", None, f"cannot start {argv[0]}: {exc}", None)
                return box, f"cannot start {' '.join(argv)}: {exc.strerror}"
            timers: list[threading.Timer] = []

            def stop(status: str, reason: str) -> None:
                with box.lock:
                    if box.request(status, reason) and proc.poll() is None:
                        proc.terminate()
                        timer = threading.Timer(_KILL_AFTER, proc.kill)
                        timer.daemon = True
                        timer.start()
                        timers.append(timer)

            monitor = _Monitor(self, trial, stop)
            monitor.start()
            try:
                code = proc.wait()
            except KeyboardInterrupt:
                stop("killed", "KeyboardInterrupt")
                proc.wait()
                raise
            finally:
                monitor.close()
                for timer in timers:
                    timer.cancel()
        box.delivered = box.status is not None and code != 0
        if code == 0:
            self._end_run(trial.run_id, "finished", 0, None, None)
            return box, None
        reason = box.reason if box.delivered else f"{self.spec.program} exited with {code}"
        status = "killed" if box.delivered else ("crashed" if code < 0 else "failed")
        self._end_run(trial.run_id, status, code, reason, box.reason if box.delivered else None)
        return box, None if box.delivered else reason

    # -- early termination ----------------------------------------------------------------

    def early_stop_reason(self, trial: Trial) -> str | None:
        """Hyperband's verdict on ``trial`` from every trial's metric history so far."""
        hb, metric = self.spec.early_terminate, self.spec.metric
        if hb is None or metric is None:
            return None
        own: list[float] = []
        histories: list[list[float]] = []
        for t in self.store.list_trials(self.sweep.id):
            if t.run_id is None:
                continue
            history = self._final.get(t.number)
            if history is None:
                history = self._history(t.run_id, metric)
                if t.status not in ("pending", "running"):
                    self._final[t.number] = history
            if t.number == trial.number:
                own = history
            if history:
                histories.append(history)
        return stop_reason(hb, own, histories, metric) if own else None

    def _history(self, run_id: str, metric: str) -> list[float]:
        try:
            series = self.store.metric_history(run_id, metric)
        except RunNotFound:
            return []
        sign = -1.0 if self.spec.goal == "maximize" else 1.0
        return [sign * v for v in series.values if v == v]  # NaN left out
