"""What to try next: :func:`propose` from the sweep's trials as the store has them.

A proposal is a pure function of the configuration, the seed and the trials so far,
so any agent on any machine proposes the same next point from the same state, and the
store (not an Optuna database) stays the only source of truth:

- grid: the next point of the cartesian product, in the configuration's order;
- random: a draw from a generator seeded with ``(seed, trial index)``;
- bayes: Optuna's TPE sampler (multivariate, with a constant liar for trials still
  running, so parallel agents spread out), seeded with ``(seed, trial index)``, asked
  once from an in-memory study rebuilt from the stored trials.

Retries of crashed trials are not proposals: the store hands them out first.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mltrail.entities import Trial
from mltrail.errors import ExtraNotInstalled
from mltrail.sweeps.config import Param, SweepSpec
from mltrail.sweeps.space import coordinate, grid_axis, nest, random_internal

__all__ = ["Proposal", "grid_size", "propose", "require_optuna"]

_STARTUP_TRIALS = 10  # TPE's random start (Optuna's default)


@dataclass(frozen=True)
class Proposal:
    params: dict[str, Any]  # the run's configuration (nested)
    internal: dict[str, Any]  # the searched coordinates, by dotted path

    def as_dict(self) -> dict[str, Any]:
        return {"params": self.params, "internal": self.internal}


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ExtraNotInstalled("optuna", "sweeps", "A Bayesian sweep (method: bayes)") from None
    return optuna


def grid_size(spec: SweepSpec) -> int:
    size = 1
    for p in spec.params:
        axis = grid_axis(p)
        size *= 1 if axis is None else axis[1]
    return size


def _seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index) % (2**32)


def propose(spec: SweepSpec, seed: int, trials: Sequence[Trial]) -> Proposal | None:
    """The next point to try, or None when the search has nothing left (grid done,
    ``run_cap`` reached)."""
    index = sum(1 for t in trials if t.retry_of is None)
    if spec.run_cap is not None and index >= spec.run_cap:
        return None
    if spec.method == "grid":
        return _grid(spec.params, index)
    if spec.method == "bayes" and spec.searched:
        internal = _tpe(spec, _seed(seed, index), trials)
    else:
        rng = random.Random(_seed(seed, index))
        internal = {p.path: random_internal(p, rng) for p in spec.searched}
    return Proposal(nest(spec.params, internal), internal)


def _grid(params: Sequence[Param], index: int) -> Proposal | None:
    internal: dict[str, Any] = {}
    rest = index
    for p in reversed(params):  # the last parameter varies fastest
        axis = grid_axis(p)
        if axis is not None:
            first, count = axis
            rest, at = divmod(rest, count)
            internal[p.path] = first + at
    if rest:  # past the last point
        return None
    return Proposal(nest(params, internal), dict(sorted(internal.items())))


def _distributions(optuna: Any, spec: SweepSpec) -> dict[str, Any]:
    d = optuna.distributions
    out: dict[str, Any] = {}
    for p in spec.searched:
        coord = coordinate(p)
        assert coord is not None
        kind, lo, hi = coord
        if kind == "cat":
            out[p.path] = d.CategoricalDistribution(list(range(int(hi) + 1)))
        elif kind == "int":
            out[p.path] = d.IntDistribution(int(lo), int(hi))
        else:
            out[p.path] = d.FloatDistribution(float(lo), float(hi))
    return out


def _fits(spec: SweepSpec, internal: dict[str, Any]) -> bool:
    """Whether a stored trial's coordinates lie in this space (all numbers, in range)."""
    for p in spec.searched:
        coord, u = coordinate(p), internal.get(p.path)
        assert coord is not None
        if isinstance(u, bool) or not isinstance(u, (int, float)):
            return False
        kind, lo, hi = coord
        if not lo <= u <= hi or (kind != "float" and u != int(u)):
            return False
    return True


def _tpe(spec: SweepSpec, seed: int, trials: Sequence[Trial]) -> dict[str, Any]:
    optuna = require_optuna()
    from optuna.trial import TrialState, create_trial

    dists = _distributions(optuna, spec)
    direction = "maximize" if spec.goal == "maximize" else "minimize"
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=seed,
                multivariate=True,
                constant_liar=True,
                n_startup_trials=_STARTUP_TRIALS,
            )
            study = optuna.create_study(direction=direction, sampler=sampler)
            for t in trials:
                if not _fits(spec, t.internal):
                    continue
                params = {k: t.internal[k] for k in dists}
                if t.status in ("pending", "running"):
                    state, value, steps = TrialState.RUNNING, None, None
                elif t.status == "finished" and t.value is not None:
                    state, value, steps = TrialState.COMPLETE, t.value, None
                elif t.status == "stopped" and t.value is not None:
                    state, value, steps = TrialState.PRUNED, None, {0: t.value}
                else:  # failed, crashed, killed, or no value: nothing learnt from it
                    continue
                study.add_trial(
                    create_trial(
                        params=params,
                        distributions=dists,
                        value=value,
                        state=state,
                        intermediate_values=steps,
                    )
                )
            asked = study.ask(dists)
    finally:
        optuna.logging.set_verbosity(level)
    return {k: asked.params[k] for k in sorted(dists)}
