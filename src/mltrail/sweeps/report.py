"""Reading a sweep's results: trials ranked by the metric, the best one, and how much
each parameter seems to matter.

Importance is a correlation measure over the finished trials (no model is fitted):
for a numeric parameter the absolute Spearman rank correlation with the metric (its
sign, kept in ``correlation``, says which way is better), for a categorical one the
correlation ratio (eta: how much of the metric's spread the choice explains). Both
lie in [0, 1]; at least 3 finished trials are needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mltrail.client.values import flatten
from mltrail.entities import Sweep, Trial

__all__ = ["Importance", "best_trial", "importance", "ranked", "summary"]

_MIN_TRIALS = 3


@dataclass(frozen=True)
class Importance:
    param: str
    importance: float
    correlation: float | None  # Spearman's rho (numeric parameters only)


def _better_first(sweep: Sweep, value: float) -> float:
    return -value if sweep.goal == "maximize" else value


def ranked(sweep: Sweep, trials: Sequence[Trial]) -> list[Trial]:
    """Finished trials best first, then those stopped early (by value), then the rest."""

    def key(t: Trial) -> tuple[int, float, int]:
        if t.value is None or not math.isfinite(t.value):
            return (2, 0.0, t.number)
        return (0 if t.status == "finished" else 1, _better_first(sweep, t.value), t.number)

    return sorted(trials, key=key)


def best_trial(sweep: Sweep, trials: Sequence[Trial]) -> Trial | None:
    """The finished trial with the best value, or None."""
    for t in ranked(sweep, trials):
        return t if t.status == "finished" and t.value is not None else None
    return None


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def _pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx <= 0 or syy <= 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def _eta(groups: Sequence[Any], y: Sequence[float]) -> float | None:
    mean = sum(y) / len(y)
    total = sum((v - mean) ** 2 for v in y)
    if total <= 0:
        return None
    by: dict[str, list[float]] = {}
    for g, v in zip(groups, y, strict=True):
        by.setdefault(repr(g), []).append(v)
    between = sum(len(vs) * (sum(vs) / len(vs) - mean) ** 2 for vs in by.values())
    return math.sqrt(between / total)


def importance(sweep: Sweep, trials: Sequence[Trial]) -> list[Importance]:
    """How strongly each varying parameter goes with the metric, strongest first."""
    done = [
        t
        for t in trials
        if t.status == "finished" and t.value is not None and math.isfinite(t.value)
    ]
    if len(done) < _MIN_TRIALS:
        return []
    flat = [flatten(t.params, ".", what="config") for t in done]
    y = [float(t.value) for t in done if t.value is not None]
    out: list[Importance] = []
    for key in sorted({k for f in flat for k in f}):
        column = [f.get(key) for f in flat]
        if len({repr(v) for v in column}) < 2:
            continue  # a constant, or never varied
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in column)
        if numeric:
            rho = _pearson(_ranks([float(v) for v in column if v is not None]), _ranks(y))
            if rho is not None:
                out.append(Importance(key, abs(rho), rho))
        else:
            eta = _eta(column, y)
            if eta is not None:
                out.append(Importance(key, eta, None))
    return sorted(out, key=lambda i: (-i.importance, i.param))


def summary(sweep: Sweep, trials: Sequence[Trial]) -> dict[str, Any]:
    """The sweep read as a whole, in wire form: ``trials`` ranked (``rank`` None for
    those without a value), the ``best`` one, the ``searched`` parameters (flat names)
    and their ``importance``. What ``mltrail sweep show --json`` prints and
    ``GET /api/v1/sweeps/{id}/report`` answers."""
    from mltrail.sweeps.config import parse_config
    from mltrail.wire import to_wire

    order = ranked(sweep, trials)
    best = best_trial(sweep, order)

    def wire(t: Trial, rank: int | None) -> dict[str, Any]:
        return {"rank": rank, **to_wire(t)}

    return {
        "sweep": to_wire(sweep),
        "best": None if best is None else wire(best, 1),
        "trials": [wire(t, i + 1 if t.value is not None else None) for i, t in enumerate(order)],
        "searched": [p.path for p in parse_config(sweep.config).searched],
        "importance": [to_wire(w) for w in importance(sweep, order)],
    }
