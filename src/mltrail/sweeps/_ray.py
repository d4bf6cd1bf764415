"""The Ray backend: ``mltrail.agent(sweep_id, function=train, backend="ray", parallel=4)``.

The driver keeps up to ``parallel`` Ray tasks in flight; each task claims one trial
from the store itself (so a task waiting in Ray's queue holds no lease) and runs it
with the same :class:`~mltrail.sweeps.worker.Worker` code as a local agent, in its
worker process. The tasks need the store to be reachable from where they run:
PostgreSQL or a server for a cluster, SQLite for a Ray on this machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from mltrail.entities import Trial
from mltrail.errors import ExtraNotInstalled
from mltrail.sweeps.worker import FailureGuard, Worker, _environ, _notice
from mltrail.wire import from_wire, to_wire

__all__ = ["ray_agent"]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExtraNotInstalled(
            "ray", "ray", 'The Ray backend of mltrail.agent (backend="ray")'
        ) from None
    return ray


def _trial_task(
    uri: str, sweep_id: str, function: Callable[[], Any], env: Mapping[str, str]
) -> dict[str, Any] | str:
    """In a Ray worker: claim one trial and run it (``"wait"``/``"done"`` if none)."""
    with _environ(env):
        worker = Worker.open(uri, sweep_id, function)
        got = worker.claim(wait=False)
        if isinstance(got, str):
            return got
        result: dict[str, Any] = to_wire(worker.run(got))
        return result


def ray_agent(
    worker: Worker,
    count: int | None,
    parallel: int,
    options: Mapping[str, Any] | None,
) -> list[Trial]:
    ray = _ray()
    if not ray.is_initialized():
        ray.init()  # RAY_ADDRESS names an existing cluster; else a local one starts
    # max_retries=0: a crashed trial is the store's to retry (its lease runs out), not Ray's
    task = ray.remote(_trial_task).options(**{"num_cpus": 1, "max_retries": 0, **(options or {})})
    env = {k: v for k, v in os.environ.items() if k.startswith("MLTRAIL_")}
    env["MLTRAIL_TRACKING_URI"] = worker.uri
    guard = FailureGuard()
    done: list[Trial] = []
    in_flight: list[Any] = []
    started = 0
    finished = False
    retry_at = 0.0
    while in_flight or not finished:
        room = count is None or started < count
        while not finished and room and len(in_flight) < parallel and time.time() >= retry_at:
            in_flight.append(task.remote(worker.uri, worker.sweep.id, worker.function, env))
            started += 1
            room = count is None or started < count
        if not in_flight:
            if finished or not room:
                break
            time.sleep(max(0.0, retry_at - time.time()))
            continue
        ready, in_flight = ray.wait(in_flight, num_returns=1, timeout=worker.beat)
        for ref in ready:
            try:
                out = ray.get(ref)
            except ray.exceptions.RayError as exc:  # the worker died: its lease runs out
                _notice(f"sweep {worker.sweep.id}: a Ray task failed: {exc}")
                continue
            if out == "done":
                finished = True
                started -= 1
            elif out == "wait":
                started -= 1
                retry_at = time.time() + worker.beat
            else:
                trial = from_wire(Trial, out)
                done.append(trial)
                guard.check(trial)
        if count is not None and len(done) >= count and not in_flight:
            break
    return done
