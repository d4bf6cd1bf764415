"""Model signatures: what a model takes and returns, inferred from an example.

>>> sig = infer_signature([{"age": 31, "city": "Oslo"}, {"age": 45, "city": None}])
>>> sig["inputs"]["columns"][1]
{'name': 'city', 'type': 'string', 'nullable': True}
>>> validate_input(sig, {"age": [52], "city": ["Lyon"]})  # no error: it fits
>>> example_payload([1.5, float("nan"), float("inf")])
[1.5, None, 'Infinity']

A signature is a plain JSON-serialisable dict, versioned by ``"format"``::

    {"format": 1,
     "inputs": {"kind": "table", "columns": [
         {"name": "age", "type": "int64", "nullable": false},
         {"name": "city", "type": "string", "nullable": true}]},
     "outputs": {"kind": "tensor", "type": "float64", "shape": [-1, 3], "nullable": false}}

Each side has one ``kind``:

- ``table``: a pandas DataFrame or a list of records (dicts); ordered ``columns``.
- ``column``: a pandas Series or a flat list of values; ``name`` (or null), ``type``.
- ``tensor``: a numpy array or nested lists; ``type`` and ``shape`` (-1 for the batch
  dimension, and for any dimension whose size varied in the example).
- ``tensors``: a dict of arrays/lists/values; a named ``tensors`` list.
- ``scalar``: one Python or numpy value.

Types: ``bool``, ``int8``...``int64``, ``uint8``...``uint64``, ``float16``/``32``/``64``,
``complex64``/``128``, ``string``, ``binary``, ``datetime64[<unit>]`` (``[<unit>, <tz>]``
when tz-aware), ``timedelta64[<unit>]`` and ``object`` (anything goes).

Missing values follow the library the kind comes from. Tables and columns follow pandas:
None, NaN, NaT and ``pd.NA`` are all missing, and a column that held one in the example
is ``nullable``. Tensors follow numpy: NaN is a float like any other; only None (in
object arrays and lists) and NaT are missing.

Examples (:func:`example_payload`) are what a client would POST: tables become lists of
records; missing values are ``null``; a NaN that is a value (in a tensor) is ``"NaN"``;
infinities are ``"Infinity"`` and ``"-Infinity"`` (the protobuf JSON spelling, so the
example stays strict JSON); dates are ISO 8601 strings, durations seconds, bytes base64.

:func:`validate_input` accepts what inference accepts plus its JSON-decoded form, and
reports every problem at once. Its rules:

- Extra columns, keys and tensors are ignored, as MLflow does: a model reads what it knows.
- Safe casts pass: a narrower int into a wider one, any int or float into a float (JSON
  has one number type), an integral float into an int (``2.0``), an int whose value fits
  a narrower int, ISO 8601 strings into datetimes, base64 strings into binary, numbers
  (seconds) into timedeltas. Never bool into a number, a non-integral float into an int,
  or a string into a number (except the tokens ``"NaN"``, ``"Infinity"``, ``"-Infinity"``).
- Datetimes of any unit or time zone fit any datetime column.
- The batch dimension is free, and so is any dimension the signature marks -1.
- A dict whose values are all lists or arrays is a table's columns; any other dict is
  one record.

Not covered: complex numbers and year/month timedeltas have no JSON form; their examples
are text, which the signature they came from does not accept.

numpy and pandas are optional: this module never imports them; it only uses them when the
caller passes one of their objects (which means they are already loaded).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from mltrail.errors import InputValidationError, InvalidValueError

__all__ = ["FORMAT", "example_payload", "infer_signature", "validate_input"]

FORMAT = 1
"""The signature format this module writes and reads."""

_FLOAT_TOKENS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_KINDS = ("table", "column", "tensor", "tensors", "scalar")
_TYPE_RE = re.compile(
    r"bool|u?int(?:8|16|32|64)|float(?:16|32|64)|complex(?:64|128)|string|binary|object"
    r"|(?:datetime|timedelta)64\[[^\]]+\]"
)
_ISO_OUTSIDE_PYTHON = re.compile(
    r"([+-]?\d{3,})-\d\d-\d\d(?:[T ]\d\d(?::\d\d(?::\d\d(?:\.\d+)?)?)?)?(?:[+-]\d\d:?\d\d)?"
)
_INT_RANGES = {
    **{f"int{b}": (-(2 ** (b - 1)), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64)},
    **{f"uint{b}": (0, 2**b - 1) for b in (8, 16, 32, 64)},
}
_NUMPY_KINDS = {
    "b": "bool", "i": "int", "u": "int", "f": "float", "c": "complex",
    "U": "string", "S": "binary", "M": "datetime", "m": "timedelta",
}  # fmt: skip


# -- public API ------------------------------------------------------------------------


def infer_signature(inputs: Any, outputs: Any = None) -> dict[str, Any]:
    """The signature of a model that takes ``inputs`` (and returns ``outputs``).

    >>> infer_signature([[0.5, 1.0], [2.0, 3.5]], outputs=[1, 0])
    ... # doctest: +NORMALIZE_WHITESPACE
    {'format': 1,
     'inputs': {'kind': 'tensor', 'type': 'float64', 'shape': [-1, 2], 'nullable': False},
     'outputs': {'kind': 'column', 'name': None, 'type': 'int64', 'nullable': False}}

    Raises :class:`~mltrail.errors.InvalidValueError` for what has no signature (an
    empty list, None, an arbitrary object).
    """
    return {
        "format": FORMAT,
        "inputs": _infer(inputs, "inputs"),
        "outputs": None if outputs is None else _infer(outputs, "outputs"),
    }


def example_payload(inputs: Any, max_rows: int = 5) -> Any:
    """The first ``max_rows`` rows of ``inputs`` as JSON-ready Python values.

    >>> example_payload({"x": [[1.0, float("nan")], [3.0, 4.0]], "k": 7}, max_rows=1)
    {'x': [[1.0, 'NaN']], 'k': 7}

    A DataFrame becomes a list of records. Only the first (batch) dimension is cut.
    """
    if max_rows < 1:
        raise InvalidValueError(f"max_rows must be at least 1, got {max_rows}")
    if _is_frame(inputs):
        head = inputs.head(max_rows)
        names = [str(c) for c in head.columns]
        columns = [_series_json(head.iloc[:, i]) for i in range(len(names))]
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    if _is_series(inputs):
        return _series_json(inputs.head(max_rows))
    if isinstance(inputs, Mapping):
        return {str(k): _head_json(v, max_rows) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)) and not any(_is_sequence(i) for i in inputs):
        return [_jsonable(v, nan_null=True) for v in inputs[:max_rows]]  # records, a column
    return _head_json(inputs, max_rows)


def validate_input(signature: Mapping[str, Any], data: Any) -> None:
    """Check ``data`` against the ``inputs`` side of ``signature``; silent when it fits.

    >>> sig = infer_signature({"ids": [[1, 2, 3]]})
    >>> validate_input(sig, {"ids": [[4, 5, 6], [7, 8, 9]]})
    >>> validate_input(sig, {"ids": [[4.5, 5, 6]]})
    Traceback (most recent call last):
      ...
    mltrail.errors.InputValidationError: input does not match the model signature (1 problem)
      - tensor 'ids': expected int64, got a non-integral float at index [0, 0] (4.5)

    Raises :class:`~mltrail.errors.InputValidationError` whose ``errors`` names every
    problem with its field, or :class:`~mltrail.errors.InvalidValueError` when the
    signature itself is malformed. A signature without inputs accepts anything.
    """
    spec = _inputs_of(signature)
    if spec is None:
        return
    errors = _CHECKS[spec["kind"]](spec, data)
    if errors:
        n = len(errors)
        raise InputValidationError(
            f"input does not match the model signature ({n} problem{'s' * (n != 1)})", errors
        )


# -- recognising numpy and pandas objects without importing them -----------------------


def _loaded(module: str, attr: str, x: object) -> bool:
    mod = sys.modules.get(module)
    return mod is not None and isinstance(x, getattr(mod, attr))


def _is_ndarray(x: Any) -> bool:
    return _loaded("numpy", "ndarray", x)


def _is_np_scalar(x: Any) -> bool:
    return _loaded("numpy", "generic", x)


def _is_frame(x: Any) -> bool:
    return _loaded("pandas", "DataFrame", x)


def _is_series(x: Any) -> bool:
    return _loaded("pandas", "Series", x)


def _is_sequence(x: Any) -> bool:
    return isinstance(x, (list, tuple)) or (_is_ndarray(x) and bool(x.ndim))


def _describe(x: Any) -> str:
    if _is_ndarray(x) or _is_frame(x):
        return f"{type(x).__name__} of shape {list(x.shape)}"
    return type(x).__name__


# -- types -----------------------------------------------------------------------------


def _family(type_name: str) -> str:
    for family in ("uint", "int", "float", "complex", "datetime", "timedelta"):
        if type_name.startswith(family):
            return family
    return type_name  # bool, string, binary, object


def _is_null(v: Any, nan_is_null: bool) -> bool:
    if v is None or type(v).__name__ in ("NAType", "NaTType"):
        return True
    if _is_np_scalar(v):
        kind = v.dtype.kind
        return (kind in "Mm" or (nan_is_null and kind in "fc")) and bool(v != v)
    return nan_is_null and isinstance(v, (float, complex)) and v != v


def _value_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if _is_np_scalar(v):
        return _NUMPY_KINDS.get(v.dtype.kind, "object")
    for kind, types in (
        ("int", int), ("float", float), ("complex", complex), ("string", str),
        ("binary", (bytes, bytearray)), ("datetime", dt.datetime), ("date", dt.date),
        ("timedelta", dt.timedelta),
    ):  # fmt: skip
        if isinstance(v, types):
            return kind
    return "object"


def _python_type(values: Iterable[Any], nan_is_null: bool) -> tuple[str, bool]:
    """The type name that holds every value, and whether one of them is missing."""
    kinds: set[str] = set()
    nullable = False
    lo = hi = 0
    for v in values:
        if _is_null(v, nan_is_null):
            nullable = True
            continue
        kind = _value_kind(v)
        if kind == "int":
            lo, hi = min(lo, int(v)), max(hi, int(v))
        kinds.add(kind)
    if kinds == {"int"}:
        if lo >= -(2**63) and hi < 2**63:
            return "int64", nullable
        return ("uint64" if lo >= 0 and hi < 2**64 else "object"), nullable
    for group, name in (
        ({"int", "float"}, "float64"),
        ({"int", "float", "complex"}, "complex128"),
        ({"date"}, "datetime64[D]"),
        ({"datetime", "date"}, "datetime64[us]"),
        ({"timedelta"}, "timedelta64[us]"),
        ({"bool"}, "bool"),
        ({"string"}, "string"),
        ({"binary"}, "binary"),
    ):
        if kinds and kinds <= group:
            return name, nullable
    return "object", nullable


def _numpy_type(dtype: Any, values: Callable[[], list[Any]] | None = None) -> str:
    """Our name for a numpy dtype; object arrays are typed by ``values`` when given."""
    kind = dtype.kind
    if kind == "U":
        return "string"
    if kind == "S":
        return "binary"
    if kind == "m" and str(dtype.name)[-3:] in ("[Y]", "[M]"):
        return "object"  # years and months have no fixed length
    if kind in "biufcMm" and _TYPE_RE.fullmatch(str(dtype.name)):
        return str(dtype.name)
    if kind == "O" and values is not None:
        return _python_type(values(), nan_is_null=False)[0]
    return "object"


def _pandas_type(series: Any, deep: bool) -> str:
    """Our name for a Series' dtype; object columns are typed by their values if ``deep``."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _pandas_type(pd.Series(dtype.categories), deep)
    if isinstance(dtype, pd.StringDtype) or str(dtype).startswith("string"):
        return "string"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return str(dtype)
    np_dtype = getattr(dtype, "numpy_dtype", dtype)  # Int64, boolean, Float64, arrow
    if getattr(np_dtype, "kind", "O") != "O":
        return _numpy_type(np_dtype)
    if not deep:
        return "object"
    return _python_type(series.dropna().tolist(), nan_is_null=True)[0]


# -- inference -------------------------------------------------------------------------


def _infer(x: Any, side: str) -> dict[str, Any]:
    if _is_frame(x):
        names = [str(c) for c in x.columns]
        if len(set(names)) != len(names):
            raise InvalidValueError(f"{side}: the DataFrame has duplicate column names")
        columns = [_series_spec(name, x.iloc[:, i]) for i, name in enumerate(names)]
        return {"kind": "table", "columns": columns}
    if _is_series(x):
        name = None if x.name is None else str(x.name)
        return {"kind": "column", **_series_spec(name, x)}
    if _is_ndarray(x):
        return {"kind": "tensor", **_tensor_spec(x)}
    if isinstance(x, Mapping):
        if not x:
            raise InvalidValueError(f"{side}: cannot infer a signature from an empty dict")
        tensors = [{"name": str(k), **_tensor_spec(v)} for k, v in x.items()]
        return {"kind": "tensors", "tensors": tensors}
    if isinstance(x, (list, tuple)):
        return _infer_list(x, side)
    if _value_kind(x) != "object":
        type_name = _numpy_type(x.dtype) if _is_np_scalar(x) else _python_type([x], False)[0]
        return {"kind": "scalar", "type": type_name, "nullable": False}
    raise InvalidValueError(
        f"{side}: cannot infer a signature from {_describe(x)}",
        hint="pass a numpy array, a pandas DataFrame or Series, a dict of arrays or lists, "
        "a list of records, a list or a single value",
    )


def _infer_list(x: Sequence[Any], side: str) -> dict[str, Any]:
    if not x:
        raise InvalidValueError(f"{side}: cannot infer a signature from an empty list")
    records = [isinstance(i, Mapping) for i in x]
    if all(records):
        names = list(dict.fromkeys(str(k) for r in x for k in r))
        rows = [{str(k): v for k, v in r.items()} for r in x]
        columns = []
        for name in names:
            type_name, nullable = _python_type((r.get(name) for r in rows), nan_is_null=True)
            columns.append({"name": name, "type": type_name, "nullable": nullable})
        return {"kind": "table", "columns": columns}
    if any(records):
        raise InvalidValueError(f"{side}: the list mixes records (dicts) and other values")
    if any(_is_sequence(i) for i in x):
        return {"kind": "tensor", **_tensor_spec(x)}
    type_name, nullable = _python_type(x, nan_is_null=True)
    return {"kind": "column", "name": None, "type": type_name, "nullable": nullable}


def _series_spec(name: str | None, series: Any) -> dict[str, Any]:
    nullable = bool(series.isna().any())
    return {"name": name, "type": _pandas_type(series, deep=True), "nullable": nullable}


def _tensor_spec(x: Any) -> dict[str, Any]:
    if _is_series(x):  # a Series stays a pandas column: NaN is missing
        type_name, nullable = _pandas_type(x, deep=True), bool(x.isna().any())
        return {"type": type_name, "shape": [-1], "nullable": nullable}
    if _is_frame(x):
        x = x.to_numpy()
    if _is_ndarray(x):
        shape = [-1, *(int(d) for d in x.shape[1:])] if x.ndim else []
        type_name = _numpy_type(x.dtype, lambda: x.ravel().tolist())
        return {"type": type_name, "shape": shape, "nullable": bool(_array_nulls(x).any())}
    if isinstance(x, Mapping):
        return {"type": "object", "shape": [], "nullable": False}
    dims, leaves, _ = _nested(x)
    type_name, nullable = _python_type(leaves, nan_is_null=False)
    shape = [-1 if d is None else d for d in dims]
    return {"type": type_name, "shape": [-1, *shape[1:]] if shape else [], "nullable": nullable}


def _nested(x: Any) -> tuple[list[int | None], list[Any], bool]:
    """Shape of nested lists (None where lengths vary), their leaves, and whether the
    shape is complete (False when an empty dimension hides the ones below it)."""
    dims: list[int | None] = []
    level = [x]
    while level and all(_is_sequence(i) for i in level):
        items = [i.tolist() if _is_ndarray(i) else i for i in level]
        lengths = {len(i) for i in items}
        dims.append(lengths.pop() if len(lengths) == 1 else None)
        level = [leaf for i in items for leaf in i]
    if any(_is_sequence(i) for i in level):  # leaves at different depths
        dims.append(None)
    return dims, level, bool(level) or not dims


def _array_nulls(a: Any, nan_is_null: bool = False) -> Any:
    import numpy as np

    kind = a.dtype.kind
    if kind in "Mm":
        return np.isnat(a)
    if kind in "fc" and nan_is_null:
        return np.isnan(a)
    if kind == "O":
        flags = [_is_null(v, nan_is_null) for v in a.ravel().tolist()]
        return np.array(flags, dtype=bool).reshape(a.shape)
    return np.zeros(a.shape, dtype=bool)


# -- examples --------------------------------------------------------------------------


def _head_json(x: Any, max_rows: int) -> Any:
    if _is_series(x):
        return _series_json(x.head(max_rows))
    if _is_frame(x):
        x = x.head(max_rows).to_numpy()
    if _is_ndarray(x):
        return _array_json(x[:max_rows] if x.ndim else x)
    if isinstance(x, (list, tuple)):
        return [_jsonable(v, nan_null=False) for v in x[:max_rows]]
    return _jsonable(x, nan_null=False)


def _series_json(series: Any) -> list[Any]:
    nulls = series.isna().tolist()
    return [None if n else _jsonable(v, True) for v, n in zip(series.tolist(), nulls, strict=True)]


def _array_json(a: Any) -> Any:
    import numpy as np

    if a.dtype.kind == "M":
        if np.datetime_data(a.dtype)[0] in ("Y", "M", "W"):  # "2024" is no ISO date
            a = a.astype("datetime64[D]")
        strings = np.datetime_as_string(a).tolist()
        return _map_nested(strings, lambda s: None if s == "NaT" else s)
    if a.dtype.kind == "m" and np.datetime_data(a.dtype)[0] in ("Y", "M"):
        return _map_nested(a.astype(str).tolist(), lambda s: None if s == "NaT" else s)
    if a.dtype.kind == "m":
        seconds = (a / np.timedelta64(1, "s")).tolist()
        return _map_nested(seconds, lambda s: None if s != s else s)
    return _jsonable(a.tolist(), nan_null=False)


def _map_nested(x: Any, fn: Callable[[Any], Any]) -> Any:
    return [_map_nested(i, fn) for i in x] if isinstance(x, list) else fn(x)


def _jsonable(v: Any, nan_null: bool) -> Any:
    """One value as JSON: see the module docstring for the encoding."""
    if _is_null(v, nan_null):
        return None
    if isinstance(v, Mapping):
        return {str(k): _jsonable(i, nan_null) for k, i in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(i, nan_null) for i in v]
    if _is_ndarray(v) or _is_np_scalar(v):
        return _array_json(v) if v.dtype.kind in "Mm" else _jsonable(v.tolist(), nan_null)
    if isinstance(v, bool):
        return v
    if isinstance(v, int):  # also subclasses (IntEnum): plain values
        return int(v)
    if isinstance(v, float):
        if math.isfinite(v):
            return float(v)
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, str):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode("ascii")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    return str(v)


# -- validation ------------------------------------------------------------------------


def _inputs_of(signature: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if not isinstance(signature, Mapping):
        raise InvalidValueError(f"a signature is a dict, got {_describe(signature)}")
    if signature.get("format") != FORMAT:
        raise InvalidValueError(
            f"unsupported signature format {signature.get('format')!r}; "
            f"this version of mltrail reads format {FORMAT}",
            hint="upgrade mltrail, or infer the signature again with infer_signature()",
        )
    spec = signature.get("inputs")
    if spec is None:
        return None
    problems = _spec_problems(spec)
    if problems or not isinstance(spec, Mapping):
        raise InvalidValueError("malformed signature inputs: " + "; ".join(problems))
    return spec


def _spec_problems(spec: Any) -> list[str]:
    if not isinstance(spec, Mapping) or spec.get("kind") not in _KINDS:
        return [f"'kind' must be one of {', '.join(_KINDS)}"]
    kind = spec["kind"]
    if kind in ("table", "tensors"):
        key = "columns" if kind == "table" else kind
        entries = spec.get(key)
        if not isinstance(entries, list):
            return [f"{key!r} must be a list"]
        problems = [
            f"{key}[{i}] needs a string 'name'"
            for i, e in enumerate(entries)
            if not isinstance(e, Mapping) or not isinstance(e.get("name"), str)
        ]
        if problems:
            return problems
        needs_shape = kind == "tensors"
        return [p for e in entries for p in _entry_problems(e, e["name"], needs_shape)]
    return _entry_problems(spec, "inputs", needs_shape=kind == "tensor")


def _entry_problems(entry: Mapping[str, Any], where: str, needs_shape: bool) -> list[str]:
    problems = []
    if not isinstance(entry.get("type"), str) or not _TYPE_RE.fullmatch(entry["type"]):
        problems.append(f"{where}: unknown type {entry.get('type')!r}")
    if not isinstance(entry.get("nullable", False), bool):
        problems.append(f"{where}: 'nullable' must be true or false")
    shape = entry.get("shape")
    if needs_shape and not (
        isinstance(shape, list)
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in shape)
    ):
        problems.append(f"{where}: 'shape' must be a list of sizes (-1 for any)")
    return problems


class _View(NamedTuple):
    """A payload field seen the same way whatever it came as."""

    actual: str  # our type name of its dtype; "object" for Python values
    shape: list[int | None]
    complete: bool  # False: an empty dimension hides the ones below
    null_count: int
    first_null: int
    values: Callable[[], list[tuple[int, Any]]]  # (flat position, value) of non-null items


def _view(x: Any, expected: str, nan_is_null: bool, nested: bool) -> _View:
    """``x`` as a field: nested lists are walked for tensors (``nested``), not for columns."""
    if _is_series(x):
        nan_is_null = True  # a Series keeps pandas' meaning of NaN, even as a tensor
        actual = _pandas_type(x, deep=False)
        if actual != "object":
            return _view_masked(actual, [len(x)], x.tolist, x.isna().to_numpy())
        x = x.tolist()
    if _is_ndarray(x) and x.dtype.kind != "O":
        mask = _array_nulls(x, nan_is_null).ravel()
        flat = x.ravel().tolist
        return _view_masked(_numpy_type(x.dtype), list(x.shape), flat, mask)
    shape: list[int | None]
    if _is_ndarray(x):
        shape, leaves, complete = list(x.shape), x.ravel().tolist(), True
    elif nested:
        shape, leaves, complete = _nested(x)
    else:
        leaves = list(x)
        shape, complete = [len(leaves)], True
    if _family(expected) in ("float", "complex"):
        leaves = [_FLOAT_TOKENS.get(v, v) if isinstance(v, str) else v for v in leaves]
    nulls = [_is_null(v, nan_is_null) for v in leaves]
    count = sum(nulls)
    first = nulls.index(True) if count else -1
    items = [(i, v) for i, (v, null) in enumerate(zip(leaves, nulls, strict=True)) if not null]
    return _View("object", shape, complete, count, first, lambda: items)


def _view_masked(
    actual: str, shape: list[int | None], flat: Callable[[], list[Any]], mask: Any
) -> _View:
    count = int(mask.sum())
    first = int(mask.argmax()) if count else -1

    def values() -> list[tuple[int, Any]]:
        return [(i, v) for i, (v, m) in enumerate(zip(flat(), mask.tolist(), strict=True)) if not m]

    return _View(actual, shape, True, count, first, values)


def _compat(actual: str, expected: str) -> str:
    """How a payload typed ``actual`` fits ``expected``: ``"ok"`` (always), ``"values"``
    (depends on the values) or ``"no"`` (never)."""
    have, want = _family(actual), _family(expected)
    if actual == expected or want == "object" or (have == want and have not in ("int", "uint")):
        return "ok"
    if have == "object" or (have == "string" and want in ("binary", "datetime")):
        return "values"
    if have in ("int", "uint") and want in ("int", "uint"):
        (lo, hi), (want_lo, want_hi) = _INT_RANGES[actual], _INT_RANGES[expected]
        return "ok" if want_lo <= lo and hi <= want_hi else "values"
    if have == "float" and want in ("int", "uint"):
        return "values"
    numeric = ("int", "uint", "float")
    if (want == "float" and have in numeric) or (want == "complex" and have in numeric):
        return "ok"
    return "ok" if want == "timedelta" and have in numeric else "no"


def _misfit(v: Any, expected: str) -> str | None:
    """Why the non-null value ``v`` does not fit ``expected``; None when it does."""
    want, kind = _family(expected), _value_kind(v)
    if want in ("int", "uint") and kind in ("int", "float"):
        if kind == "float" and not (math.isfinite(v) and float(v).is_integer()):
            return "got a non-integral float"
        lo, hi = _INT_RANGES[expected]
        return None if lo <= int(v) <= hi else f"got a value out of the {expected} range"
    if want == "object" or kind == want or (want == "datetime" and kind == "date"):
        return None
    if kind == "int" and want in ("float", "complex", "timedelta"):
        return None
    if kind == "float" and want in ("complex", "timedelta"):
        return None
    if kind == "string" and want == "binary":
        return None if _is_base64(v) else "got a string that is not base64"
    if kind == "string" and want == "datetime":
        return None if _parse_datetime(v) else "got a string that is not an ISO 8601 date"
    return f"got {kind if kind != 'object' else type(v).__name__}"


def _is_base64(s: str) -> bool:
    try:
        base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _parse_datetime(s: str) -> bool:
    text = s.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # nanoseconds: Python stops at micro
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:  # numpy writes years outside Python's 1..9999 (0000, -0001, 10000)
        match = _ISO_OUTSIDE_PYTHON.fullmatch(text)
        return match is not None and not 1 <= int(match[1]) <= 9999
    return True


def _check_field(
    field: str, x: Any, spec: Mapping[str, Any], nan_is_null: bool, where: str
) -> list[str]:
    """Every problem of one column (``where="row"``), tensor (``"index"``) or value."""
    expected = spec["type"]
    expected_shape: list[int] | None = spec.get("shape")
    view = _view(x, expected, nan_is_null, nested=expected_shape is not None)
    errors = []
    if expected_shape is None and len(view.shape) != 1:
        return [f"{field}: expected a flat list of values, got {_describe(x)}"]
    if expected_shape is not None:
        errors += _shape_problems(field, expected_shape, view)
    # the leaves of nested lists of the wrong shape are not the values the model reads
    leaves_ok = not errors or _is_ndarray(x) or _is_series(x)

    def at(i: int) -> str:
        if where == "row":
            return f" at row {i}"
        dims = view.shape
        if where == "value" or not all(isinstance(d, int) and d > 0 for d in dims):
            return "" if where == "value" else f" at flat index {i}"
        index = []
        for d in reversed(dims):
            i, r = divmod(i, d or 1)
            index.append(r)
        return f" at index {index[::-1]}"

    compat = _compat(view.actual, expected)
    if compat == "no":
        errors.append(f"{field}: expected {expected}, got {view.actual}")
    if view.null_count and not spec.get("nullable", False):
        n = view.null_count
        errors.append(
            f"{field}: {n} missing value{'s' * (n != 1)} but it is not nullable"
            + (f" (first{at(view.first_null)})" if where != "value" else "")
        )
    if compat == "values" and leaves_ok:
        found: dict[str, list[Any]] = {}
        for i, v in view.values():
            reason = _misfit(v, expected)
            if reason is not None:
                found.setdefault(reason, [0, i, v])[0] += 1
        for reason, (count, i, v) in found.items():
            more = f", {count} values in all" if count > 1 else ""
            errors.append(f"{field}: expected {expected}, {reason}{at(i)} ({_short(v)}){more}")
    return errors


def _shape_problems(field: str, expected: list[int], view: _View) -> list[str]:
    shape = view.shape
    if len(shape) != len(expected) and (view.complete or len(shape) > len(expected)):
        shown = ", ".join("?" if d is None else str(d) for d in shape)
        return [
            f"{field}: expected {len(expected)} dimension{'s' * (len(expected) != 1)} "
            f"(shape {expected}), got {len(shape)} (shape [{shown}])"
        ]
    return [
        f"{field}: dimension {i} has size {got}, expected {want}"
        if got is not None
        else f"{field}: dimension {i} is ragged (its sizes vary), expected {want}"
        for i, (want, got) in enumerate(zip(expected, shape, strict=False))
        if want != -1 and got != want
    ]


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _columns_of(data: Any) -> tuple[dict[str, Any], list[str]] | None:
    """``name -> values`` of a table-like payload and problems of its own; None if not one."""
    if _is_frame(data):
        return {str(c): data.iloc[:, i] for i, c in enumerate(data.columns)}, []
    if isinstance(data, Mapping):
        if not all(_is_sequence(v) or _is_series(v) for v in data.values()):
            data = {k: [v] for k, v in data.items()}  # one record
        columns = {str(k): v for k, v in data.items()}
        lengths = {name: len(v) for name, v in columns.items()}
        first = next(iter(lengths), None)
        problems = [
            f"column {name!r}: has {n} rows but column {first!r} has {lengths[first]}"
            for name, n in lengths.items()
            if first is not None and n != lengths[first]
        ]
        return columns, problems
    if isinstance(data, (list, tuple)) and all(isinstance(r, Mapping) for r in data):
        rows = [{str(k): v for k, v in r.items()} for r in data]
        names = dict.fromkeys(k for r in rows for k in r)
        return {name: [r.get(name) for r in rows] for name in names}, []
    return None


def _check_table(spec: Mapping[str, Any], data: Any) -> list[str]:
    found = _columns_of(data)
    if found is None:
        return [
            "input: expected a table (a DataFrame, a list of records or a dict of columns), "
            f"got {_describe(data)}"
        ]
    columns, errors = found
    if isinstance(data, (list, tuple)) and not data:
        return []  # no rows: nothing to check
    for col in spec["columns"]:
        field = f"column {col['name']!r}"
        if col["name"] not in columns:
            errors.append(f"{field}: missing")
        else:
            errors += _check_field(field, columns[col["name"]], col, True, "row")
    return errors


def _check_column(spec: Mapping[str, Any], data: Any) -> list[str]:
    name = spec.get("name")
    field = "column" if name is None else f"column {name!r}"
    if _is_frame(data):
        names = [str(c) for c in data.columns]
        if name in names:
            data = data.iloc[:, names.index(name)]
        elif len(names) == 1:
            data = data.iloc[:, 0]
        else:
            return [f"{field}: missing from a DataFrame with columns {names}"]
    if not (_is_series(data) or _is_sequence(data)):
        return [f"{field}: expected a list of values, got {_describe(data)}"]
    return _check_field(field, data, spec, True, "row")


def _check_tensor(spec: Mapping[str, Any], data: Any, field: str = "tensor") -> list[str]:
    if _is_frame(data):
        data = data.to_numpy()
    if isinstance(data, Mapping) and spec["shape"]:  # a 0-d object tensor may hold a dict
        return [f"{field}: expected an array or a list, got {_describe(data)}"]
    return _check_field(field, data, spec, False, "index")


def _check_tensors(spec: Mapping[str, Any], data: Any) -> list[str]:
    if isinstance(data, Mapping):
        tensors = {str(k): v for k, v in data.items()}
    else:
        found = _columns_of(data)  # a DataFrame or records: one tensor per column
        if found is None:
            return [f"input: expected named tensors (a dict of arrays), got {_describe(data)}"]
        tensors = found[0]
    errors = []
    for t in spec["tensors"]:
        field = f"tensor {t['name']!r}"
        if t["name"] not in tensors:
            errors.append(f"{field}: missing")
        else:
            errors += _check_tensor(t, tensors[t["name"]], field)
    return errors


def _check_scalar(spec: Mapping[str, Any], data: Any) -> list[str]:
    if _is_ndarray(data) and not data.ndim:
        data = data[()]
    if _is_sequence(data) or isinstance(data, Mapping) or _is_frame(data) or _is_series(data):
        return [f"input: expected a single value, got {_describe(data)}"]
    return _check_field("input", [data], {**spec, "shape": [-1]}, False, "value")


_CHECKS: dict[str, Callable[[Mapping[str, Any], Any], list[str]]] = {
    "table": _check_table,
    "column": _check_column,
    "tensor": _check_tensor,
    "tensors": _check_tensors,
    "scalar": _check_scalar,
}
