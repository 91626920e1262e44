"""Signatures: inference from examples, JSON form, and enforcement in predict (docs/design/models.md)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import models_testkit as kit  # noqa: E402

from mlark.errors import InvalidInput  # noqa: E402
from mlark.models import Schema, Signature, Spec, infer_signature, load_model, save_model  # noqa: E402
from mlark.models.enforce import enforce  # noqa: E402
from mlark.models.errors import ExtraColumnsWarning, SignatureMismatch  # noqa: E402
from mlark.models.infer import infer_schema  # noqa: E402

COLS = Schema.columns({"age": "int64", "income": "float64", "city": "string"})


def frame(**overrides: object) -> pd.DataFrame:
    data: dict[str, object] = {"age": [31, 40], "income": [1.5, 2.25], "city": ["Oslo", "Lima"]}
    data.update(overrides)
    return pd.DataFrame(data)


# ---------------------------------------------------------------------- inference


def test_infer_from_dataframe() -> None:
    df = pd.DataFrame(
        {
            "i": np.array([1, 2], dtype=np.int32),
            "f": [0.5, 1.0],
            "s": ["a", "b"],
            "b": [True, False],
            "t": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "n": pd.array([1, None], dtype="Int64"),
            "c": pd.Categorical(["x", "y"]),
        }
    )
    schema = infer_schema(df)
    assert schema.kind == "columns"
    assert [(s.name, s.dtype) for s in schema.specs] == [
        ("i", "int32"), ("f", "float64"), ("s", "string"), ("b", "bool"),
        ("t", "datetime"), ("n", "int64"), ("c", "string"),
    ]  # fmt: skip


def test_infer_from_ndarray_dict_record_and_list() -> None:
    assert infer_schema(np.zeros((3, 4), np.float32)).specs == (Spec("float32", None, (-1, 4)),)
    assert infer_schema({"a": 1, "b": "x"}).specs == (Spec("int64", "a"), Spec("string", "b"))
    assert infer_schema({"a": [1, 2], "b": [0.5, 1.5]}).kind == "columns"
    tensors = infer_schema({"ids": np.zeros((2, 5), np.int64), "mask": np.ones((2, 5), np.int64)})
    assert tensors.kind == "tensors" and tensors.names == ["ids", "mask"]
    assert infer_schema([{"a": 1}, {"a": 2}]).specs == (Spec("int64", "a"),)
    assert infer_schema(["x", "y"]).specs == (Spec("string", None, (-1,)),)


def test_infer_signature_with_output() -> None:
    sig = infer_signature(frame(), np.array([0, 1]))
    assert sig.inputs == COLS and sig.outputs == Schema.tensor("int64", [-1])


def test_mixed_object_column_cannot_be_inferred() -> None:
    with pytest.raises(InvalidInput, match="'m'"):
        infer_schema(pd.DataFrame({"m": [object(), 1]}))


def test_signature_json_roundtrip_and_validation() -> None:
    sig = Signature(COLS, Schema.tensor("float32", [-1, 2]))
    assert Signature.from_json(sig.to_json()) == sig
    assert Signature.coerce(sig.to_json()) == sig
    with pytest.raises(InvalidInput, match="unknown dtype 'float128'"):
        Schema.columns({"a": "float128"})
    with pytest.raises(InvalidInput, match="twice"):
        Schema.columns([("a", "int64"), ("a", "float64")])
    with pytest.raises(InvalidInput, match="needs a name"):
        Signature(Schema("tensors", (Spec("float32", None, (-1,)), Spec("float32", None, (-1,)))))
    with pytest.raises(InvalidInput, match="'columns' or 'tensors'"):
        Signature.from_json({"inputs": {"rows": []}})


# ---------------------------------------------------------------------- columns


def test_missing_column_is_an_error_naming_it() -> None:
    with pytest.raises(SignatureMismatch, match="missing column 'income'") as info:
        enforce(COLS, frame().drop(columns=["income"]))
    assert info.value.fields["column"] == "income"


def test_extra_columns_are_dropped_with_a_warning_naming_them() -> None:
    with pytest.warns(ExtraColumnsWarning, match="'zip'") as record:
        out = enforce(COLS, frame(zip=["0150", "1500"]))
    assert list(out.columns) == ["age", "income", "city"]
    assert record[0].message.columns == ["zip"]  # type: ignore[union-attr]
    assert issubclass(ExtraColumnsWarning, UserWarning)


def test_columns_are_reordered_to_the_signature() -> None:
    out = enforce(COLS, frame()[["city", "income", "age"]])
    assert list(out.columns) == ["age", "income", "city"]


@pytest.mark.parametrize(
    ("column", "values", "expected"),
    [
        ("age", np.array([31, 40], dtype=np.int32), np.array([31, 40], dtype=np.int64)),  # int32 -> int64
        ("age", [31.0, 40.0], np.array([31, 40], dtype=np.int64)),  # integral floats
        ("age", ["31", " 40 "], np.array([31, 40], dtype=np.int64)),  # numeric strings, parsed exactly
        ("age", [True, False], np.array([1, 0], dtype=np.int64)),
        ("income", [1, 2], np.array([1.0, 2.0])),  # int -> float
        ("income", ["1.5", "2"], np.array([1.5, 2.0])),
        ("income", np.array([1.5, 2.25], dtype=np.float32), np.array([1.5, 2.25])),
    ],
)
def test_lossless_conversions_are_applied(column: str, values: object, expected: np.ndarray) -> None:
    out = enforce(COLS, frame(**{column: values}))
    np.testing.assert_array_equal(out[column].to_numpy(), expected)
    assert out[column].dtype == expected.dtype


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("age", [31.5, 40.0], "column 'age' expects int64, got float64, row 0: value 31.5 is not a whole number"),
        ("age", [31.0, float("nan")], "column 'age' expects int64, got float64, row 1: the value is missing"),
        ("age", ["31", "abc"], "column 'age' expects int64, got string, row 1: value 'abc' is not a number"),
        ("age", ["3.5", "1"], "value '3.5' is not a whole number"),
        ("income", ["1.5", "n/a"], "column 'income' expects float64, got string, row 1: value 'n/a' is not a number"),
        ("income", [2**53 + 1, 1], "has no exact float64 representation"),
        ("city", [1, 2], "column 'city' expects string, got int64"),
    ],
)
def test_lossy_conversions_are_errors_naming_the_column(column: str, values: object, message: str) -> None:
    with pytest.raises(SignatureMismatch, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        enforce(COLS, frame(**{column: values}))
    assert info.value.fields["column"] == column


def test_int_range_and_float_overflow_are_refused() -> None:
    schema = Schema.columns({"small": "int8", "f": "float32"})
    with pytest.raises(SignatureMismatch, match="300 does not fit int8"):
        enforce(schema, {"small": [1, 300], "f": [0.0, 1.0]})
    with pytest.raises(SignatureMismatch, match="overflows float32"):
        enforce(schema, {"small": [1, 2], "f": [0.0, 1e300]})
    out = enforce(schema, {"small": [1, 2], "f": [0.1, 1.0]})  # float64 -> float32 rounds: accepted
    assert out["f"].dtype == np.float32


def test_missing_strings_and_floats_pass_through() -> None:
    out = enforce(COLS, frame(income=[1.0, None], city=["Oslo", None]))
    assert np.isnan(out["income"][1]) and pd.isna(out["city"][1])


def test_nullable_and_pandas_string_dtypes() -> None:
    out = enforce(COLS, frame(age=pd.array([31, 40], dtype="Int64"), city=pd.array(["a", "b"], dtype="string")))
    assert out["age"].dtype == np.int64
    with pytest.raises(SignatureMismatch, match="missing"):
        enforce(COLS, frame(age=pd.array([31, None], dtype="Int64")))


def test_dict_single_record_columns_and_ndarray_inputs() -> None:
    one = enforce(COLS, {"age": 31, "income": 1.5, "city": "Oslo"})
    assert len(one) == 1 and one["age"].dtype == np.int64
    cols = enforce(COLS, {"age": [1, 2], "income": [1.0, 2.0], "city": ["a", "b"]})
    assert len(cols) == 2
    numeric = Schema.columns({"a": "float64", "b": "float64"})
    positional = enforce(numeric, np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert list(positional.columns) == ["a", "b"] and positional["b"].tolist() == [2.0, 4.0]
    with pytest.raises(SignatureMismatch, match="2 columns"):
        enforce(numeric, np.zeros((2, 3)))


def test_bad_input_types_are_clear() -> None:
    with pytest.raises(InvalidInput, match="DataFrame, a numpy array, a dict"):
        enforce(COLS, object())
    with pytest.raises(SignatureMismatch, match="got an array of shape"):
        enforce(COLS, 42)
    with pytest.raises(InvalidInput, match="mixes single values"):
        enforce(COLS, {"age": [1, 2], "income": 1.0})


# ---------------------------------------------------------------------- tensors


def test_tensor_shape_and_dtype() -> None:
    schema = Schema.tensor("float32", [-1, 3])
    out = enforce(schema, np.arange(6).reshape(2, 3))  # int64 -> float32, exact
    assert out.dtype == np.float32 and out.shape == (2, 3)
    assert enforce(schema, [1, 2, 3]).shape == (1, 3)  # one row without its batch dimension
    with pytest.raises(SignatureMismatch, match=r"expects shape \[any, 3\], got \[2, 4\]"):
        enforce(schema, np.zeros((2, 4)))
    with pytest.raises(SignatureMismatch, match="not a whole number"):
        enforce(Schema.tensor("int64", [-1]), np.array([1.0, 2.5]))


def test_named_tensors() -> None:
    schema = Schema.tensors({"left": ("float32", [-1, 2]), "right": ("float32", [-1, 2])})
    with pytest.raises(SignatureMismatch, match="missing 'right'"):
        enforce(schema, {"left": np.zeros((1, 2))})
    with pytest.warns(ExtraColumnsWarning, match="'extra'"):
        out = enforce(schema, {"left": np.zeros((1, 2)), "right": np.ones((1, 2)), "extra": np.ones((1, 2))})
    assert set(out) == {"left", "right"} and out["right"].dtype == np.float32


# ---------------------------------------------------------------------- through save/load


def test_predict_enforces_the_saved_signature(tmp_path: Path) -> None:
    save_model(kit.Echo(), tmp_path / "m", input_example=frame())
    model = load_model(tmp_path / "m")
    assert model.signature is not None and model.signature.inputs == COLS
    seen = model.predict({"age": "7", "income": 3, "city": "Rome"})
    assert seen["age"].tolist() == [7] and seen["income"].dtype == np.float64
    with pytest.raises(SignatureMismatch, match="'city'"):
        model.predict({"age": 7, "income": 3.0})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict(frame(extra=[1, 2]))
    assert [type(w.message) for w in caught] == [ExtraColumnsWarning]
    assert caught[0].filename == __file__  # the warning points at the caller's line


def test_explicit_signature_wins_and_example_must_fit(tmp_path: Path) -> None:
    sig = Signature(Schema.columns({"age": "float64"}))
    man = save_model(kit.Echo(), tmp_path / "a", signature=sig, input_example={"age": [1, 2]})
    assert man.signature == sig
    with pytest.raises(SignatureMismatch, match="'age'"):
        save_model(kit.Echo(), tmp_path / "b", signature=sig, input_example={"age": ["x"]})
    assert not (tmp_path / "b").exists()


def test_example_roundtrip(tmp_path: Path) -> None:
    df = frame(when=pd.to_datetime(["2024-01-01", None]), income=[1.5, None])
    save_model(kit.Echo(), tmp_path / "m", input_example=df)
    back = load_model(tmp_path / "m").input_example
    pd.testing.assert_frame_equal(back, df.astype({"when": "datetime64[ns]"}), check_dtype=False)
    assert back["age"].dtype == np.int64 and back["when"].dtype.kind == "M"
    save_model(kit.Echo(), tmp_path / "t", input_example=np.arange(6, dtype=np.int16).reshape(2, 3))
    arr = load_model(tmp_path / "t").input_example
    assert arr.dtype == np.int16 and arr.shape == (2, 3)
