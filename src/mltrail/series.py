"""Operations on whole metric series: merging chunks and downsampling."""

from __future__ import annotations

import operator
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

from mltrail.entities import MetricPoint

__all__ = ["Series", "downsample", "merge_chunks", "to_points"]


@dataclass(slots=True)
class Series:
    """Three parallel columns of one metric series."""

    steps: array[int]
    values: array[float]
    timestamps: array[float]

    @classmethod
    def empty(cls) -> Series:
        return cls(array("q"), array("d"), array("d"))

    def __len__(self) -> int:
        return len(self.steps)

    def extend(self, other: Series) -> None:
        self.steps.extend(other.steps)
        self.values.extend(other.values)
        self.timestamps.extend(other.timestamps)

    def slice(self, start: int, stop: int) -> Series:
        return Series(self.steps[start:stop], self.values[start:stop], self.timestamps[start:stop])

    def is_ordered(self) -> bool:
        """Steps strictly increase (C-speed: no Python bytecode per point)."""
        s = self.steps
        return all(map(operator.lt, s, islice(s, 1, None)))

    def finite_min_max(self) -> tuple[float | None, float | None]:
        """Min and max ignoring NaN (None when every value is NaN)."""
        values = self.values
        if not values:
            return None, None
        total = sum(values)
        if total == total:  # no NaN (and no inf - inf): builtins in C
            return min(values), max(values)
        finite = [v for v in values if v == v]
        return (min(finite), max(finite)) if finite else (None, None)

    def last_index(self, ordered: bool) -> int:
        """Index of the value at the highest step (the latest write among equal steps)."""
        if ordered:
            return len(self.steps) - 1
        steps = self.steps
        top = max(steps)
        return len(steps) - 1 - steps[::-1].index(top)


def merge_chunks(chunks: Iterable[tuple[Series, bool]]) -> Series:
    """Concatenate chunks (in write order) into one series sorted by step.

    Duplicate steps: the last write wins. ``chunks`` yields ``(series, ordered)`` where
    ordered means steps strictly increase inside that chunk.
    """
    out = Series.empty()
    fast = True
    last = None
    parts = list(chunks)
    for series, ordered in parts:
        if not len(series):
            continue
        if not ordered or (last is not None and series.steps[0] <= last):
            fast = False
            break
        last = series.steps[-1]
    if fast:
        for series, _ in parts:
            out.extend(series)
        return out
    latest: dict[int, tuple[float, float]] = {}
    for series, _ in parts:
        for step, value, ts in zip(series.steps, series.values, series.timestamps, strict=True):
            latest[step] = (value, ts)
    for step in sorted(latest):
        value, ts = latest[step]
        out.steps.append(step)
        out.values.append(value)
        out.timestamps.append(ts)
    return out


def to_points(series: Series) -> list[MetricPoint]:
    return [
        MetricPoint(step, value, ts)
        for step, value, ts in zip(series.steps, series.values, series.timestamps, strict=True)
    ]


def downsample(series: Series, max_points: int) -> Series:
    """Reduce to at most ``max_points`` points, keeping every bucket's min and max.

    The series is cut into ``max_points // 5`` buckets of consecutive points; each
    bucket keeps its first, min, max and last point (M4) and its first NaN, so spikes
    and NaN are never smoothed away. The first and last points are kept.
    """
    n = len(series)
    if max_points <= 0:
        raise ValueError("max_points must be positive")
    if n <= max_points:
        return series
    if max_points < 5:
        return _take(series, sorted({0, n - 1})[:max_points])
    buckets = max_points // 5
    values = series.values
    keep: list[int] = []
    for b in range(buckets):
        lo = b * n // buckets
        hi = (b + 1) * n // buckets
        if lo >= hi:
            continue
        i_min = i_max = lo
        v_min = v_max = values[lo]
        nan_at = -1
        for i in range(lo, hi):
            v = values[i]
            if v != v:  # NaN
                if nan_at < 0:
                    nan_at = i
                continue
            if v_min != v_min or v < v_min:
                v_min, i_min = v, i
            if v_max != v_max or v > v_max:
                v_max, i_max = v, i
        picks = {lo, i_min, i_max, hi - 1}
        if nan_at >= 0:
            picks.add(nan_at)
        keep.extend(sorted(picks))
    return _take(series, keep)


def _take(series: Series, idx: list[int]) -> Series:
    out = Series.empty()
    for i in idx:
        out.steps.append(series.steps[i])
        out.values.append(series.values[i])
        out.timestamps.append(series.timestamps[i])
    return out
