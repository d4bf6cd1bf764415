"""Signatures: inference from numpy, pandas and Python payloads, examples, validation."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.extra import pandas as hpd

from mltrail.errors import InputValidationError, InvalidValueError, ValidationError
from mltrail.registry.signature import FORMAT, example_payload, infer_signature, validate_input


def roundtrip(x: Any) -> Any:
    return json.loads(json.dumps(x, allow_nan=False))


def problems(signature: dict[str, Any], data: Any) -> list[str]:
    with pytest.raises(InputValidationError) as info:
        validate_input(signature, data)
    assert str(len(info.value.errors)) in info.value.message
    return info.value.errors


def the_problem(signature: dict[str, Any], data: Any) -> str:
    errors = problems(signature, data)
    assert len(errors) == 1, errors
    return errors[0]


def inputs(x: Any) -> dict[str, Any]:
    spec: dict[str, Any] = infer_signature(x)["inputs"]
    return spec


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45, 52],
            "height": [1.8, np.nan, np.inf],
            "city": ["Oslo", None, "Lyon"],
            "member": [True, False, True],
            "joined": pd.to_datetime(["2024-01-01", None, "2024-03-01 12:30"], format="ISO8601"),
            "grade": pd.Categorical(["a", "b", "a"]),
            "visits": pd.array([1, None, 3], dtype="Int64"),
            "small": np.array([1, 2, 3], dtype="int8"),
            "score": np.array([0.5, 1.5, 2.5], dtype="float32"),
            "blob": [b"\x00\x01", b"x", b"y"],
        }
    )


# -- inference -------------------------------------------------------------------------


def test_dataframe_signature_lists_columns_in_order(frame: pd.DataFrame) -> None:
    sig = infer_signature(frame, frame["age"])
    assert sig["format"] == FORMAT == 1
    assert sig["inputs"] == {
        "kind": "table",
        "columns": [
            {"name": "age", "type": "int64", "nullable": False},
            {"name": "height", "type": "float64", "nullable": True},
            {"name": "city", "type": "string", "nullable": True},
            {"name": "member", "type": "bool", "nullable": False},
            {"name": "joined", "type": frame["joined"].dtype.name, "nullable": True},
            {"name": "grade", "type": "string", "nullable": False},
            {"name": "visits", "type": "int64", "nullable": True},
            {"name": "small", "type": "int8", "nullable": False},
            {"name": "score", "type": "float32", "nullable": False},
            {"name": "blob", "type": "binary", "nullable": False},
        ],
    }
    assert sig["outputs"] == {"kind": "column", "name": "age", "type": "int64", "nullable": False}
    assert roundtrip(sig) == sig


@pytest.mark.parametrize(
    ("series", "type_name"),
    [
        (pd.Series([1, 2]), "int64"),
        (pd.Series([1.0, 2.0], dtype="float32"), "float32"),
        (pd.Series([True, None], dtype="boolean"), "bool"),
        (pd.Series(["a", "b"], dtype="string"), "string"),
        (pd.Series(pd.to_datetime(["2024-01-01"], utc=True)), "datetime64[{}, UTC]"),
        (pd.Series(pd.to_timedelta([1], unit="s")), "timedelta64[{}]"),
        (pd.Series([{"a": 1}, [1]]), "object"),
        (pd.Series([1, "a"]), "object"),
        (pd.Series([dt.date(2024, 1, 1)]), "datetime64[D]"),
        (pd.Series([None, None], dtype=object), "object"),
    ],
)
def test_pandas_dtypes_get_stable_names(series: pd.Series, type_name: str) -> None:
    dtype = series.dtype
    unit = getattr(dtype, "unit", None) or (
        np.datetime_data(dtype)[0] if dtype.kind in "Mm" else ""
    )
    assert inputs(series)["type"] == type_name.format(unit)


@pytest.mark.parametrize(
    "dtype", ["bool", "int8", "int16", "int32", "int64", "uint8", "uint64", "float16", "float32",
              "float64", "complex128", "datetime64[ns]", "datetime64[s]", "timedelta64[ms]"],
)  # fmt: skip
def test_numpy_arrays_keep_their_dtype_and_free_the_batch_dimension(dtype: str) -> None:
    spec = inputs(np.zeros((4, 28, 3), dtype=dtype))
    assert spec == {"kind": "tensor", "type": dtype, "shape": [-1, 28, 3], "nullable": False}


def test_numpy_strings_bytes_and_objects() -> None:
    assert inputs(np.array(["a", "bb"]))["type"] == "string"
    assert inputs(np.array([b"a", b"bb"]))["type"] == "binary"
    assert inputs(np.array(["a", None], dtype=object)) == {
        "kind": "tensor", "type": "string", "shape": [-1], "nullable": True,
    }  # fmt: skip
    assert inputs(np.array([1, "a"], dtype=object))["type"] == "object"
    assert inputs(np.array(["2024-01-01", "NaT"], dtype="datetime64[ns]"))["nullable"] is True


def test_zero_dimensional_array_and_scalars() -> None:
    assert inputs(np.array(2.5)) == {
        "kind": "tensor", "type": "float64", "shape": [], "nullable": False,
    }  # fmt: skip
    assert inputs(np.float32(2.5)) == {"kind": "scalar", "type": "float32", "nullable": False}
    assert inputs(3) == {"kind": "scalar", "type": "int64", "nullable": False}
    assert inputs("hi")["type"] == "string"
    assert inputs(True)["type"] == "bool"
    assert inputs(b"\x00")["type"] == "binary"
    assert inputs(dt.datetime(2024, 1, 1))["type"] == "datetime64[us]"


def test_dict_of_arrays_lists_and_values_gives_named_tensors() -> None:
    spec = inputs(
        {
            "ids": np.arange(6).reshape(2, 3),
            "mask": [True, False],
            "boxes": [[0.1, 0.2, 0.3, 0.4]],
            "tokens": [[1, 2], [3]],
            "temperature": 0.7,
            "weights": pd.Series([1.0, np.nan]),
        }
    )
    assert spec == {
        "kind": "tensors",
        "tensors": [
            {"name": "ids", "type": "int64", "shape": [-1, 3], "nullable": False},
            {"name": "mask", "type": "bool", "shape": [-1], "nullable": False},
            {"name": "boxes", "type": "float64", "shape": [-1, 4], "nullable": False},
            {"name": "tokens", "type": "int64", "shape": [-1, -1], "nullable": False},
            {"name": "temperature", "type": "float64", "shape": [], "nullable": False},
            {"name": "weights", "type": "float64", "shape": [-1], "nullable": True},
        ],
    }


def test_records_become_columns_in_first_seen_order() -> None:
    spec = inputs([{"a": 1, "b": 2.5}, {"b": 3, "a": 2, "c": "x"}, {"a": 3, "b": float("nan")}])
    assert spec["columns"] == [
        {"name": "a", "type": "int64", "nullable": False},
        {"name": "b", "type": "float64", "nullable": True},  # NaN is missing in a table
        {"name": "c", "type": "string", "nullable": True},  # absent from two records
    ]


@pytest.mark.parametrize(
    ("values", "type_name", "nullable"),
    [
        ([1, 2, None], "int64", True),
        ([1, 2.5], "float64", False),
        ([0.5, float("nan")], "float64", True),
        (["x", "y"], "string", False),
        ([True, False], "bool", False),
        ([True, 1], "object", False),
        ([2**63], "uint64", False),
        ([-1, 2**63], "object", False),
        ([dt.date(2024, 1, 1), dt.datetime(2024, 1, 2)], "datetime64[us]", False),
        ([dt.timedelta(seconds=1)], "timedelta64[us]", False),
        ([1 + 2j, 1], "complex128", False),
        ((b"a", None), "binary", True),
    ],
)
def test_a_flat_list_is_a_column_of_python_values(
    values: list[Any], type_name: str, nullable: bool
) -> None:
    assert inputs(values) == {
        "kind": "column", "name": None, "type": type_name, "nullable": nullable,
    }  # fmt: skip


def test_nested_lists_are_tensors_and_ragged_dimensions_are_free() -> None:
    assert inputs([[1, 2], [3, 4]]) == {
        "kind": "tensor", "type": "int64", "shape": [-1, 2], "nullable": False,
    }  # fmt: skip
    assert inputs([[1.0, float("nan")]])["nullable"] is False  # NaN is a float in a tensor
    assert inputs([[1, None]])["nullable"] is True
    assert inputs([[[1], [2, 3]]])["shape"] == [-1, 2, -1]
    assert inputs([[1, [2]]]) == {  # leaves at different depths
        "kind": "tensor", "type": "object", "shape": [-1, 2, -1], "nullable": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "empty list"),
        ({}, "empty dict"),
        (None, "NoneType"),
        (object(), "object"),
        ([{"a": 1}, 2], "mixes records"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "duplicate column"),
    ],
)
def test_what_cannot_be_inferred_says_so(value: Any, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        infer_signature(value)


def test_outputs_are_optional_and_inferred_like_inputs() -> None:
    assert infer_signature([1])["outputs"] is None
    assert infer_signature([1], np.zeros((2, 3)))["outputs"]["shape"] == [-1, 3]


# -- examples --------------------------------------------------------------------------


def test_dataframe_example_is_strict_json_records(frame: pd.DataFrame) -> None:
    example = example_payload(frame, max_rows=2)
    assert roundtrip(example) == example
    assert example[0] == {
        "age": 31, "height": 1.8, "city": "Oslo", "member": True,
        "joined": "2024-01-01T00:00:00", "grade": "a", "visits": 1, "small": 1,
        "score": 0.5, "blob": "AAE=",
    }  # fmt: skip
    assert [example[1][k] for k in ("height", "city", "joined", "visits")] == [None] * 4
    assert len(example_payload(frame)) == 3


def test_nan_is_a_string_in_tensors_null_in_columns_and_infinities_are_strings() -> None:
    assert example_payload(np.array([[1.0, np.nan], [np.inf, -np.inf]])) == [
        [1.0, "NaN"], ["Infinity", "-Infinity"],
    ]  # fmt: skip
    assert example_payload(pd.Series([1.0, np.nan, np.inf])) == [1.0, None, "Infinity"]
    assert example_payload([1.0, math.nan]) == [1.0, None]
    assert example_payload([{"x": math.nan}]) == [{"x": None}]
    assert example_payload(math.nan) == "NaN"


def test_example_cuts_only_the_batch_dimension() -> None:
    example = example_payload({"x": np.zeros((10, 4)), "k": 3, "s": list(range(10))}, max_rows=2)
    assert example == {"x": [[0.0] * 4] * 2, "k": 3, "s": [0, 1]}
    assert example_payload(list(range(10)), max_rows=3) == [0, 1, 2]
    with pytest.raises(InvalidValueError, match="max_rows"):
        example_payload([1], max_rows=0)


def test_example_encodes_dates_durations_and_bytes() -> None:
    ns = np.array(["2024-01-01T00:00:00.000000001", "NaT"], dtype="datetime64[ns]")
    assert example_payload(ns) == ["2024-01-01T00:00:00.000000001", None]
    assert example_payload(np.array([1500], dtype="timedelta64[ms]")) == [1.5]
    assert example_payload([dt.date(2024, 1, 2), b"\xff"]) == ["2024-01-02", "/w=="]
    assert example_payload({"t": dt.timedelta(minutes=1)}) == {"t": 60.0}


EXAMPLES: list[Any] = [
    np.random.default_rng(0).random((4, 3)).astype("float32"),
    np.array([[1.0, np.nan], [np.inf, -np.inf]]),
    np.array(["2024-01-01", "NaT"], dtype="datetime64[ns]"),
    np.array([b"a", b"bb"]),
    np.array(["x", None], dtype=object),
    np.zeros((0, 3)),
    np.array(7),
    {"ids": np.arange(6).reshape(2, 3), "mask": [True, False], "t": 0.7, "name": "x",
     "w": pd.Series([1.0, np.nan]), "d": {"nested": 1}},
    [{"a": 1, "b": 2.5}, {"a": 2, "c": "x"}],
    [1, 2, None],
    [[1, 2], [3]],
    [[1.5, float("nan")], [float("inf"), 2]],
    [dt.date(2024, 1, 1), dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)],
    pd.Series([1, None], dtype="Int64", name="n"),
    3.5,
    float("-inf"),
    np.float32(3),
    "text",
]  # fmt: skip


@pytest.mark.parametrize("value", EXAMPLES, ids=lambda v: type(v).__name__)
def test_signature_and_example_survive_json_and_validate(value: Any) -> None:
    sig = infer_signature(value)
    assert roundtrip(sig) == sig
    validate_input(sig, value)
    validate_input(roundtrip(sig), roundtrip(example_payload(value)))


def test_frame_example_validates_against_its_signature(frame: pd.DataFrame) -> None:
    frame["span"] = pd.to_timedelta([1, 2.5, None], unit="s")
    frame["zone"] = pd.to_datetime(["2024-01-01"] * 3, utc=True)
    frame["any"] = [1, "a", None]
    sig = roundtrip(infer_signature(frame))
    validate_input(sig, frame)
    validate_input(sig, roundtrip(example_payload(frame)))
    validate_input(sig, pd.DataFrame(roundtrip(example_payload(frame))))


# -- validation: what passes -----------------------------------------------------------


def test_safe_casts_pass() -> None:
    table = infer_signature(pd.DataFrame({"f": [0.5], "i": [1], "i8": np.array([1], "int8")}))
    validate_input(table, {"f": [1, 2], "i": [2.0, np.int32(3)], "i8": [127, -128]})
    validate_input(table, pd.DataFrame({"f": np.array([1], "uint8"), "i": np.array([1.0]),
                                        "i8": np.array([5], "int64")}))  # fmt: skip
    validate_input(table, {"f": ["Infinity", "-Infinity"], "i": [1, 2], "i8": [1, 2]})
    nullable = infer_signature([{"f": 0.5}, {"f": None}])
    validate_input(nullable, [{"f": "NaN"}, {"f": float("nan")}, {}])
    tensor = infer_signature(np.zeros((2, 3), dtype="float32"))
    validate_input(tensor, np.ones((5, 3), dtype="int16"))
    validate_input(tensor, np.ones((5, 3), dtype="float64"))
    validate_input(tensor, [[1, 2, 3]])
    validate_input(tensor, [[1, "Infinity", "NaN"]])  # NaN is a value in a tensor
    validate_input(tensor, [])  # an empty batch


def test_datetimes_of_any_unit_iso_strings_and_base64_pass() -> None:
    sig = infer_signature(pd.DataFrame({"t": pd.to_datetime(["2024-01-01"]), "b": [b"x"]}))
    validate_input(sig, pd.DataFrame({"t": np.array(["2024-01-01"], "datetime64[s]"), "b": [b""]}))
    validate_input(sig, pd.DataFrame({"t": pd.to_datetime(["2024-01-01"], utc=True), "b": [b""]}))
    for text in ["2024-01-01", "2024-01-01T10:00:00Z", "2024-01-01 10:00:00.123456789+02:00"]:
        validate_input(sig, [{"t": text, "b": "eA=="}])
    validate_input(sig, {"t": dt.date(2024, 1, 1), "b": b"x"})  # a single record


def test_extra_columns_keys_and_tensors_are_ignored() -> None:
    validate_input(infer_signature([{"a": 1}]), [{"a": 1, "zzz": "anything"}])
    validate_input(infer_signature({"x": [1]}), {"x": [2], "y": "extra"})
    validate_input(infer_signature(pd.DataFrame({"a": [1]})), pd.DataFrame({"b": ["x"], "a": [2]}))


def test_named_tensors_accept_frames_and_records() -> None:
    sig = infer_signature({"a": np.array([1, 2]), "b": ["x", "y"]})
    validate_input(sig, pd.DataFrame({"a": [3], "b": ["z"]}))
    validate_input(sig, [{"a": 3, "b": "z"}, {"a": 4, "b": "w"}])


def test_a_signature_without_inputs_accepts_anything() -> None:
    validate_input({"format": 1, "inputs": None, "outputs": None}, object())


# -- validation: what fails, naming the field ------------------------------------------


def test_missing_columns_are_each_named(frame: pd.DataFrame) -> None:
    sig = infer_signature(frame)
    errors = problems(sig, frame.drop(columns=["age", "blob"]))
    assert errors == ["column 'age': missing", "column 'blob': missing"]
    assert problems(sig, [{"age": 1}])[0] == "column 'height': missing"


def test_nulls_in_a_non_nullable_column() -> None:
    sig = infer_signature(pd.DataFrame({"age": [1, 2], "name": ["a", "b"], "x": [0.5, 1.5]}))
    errors = problems(sig, [{"age": 1, "name": "a", "x": "NaN"}, {"name": None, "x": 1.0}])
    assert errors == [
        "column 'age': 1 missing value but it is not nullable (first at row 1)",
        "column 'name': 1 missing value but it is not nullable (first at row 1)",
        "column 'x': 1 missing value but it is not nullable (first at row 0)",
    ]
    frame = pd.DataFrame({"age": pd.array([None, 1, None], dtype="Int64"), "name": "a", "x": 1.0})
    assert the_problem(sig, frame) == (
        "column 'age': 2 missing values but it is not nullable (first at row 0)"
    )


def test_float_into_int_only_when_integral() -> None:
    sig = infer_signature({"n": np.array([1, 2], dtype="int32")})
    assert the_problem(sig, {"n": np.array([1.0, 2.5, 3.5])}) == (
        "tensor 'n': expected int32, got a non-integral float at index [1] (2.5), 2 values in all"
    )
    assert the_problem(sig, {"n": [float("inf")]}) == (
        "tensor 'n': expected int32, got a non-integral float at index [0] (inf)"
    )
    assert the_problem(sig, {"n": [2**31]}) == (
        "tensor 'n': expected int32, got a value out of the int32 range at index [0] (2147483648)"
    )
    assert the_problem(infer_signature({"u": np.array([1], "uint8")}), {"u": [-1]}) == (
        "tensor 'u': expected uint8, got a value out of the uint8 range at index [0] (-1)"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"n": ["1"]}, "tensor 'n': expected int64, got string at index [0] ('1')"),
        ({"n": [True]}, "tensor 'n': expected int64, got bool at index [0] (True)"),
        ({"n": np.array(["1"])}, "tensor 'n': expected int64, got string"),
        ({"n": np.array([True])}, "tensor 'n': expected int64, got bool"),
        ({"n": [{"a": 1}]}, "tensor 'n': expected int64, got dict at index [0] ({'a': 1})"),
    ],
)
def test_strings_and_bools_are_not_numbers(data: Any, message: str) -> None:
    assert the_problem(infer_signature({"n": [1]}), data) == message


def test_strings_into_float_columns_and_numbers_into_string_columns() -> None:
    sig = infer_signature(pd.DataFrame({"x": [0.5], "s": ["a"]}))
    assert problems(sig, pd.DataFrame({"x": ["0.5"], "s": [1]})) == [
        "column 'x': expected float64, got string",
        "column 's': expected string, got int64",
    ]
    assert problems(sig, [{"x": "0.5", "s": 1}]) == [
        "column 'x': expected float64, got string at row 0 ('0.5')",
        "column 's': expected string, got int at row 0 (1)",
    ]


def test_dates_and_binary_that_do_not_parse() -> None:
    sig = infer_signature([{"t": dt.datetime(2024, 1, 1), "b": b"x"}])
    assert problems(sig, [{"t": "yesterday", "b": "not base64!"}]) == [
        "column 't': expected datetime64[us], got a string that is not an ISO 8601 date "
        "at row 0 ('yesterday')",
        "column 'b': expected binary, got a string that is not base64 at row 0 ('not base64!')",
    ]


def test_wrong_rank_and_wrong_dimensions() -> None:
    sig = infer_signature({"image": np.zeros((2, 28, 28), dtype="float32")})
    assert the_problem(sig, {"image": np.zeros((2, 28))}) == (
        "tensor 'image': expected 3 dimensions (shape [-1, 28, 28]), got 2 (shape [2, 28])"
    )
    assert problems(sig, {"image": np.zeros((9, 27, 29))}) == [
        "tensor 'image': dimension 1 has size 27, expected 28",
        "tensor 'image': dimension 2 has size 29, expected 28",
    ]
    ragged = [[[0.0] * 28] * 28, [[0.0] * 28] * 27]
    assert the_problem(sig, {"image": ragged}) == (
        "tensor 'image': dimension 1 is ragged (its sizes vary), expected 28"
    )
    assert the_problem(infer_signature(np.zeros(3)), np.zeros((3, 1))) == (
        "tensor: expected 1 dimension (shape [-1]), got 2 (shape [3, 1])"
    )


def test_tensor_positions_are_multi_dimensional() -> None:
    sig = infer_signature(np.zeros((1, 2, 2), dtype="int64"))
    assert the_problem(sig, [[[1, 2], [3, 4.5]]]) == (
        "tensor: expected int64, got a non-integral float at index [0, 1, 1] (4.5)"
    )
    assert the_problem(sig, [[[1, 2], [None, 4]]]) == (
        "tensor: 1 missing value but it is not nullable (first at index [0, 1, 0])"
    )


def test_missing_tensor_and_payloads_of_the_wrong_kind() -> None:
    named = infer_signature({"a": [1], "b": [2]})
    assert the_problem(named, {"a": [1]}) == "tensor 'b': missing"
    assert the_problem(named, np.zeros(2)) == (
        "input: expected named tensors (a dict of arrays), got ndarray of shape [2]"
    )
    table = infer_signature([{"a": 1}])
    assert the_problem(table, np.zeros((2, 1))) == (
        "input: expected a table (a DataFrame, a list of records or a dict of columns), "
        "got ndarray of shape [2, 1]"
    )
    assert the_problem(table, "a=1").endswith("got str")
    assert the_problem(infer_signature([[1]]), {"x": 1}) == (
        "tensor: expected an array or a list, got dict"
    )
    assert the_problem(infer_signature(1), [1]) == "input: expected a single value, got list"
    assert the_problem(infer_signature([1]), 1) == "column: expected a list of values, got int"


def test_columns_of_different_lengths() -> None:
    sig = infer_signature({"a": [1]})
    table = infer_signature([{"a": 1, "b": 2}])
    assert the_problem(table, {"a": [1, 2], "b": [1]}) == (
        "column 'b': has 1 rows but column 'a' has 2"
    )
    validate_input(sig, {"a": [1, 2]})


def test_series_signature_checks_a_series_a_list_or_a_frame_column() -> None:
    sig = infer_signature(pd.Series([1, 2], name="x"))
    validate_input(sig, [3, 4])
    validate_input(sig, pd.DataFrame({"y": ["a"], "x": [5]}))
    assert problems(sig, pd.Series([1.5, None])) == [
        "column 'x': 1 missing value but it is not nullable (first at row 1)",
        "column 'x': expected int64, got a non-integral float at row 0 (1.5)",
    ]
    assert the_problem(sig, pd.DataFrame({"y": [1], "z": [2]})) == (
        "column 'x': missing from a DataFrame with columns ['y', 'z']"
    )
    assert the_problem(sig, np.zeros((2, 2))) == (
        "column 'x': expected a flat list of values, got ndarray of shape [2, 2]"
    )


def test_every_problem_is_reported_at_once(frame: pd.DataFrame) -> None:
    sig = infer_signature(frame)
    bad = [
        {"age": 1.5, "height": "tall", "city": 3, "member": "yes", "joined": "soon",
         "grade": None, "visits": 1, "small": 300, "score": True},
    ]  # fmt: skip
    errors = problems(sig, bad)
    assert [e.split(":")[0] for e in errors] == [
        "column 'age'", "column 'height'", "column 'city'", "column 'member'",
        "column 'joined'", "column 'grade'", "column 'small'", "column 'score'",
        "column 'blob'",
    ]  # fmt: skip
    with pytest.raises(InputValidationError) as info:
        validate_input(sig, bad)
    err = info.value
    assert isinstance(err, ValidationError) and isinstance(err, ValueError)
    assert err.http_status == 422 and err.code == "input_validation_error"
    assert str(err).startswith("input does not match the model signature (9 problems)\n  - ")
    assert all(f"\n  - {e}" in str(err) for e in errors)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ({"format": 2, "inputs": {}}, "unsupported signature format 2"),
        ({"inputs": {}}, "unsupported signature format None"),
        ({"format": 1, "inputs": {"kind": "graph"}}, "'kind' must be one of"),
        ({"format": 1, "inputs": {"kind": "scalar", "type": "float"}}, "unknown type 'float'"),
        ({"format": 1, "inputs": {"kind": "table", "columns": [{"type": "int64"}]}},
         "needs a string 'name'"),
        ({"format": 1, "inputs": {"kind": "tensor", "type": "int64", "shape": [-2]}},
         "'shape' must be"),
        ({"format": 1, "inputs": {"kind": "column", "type": "int64", "nullable": "no"}},
         "'nullable'"),
    ],
)  # fmt: skip
def test_malformed_signatures_are_rejected(signature: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        validate_input(signature, [1])


# -- numpy and pandas stay optional ----------------------------------------------------


def test_module_and_python_payloads_import_neither_numpy_nor_pandas() -> None:
    code = (
        "import sys, json\n"
        "from mltrail.registry.signature import infer_signature, example_payload, validate_input\n"
        "x = [{'a': 1, 'b': 'x', 'c': 0.5}]\n"
        "validate_input(infer_signature(x), json.loads(json.dumps(example_payload(x))))\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'pandas')]\n"
        "print(json.dumps(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout) == []


# -- properties ------------------------------------------------------------------------

FRAMES = hpd.data_frames(
    [
        hpd.column("i", dtype="int64"),
        hpd.column("f", elements=st.floats(allow_nan=True, allow_infinity=True)),
        hpd.column("b", dtype=bool),
        hpd.column("s", elements=st.one_of(st.none(), st.text(max_size=5)), dtype=object),
        hpd.column("u", dtype="uint16"),
        hpd.column("t", elements=st.datetimes(min_value=dt.datetime(1970, 1, 1),
                                              max_value=dt.datetime(2200, 1, 1))),
    ],
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(FRAMES)
def test_any_frame_fits_its_own_signature_and_example(df: pd.DataFrame) -> None:
    sig = roundtrip(infer_signature(df))
    validate_input(sig, df)
    validate_input(sig, roundtrip(example_payload(df, max_rows=max(len(df), 1))))


ARRAYS = hnp.arrays(
    dtype=st.one_of(
        hnp.integer_dtypes(endianness="="),
        hnp.unsigned_integer_dtypes(endianness="="),
        hnp.floating_dtypes(endianness="="),
        hnp.boolean_dtypes(),
        hnp.datetime64_dtypes(endianness="=", max_period="D"),
    ),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
)


@settings(max_examples=80, deadline=None)
@given(ARRAYS)
def test_any_array_fits_its_own_signature_and_example(a: np.ndarray[Any, Any]) -> None:
    sig = roundtrip(infer_signature(a))
    validate_input(sig, a)
    validate_input(sig, roundtrip(example_payload(a, max_rows=max(len(a), 1))))


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from("abc"), JSON_SCALARS), min_size=1, max_size=5))
def test_any_records_fit_their_own_signature_and_example(records: list[dict[str, Any]]) -> None:
    sig = roundtrip(infer_signature(records))
    validate_input(sig, records)
    validate_input(sig, roundtrip(example_payload(records, max_rows=len(records))))
