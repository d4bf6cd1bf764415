"""Packing metric series into chunk rows.

A chunk is ``zlib(steps int64[n] | values float64[n] | timestamps float64[n])``, little
endian. NaN and ±inf survive unchanged (they are IEEE bit patterns, not SQL values).
"""

from __future__ import annotations

import sys
import zlib
from array import array

from mltrail.series import Series

__all__ = ["MAX_CHUNK", "OPEN_CHUNK", "Series", "pack", "unpack"]

#: Points per chunk row at most.
MAX_CHUNK = 50_000
#: A series' last chunk with fewer points than this is extended in place by the next
#: batch instead of starting a new row, so slow loops don't leave a row per flush.
OPEN_CHUNK = 2_000

_SWAP = sys.byteorder != "little"


def pack(series: Series) -> bytes:
    parts: list[array[int] | array[float]] = [series.steps, series.values, series.timestamps]
    if _SWAP:  # pragma: no cover - big-endian hosts
        parts = [p[:] for p in parts]
        for p in parts:
            p.byteswap()
    return zlib.compress(b"".join(p.tobytes() for p in parts), 1)


def unpack(blob: bytes, count: int) -> Series:
    raw = zlib.decompress(blob)
    if len(raw) != 24 * count:
        raise ValueError(f"chunk holds {len(raw)} bytes, expected {24 * count}")
    steps, values, stamps = array("q"), array("d"), array("d")
    steps.frombytes(raw[: 8 * count])
    values.frombytes(raw[8 * count : 16 * count])
    stamps.frombytes(raw[16 * count :])
    if _SWAP:  # pragma: no cover
        for p in (steps, values, stamps):
            p.byteswap()
    return Series(steps, values, stamps)
