"""How values are stored, shared by every store (no database imports here)."""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["encode_param"]


def encode_param(value: Any) -> tuple[str, float | None]:
    """A param's stored form: its JSON text, and its number when it is or reads as one.

    Strings that read as numbers (``"0.01"``) get a number too, so that search compares
    them as numbers. Booleans are not numbers.
    """
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=True)
    num: float | None = None
    if isinstance(value, bool) or value is None:
        num = None
    elif isinstance(value, (int, float)):
        num = float(value)
    elif isinstance(value, str):
        try:
            num = float(value.strip())
        except ValueError:
            num = None
    if num is not None and math.isnan(num):
        num = None
    return text, num
