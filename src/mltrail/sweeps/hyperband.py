"""Hyperband early termination, as W&B's sweeps compute it.

A trial's *history* is its metric's values in step order (one per logged iteration),
negated when the goal is to maximise, so lower is better. At each band ``b`` the
threshold is the value at index ``b`` of the best ``1/eta`` of every trial that got that
far; a running trial past a band whose best value so far (its value at the band, when
``strict``) is worse than the latest band's threshold is stopped.
"""

from __future__ import annotations

from collections.abc import Sequence

from mltrail.sweeps.config import Hyperband

__all__ = ["stop_reason", "thresholds"]


def thresholds(hb: Hyperband, histories: Sequence[Sequence[float]]) -> list[float | None]:
    """Per band, the value a trial must not be worse than (None: no trial got there)."""
    out: list[float | None] = []
    for band in hb.bands:
        reached = sorted(h[band] for h in histories if len(h) > band)
        out.append(reached[int(len(reached) / hb.eta)] if reached else None)
    return out


def stop_reason(
    hb: Hyperband, own: Sequence[float], histories: Sequence[Sequence[float]], metric: str
) -> str | None:
    """Why the trial with history ``own`` should stop now, or None to let it go on.

    ``histories`` are every trial's (this one's included).
    """
    limits = thresholds(hb, histories)
    at: tuple[int, float] | None = None
    for band, limit in zip(hb.bands, limits, strict=True):
        if band >= len(own):
            break
        if limit is not None:
            at = (band, limit)
    if at is None:
        return None
    band, limit = at
    value = own[band] if hb.strict else min(own)
    if value <= limit:
        return None
    return (
        f"stopped early by hyperband at iteration {band + 1}: {metric} "
        f"{'at the band' if hb.strict else 'best so far'} is worse than the top 1/{hb.eta:g} "
        "of the trials there"
    )
