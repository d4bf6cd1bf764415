"""Downsampling keeps extremes; merging applies last-write-wins by step."""

from __future__ import annotations

import math
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from mltrail.series import Series, downsample, merge_chunks


def _series(values: list[float], steps: list[int] | None = None) -> Series:
    steps = steps if steps is not None else list(range(len(values)))
    return Series(array("q", steps), array("d", values), array("d", [0.0] * len(values)))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=3000),
    st.integers(min_value=1, max_value=400),
)
def test_downsample_bounds_and_extremes(values: list[float], max_points: int) -> None:
    s = _series(values)
    out = downsample(s, max_points)
    assert len(out) <= max(max_points, 1)
    assert list(out.steps) == sorted(set(out.steps))  # ordered, no duplicates
    if len(values) <= max_points:
        assert len(out) == len(values)
        return
    assert out.steps[0] == 0 or max_points < 2
    if max_points >= 5:
        finite = [v for v in values if not math.isnan(v)]
        kept = [v for v in out.values if not math.isnan(v)]
        if finite:
            assert max(kept) == max(finite) and min(kept) == min(finite)
        if any(math.isnan(v) for v in values):
            assert any(math.isnan(v) for v in out.values)
        assert out.steps[-1] == len(values) - 1


@given(st.lists(st.tuples(st.integers(-50, 50), st.floats(allow_nan=False)), max_size=200))
def test_merge_is_last_write_wins_sorted(points: list[tuple[int, float]]) -> None:
    half = len(points) // 2
    chunks = [_series([v for _, v in part], [s for s, _ in part]) for part in
              (points[:half], points[half:])]  # fmt: skip
    merged = merge_chunks((c, c.is_ordered()) for c in chunks)
    expected: dict[int, float] = {}
    for step, value in points:
        expected[step] = value
    assert list(merged.steps) == sorted(expected)
    assert list(merged.values) == [expected[k] for k in sorted(expected)]
