"""The JSON form of our records, shared by the server and the remote client.

JSON has no NaN or infinities, so non-finite floats travel as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` (as in the CLI's ``--json``). :func:`from_wire`
rebuilds a record from its field types, so a ``float`` field gets its NaN back; a value
typed ``Any`` (a config value, metadata) keeps whatever JSON gave.

>>> from mltrail.entities import MetricSummary
>>> s = MetricSummary("loss", float("nan"), 3, 1.0, None, None, 4)
>>> to_wire(s)["last"]
'NaN'
>>> from_wire(MetricSummary, to_wire(s)).count
4
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from functools import cache
from typing import Any, TypeVar, Union

__all__ = ["from_wire", "to_wire", "wire_float"]

_T = TypeVar("_T")

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _float_text(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def wire_float(value: Any) -> float:
    """A float from its JSON form (a number or one of the three strings)."""
    if isinstance(value, str):
        try:
            return _NONFINITE[value]
        except KeyError:
            raise ValueError(f"not a number: {value!r}") from None
    return float(value)


def to_wire(obj: Any) -> Any:
    """Records (frozen dataclasses), dicts, lists and scalars as plain JSON values."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else _float_text(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_wire(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_wire(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_wire(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalars
        return to_wire(obj.item())
    return str(obj)


@cache
def _hints(cls: type) -> dict[str, Any]:
    import mltrail.entities as entities

    return typing.get_type_hints(cls, vars(entities))


def _convert(tp: Any, value: Any) -> Any:
    if value is None or tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(args[0], value) if len(args) == 1 else value
    if tp is float:
        return wire_float(value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return from_wire(tp, value)
    if origin is tuple:
        first = typing.get_args(tp)[0] if typing.get_args(tp) else Any
        return tuple(_convert(first, v) for v in value)
    if origin is list:
        item = typing.get_args(tp)[0] if typing.get_args(tp) else Any
        return [_convert(item, v) for v in value]
    if origin is dict:
        _, inner = typing.get_args(tp) or (Any, Any)
        return {k: _convert(inner, v) for k, v in value.items()}
    return value


def from_wire(cls: type[_T], data: Any) -> _T:
    """Rebuild record ``cls`` from :func:`to_wire`'s output (unknown keys are ignored,
    so a newer server may add fields)."""
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} expected a JSON object, got {type(data).__name__}")
    hints = _hints(cls)  # type: ignore[arg-type]
    kwargs = {
        f.name: _convert(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name in data
    }
    return cls(**kwargs)
