"""Hyperparameter sweeps: W&B's sweep configuration, with the controller in your store.

>>> sweep_id = mltrail.sweep({  # doctest: +SKIP
...     "method": "bayes",
...     "metric": {"goal": "maximize", "name": "val_accuracy"},
...     "parameters": {"lr": {"min": 1e-5, "max": 1e-2, "distribution": "log_uniform_values"}},
... }, project="cifar")
>>> def train():  # doctest: +SKIP
...     run = mltrail.init()          # joins the trial's run; run.config holds its params
...     run.log({"val_accuracy": fit(run.config["lr"])})
>>> mltrail.agent(sweep_id, function=train, count=20)  # doctest: +SKIP

Any number of agents, in any processes or machines that share the store (SQLite on
one machine, PostgreSQL or a server for many), pull trials from it; no two take the
same one. Each trial is a run whose parent is the sweep's run (``parent = 'ID'`` or
``sweep = 'ID'`` in the query language). See :mod:`mltrail.sweeps.config` for the
configuration, :mod:`mltrail.sweeps.worker` for what an agent does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrail.errors import InvalidValueError

if TYPE_CHECKING:
    from mltrail.entities import Sweep, Trial
    from mltrail.store import SweepStore

__all__ = ["agent", "get_sweep", "list_sweeps", "list_trials", "resume", "stop", "sweep"]


def _store(uri: str | None) -> tuple[SweepStore, str]:
    from mltrail.config import resolve_uri
    from mltrail.sweeps.worker import sweep_store

    resolved = resolve_uri(uri)
    return sweep_store(resolved), resolved


def sweep(
    config: Mapping[str, Any] | str | os.PathLike[str],
    project: str | None = None,
    *,
    name: str | None = None,
    uri: str | None = None,
) -> str:
    """Create a sweep from a W&B-style configuration (a dict, or a YAML/JSON file);
    returns its id, for :func:`agent` or ``mltrail agent ID``.

    >>> config = {"method": "grid", "parameters": {"bs": {"values": [16, 32]}}}
    >>> sweep_id = mltrail.sweep(config, project="mnist")  # doctest: +SKIP
    """
    import getpass

    from mltrail.ids import new_run_id
    from mltrail.sweeps.config import load_config, new_sweep, parse_config
    from mltrail.sweeps.propose import require_optuna

    raw = dict(config) if isinstance(config, Mapping) else load_config(Path(config))
    spec = parse_config(raw)
    if spec.method == "bayes":
        require_optuna()  # now, not when the first agent starts
    project = project or spec.project or os.environ.get("MLTRAIL_PROJECT") or "default"
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):
        user = None
    store, _ = _store(uri)
    return store.create_sweep(new_sweep(new_run_id(), project, raw, name=name, created_by=user)).id


def agent(
    sweep_id: str,
    function: Callable[[], Any] | None = None,
    count: int | None = None,
    *,
    project: str | None = None,
    uri: str | None = None,
    backend: str = "local",
    parallel: int = 1,
    ray_options: Mapping[str, Any] | None = None,
) -> list[Trial]:
    """Run trials of ``sweep_id`` until it is done (or ``count`` trials ran here).

    ``function`` (no arguments) runs each trial in this process; without it, the
    sweep's ``program`` runs as a child process. ``backend="ray"`` runs ``parallel``
    trials at once as Ray tasks (``ray_options``: e.g. ``{"num_gpus": 1}``).
    Returns the trials this agent ran, as they ended.

    >>> mltrail.agent(sweep_id, function=train, count=20)  # doctest: +SKIP
    """
    from mltrail.sweeps.worker import FailureGuard, Worker

    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise InvalidValueError(
            f"count={count!r} is not a whole number >= 1",
            hint="give count=20, or None to run until the sweep is done",
        )
    if backend not in ("local", "ray"):
        raise InvalidValueError(f"backend={backend!r} is not 'local' or 'ray'")
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise InvalidValueError(f"parallel={parallel!r} is not a whole number >= 1")
    if backend == "local" and parallel != 1:
        raise InvalidValueError(
            "parallel trials need the Ray backend",
            hint='pass backend="ray", or start more agents (processes) on the same sweep',
        )
    if function is not None and not callable(function):
        raise InvalidValueError(f"function={function!r} is not callable")
    store, resolved = _store(uri)
    found = store.get_sweep(sweep_id)
    if project is not None and project != found.project:
        raise InvalidValueError(
            f"sweep {sweep_id} belongs to project {found.project!r}, not {project!r}"
        )
    worker = Worker(store, resolved, found, function)
    if backend == "ray":
        from mltrail.sweeps._ray import _ray, ray_agent

        _ray()  # the extra's hint before anything runs
        return ray_agent(worker, count, parallel, ray_options)
    guard = FailureGuard()
    done: list[Trial] = []
    while count is None or len(done) < count:
        trial = worker.claim()
        if isinstance(trial, str):
            break
        done.append(worker.run(trial))
        guard.check(done[-1])
    return done


def get_sweep(sweep_id: str, *, uri: str | None = None) -> Sweep:
    """A sweep with its state and trial counts."""
    return _store(uri)[0].get_sweep(sweep_id)


def list_sweeps(project: str | None = None, *, uri: str | None = None) -> list[Sweep]:
    """Sweeps, newest first."""
    return _store(uri)[0].list_sweeps(project)


def list_trials(sweep_id: str, *, uri: str | None = None) -> list[Trial]:
    """Every trial of a sweep, in the order they were started."""
    return _store(uri)[0].list_trials(sweep_id)


def stop(sweep_id: str, *, cancel: bool = False, uri: str | None = None) -> Sweep:
    """Take no new trials (running ones finish; ``cancel=True`` stops them too)."""
    return _store(uri)[0].set_sweep_state(sweep_id, "canceled" if cancel else "stopped")


def resume(sweep_id: str, *, uri: str | None = None) -> Sweep:
    """Let a stopped sweep take trials again."""
    return _store(uri)[0].set_sweep_state(sweep_id, "running")
