"""Cheap validation of what users pass to ``log`` and ``config``.

Metric values: anything with ``__float__`` or ``__index__`` (int, float, bool, NumPy and
PyTorch scalars, one-element tensors) becomes a Python float, without importing NumPy or
PyTorch. NaN and ±inf are kept. Strings, None, containers and complex numbers are
rejected with an error naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mltrail.errors import InvalidKeyError, InvalidValueError

__all__ = ["MAX_KEY_LEN", "check_key", "flatten", "metric_value", "param_value"]

MAX_KEY_LEN = 250
_CONTROL = {chr(i) for i in range(32)} | {"\x7f"}


def check_key(key: object, what: str = "metric") -> str:
    if not isinstance(key, str):
        raise InvalidKeyError(
            f"{what} keys must be strings, got {type(key).__name__} {key!r}",
            hint=f"use str({key!r}) as the key",
        )
    if not key or key.isspace():
        raise InvalidKeyError(f"{what} key is empty", hint="give the value a name")
    if len(key) > MAX_KEY_LEN:
        raise InvalidKeyError(
            f"{what} key is {len(key)} characters long; the limit is {MAX_KEY_LEN}: "
            f"{key[:40]!r}...",
            hint="shorten the key",
        )
    if not _CONTROL.isdisjoint(key):
        raise InvalidKeyError(
            f"{what} key {key!r} contains control characters", hint="remove them from the key"
        )
    return key


def metric_value(key: str, value: object) -> float:
    """``value`` as a float, or a clear error."""
    if isinstance(value, (str, bytes, bytearray)) or value is None:
        raise InvalidValueError(
            f"metric {key!r} got {type(value).__name__} {value!r:.60}; metrics are numbers",
            hint="log numbers with run.log(); put text in run.config, tags or notes",
        )
    tp = type(value)
    if hasattr(tp, "__float__") or hasattr(tp, "__index__"):
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidValueError(
                f"metric {key!r} got {tp.__name__} that is not a single real number: {exc}",
                hint="log one scalar per key (e.g. tensor.item(), array.mean())",
            ) from exc
    raise InvalidValueError(
        f"metric {key!r} got {tp.__name__}, which is not a number",
        hint="log one scalar per key; nested dicts are flattened into 'a/b' keys",
    )


def flatten(data: Mapping[str, Any], sep: str, prefix: str = "", *, what: str) -> dict[str, Any]:
    """Nested mappings become ``a<sep>b`` keys; other values are kept as they are."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        name = f"{prefix}{check_key(k, what) if not prefix else k}"
        if isinstance(v, Mapping):
            if not v:
                out[check_key(name, what)] = {}
            out.update(flatten(v, sep, name + sep, what=what))
        else:
            out[check_key(name, what)] = v
    return out


def param_value(key: str, value: Any) -> Any:
    """A JSON-able form of a config value (NumPy scalars unwrapped, objects as str)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [param_value(key, v) for v in value]
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return param_value(key, item())
        except (TypeError, ValueError):
            pass
    return str(value)
