"""The search space: each parameter's *internal* coordinate and the value it gives.

Every searched parameter is searched over a plain range or a set of choices (its
internal coordinate); :func:`value_of` turns a coordinate into the value the run
gets. Random search draws coordinates, grid search enumerates them, Bayesian search
(Optuna's TPE) learns over them, so all three share one mapping:

- ``log_uniform`` (W&B: ``min``/``max`` are natural-log exponents): exponent in
  ``[min, max]`` -> ``exp(u)``; ``log_uniform_values``: ``u`` in ``[ln min, ln max]``;
  ``inv_log_uniform*``: ``exp(-u)``; ``q_*``: the value rounded to a multiple of ``q``.
- ``normal`` and its kin: a probability ``p`` -> ``mu + sigma * Phi^-1(p)``, so a uniform
  draw of ``p`` is an exact normal draw and TPE searches a bounded range.
- ``categorical``: the index of the choice; ``int_uniform``: the integer itself;
  ``q_uniform``: the multiple ``k`` (value ``k * q``); ``beta``: the value in [0, 1]
  (drawn from Beta(a, b) by random search; TPE searches [0, 1] evenly).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

from mltrail.sweeps.config import Param

__all__ = ["Coordinate", "coordinate", "grid_axis", "nest", "random_internal", "value_of"]

_P_EDGE = 1e-9  # a normal's probability stays inside (0, 1)
_STD = NormalDist()

#: (kind, low, high): kind "float" or "int" (both inclusive), or "cat" (low=0, high=n-1).
Coordinate = tuple[str, float, float]

_LOG_EXPONENT = ("log_uniform", "q_log_uniform", "inv_log_uniform")
_LOG_VALUES = ("log_uniform_values", "q_log_uniform_values")
_NORMAL = ("normal", "q_normal", "log_normal", "q_log_normal")


def coordinate(p: Param) -> Coordinate | None:
    """What ``p`` is searched over; None for a constant."""
    if p.kind == "constant":
        return None
    if p.kind == "categorical":
        return ("cat", 0, len(p.values) - 1)
    if p.kind == "int_uniform":
        return ("int", p.min, p.max)
    if p.kind == "q_uniform":
        return ("int", round(p.min / p.q), round(p.max / p.q))
    if p.kind in ("uniform", *_LOG_EXPONENT):
        return ("float", p.min, p.max)
    if p.kind in _LOG_VALUES:
        return ("float", math.log(p.min), math.log(p.max))
    if p.kind == "inv_log_uniform_values":
        return ("float", -math.log(p.max), -math.log(p.min))
    if p.kind in _NORMAL:
        return ("float", _P_EDGE, 1 - _P_EDGE)
    return ("float", 0.0, 1.0)  # beta, q_beta


def _quantize(p: Param, x: float) -> float | int:
    k = round(x / p.q)
    if p.ints:
        return int(k) * int(p.q)
    return float(f"{k * p.q:.15g}")  # 3 * 0.1 -> 0.3


def value_of(p: Param, u: Any) -> Any:
    """The value a run gets for internal coordinate ``u`` of ``p``."""
    kind = p.kind
    if kind == "constant":
        return p.value
    if kind == "categorical":
        return p.values[int(u)]
    if kind == "int_uniform":
        return int(u)
    if kind == "q_uniform":
        k = int(u)
        return k * int(p.q) if p.ints else float(f"{k * p.q:.15g}")
    x = float(u)
    if kind == "uniform":
        return x
    if kind in ("log_uniform", "log_uniform_values", "q_log_uniform", "q_log_uniform_values"):
        x = math.exp(x)
    elif kind in ("inv_log_uniform", "inv_log_uniform_values"):
        x = math.exp(-x)
    elif kind in _NORMAL:
        x = p.mu + p.sigma * _STD.inv_cdf(min(max(x, _P_EDGE), 1 - _P_EDGE))
        if kind in ("log_normal", "q_log_normal"):
            x = math.exp(x)
    return _quantize(p, x) if kind.startswith("q_") else x


def random_internal(p: Param, rng: random.Random) -> Any:
    """A random draw of ``p``'s coordinate that follows the parameter's distribution."""
    if p.kind == "categorical":
        n = len(p.values)
        if p.probabilities is not None:
            return rng.choices(range(n), weights=p.probabilities)[0]
        return rng.randrange(n)
    if p.kind in ("beta", "q_beta"):
        return rng.betavariate(p.a, p.b)
    coord = coordinate(p)
    if coord is None:  # a constant
        return None
    kind, lo, hi = coord
    if kind == "int":
        return rng.randint(int(lo), int(hi))
    return rng.uniform(lo, hi)


def grid_axis(p: Param) -> tuple[int, int] | None:
    """The coordinates a grid search visits for ``p``: ``(first, how many)``, whole
    numbers in a row (None for a constant). Counted, never listed: a range may be huge."""
    coord = coordinate(p)
    if coord is None:
        return None
    _, lo, hi = coord
    return int(lo), int(hi) - int(lo) + 1


def nest(params: Sequence[Param], internal: Mapping[str, Any]) -> dict[str, Any]:
    """The run's configuration: each parameter's value, nested as in the sweep config."""
    out: dict[str, Any] = {}
    for p in params:
        node = out
        *parents, leaf = p.path.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value_of(p, internal.get(p.path))
    return out
