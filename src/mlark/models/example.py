"""The optional input example, stored as ``input_example.json`` in the model folder.

JSON keeps it readable and diffable and needs no extra library. A table is stored by columns
with their dtypes; arrays with dtype and shape; missing floats as ``null``; datetimes as ISO
8601 strings. Reading it back gives the same DataFrame, ndarray or dict of ndarrays.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from mlark.errors import InvalidInput
from mlark.models.dtypes import convert, dtype_name, object_dtype_name, series_values
from mlark.models.errors import ModelIntegrityError
from mlark.models.inputs import is_dataframe, normalize

EXAMPLE_NAME = "input_example.json"
EXAMPLE_MAX_BYTES = 64 * 1024 * 1024


def encode_example(data: Any) -> bytes:
    value = normalize(data)
    if is_dataframe(value):
        columns = []
        for column in value.columns:
            values = series_values(value[column])
            dtype = dtype_name(values.dtype) if values.dtype.kind != "O" else object_dtype_name(values)
            columns.append(
                {"name": str(column), "dtype": _storable(dtype, f"column {column!r}"), "values": _plain(values, dtype)}
            )
        doc: dict[str, Any] = {"type": "dataframe", "columns": columns}
    elif isinstance(value, np.ndarray):
        doc = _array_doc(value, "the input example")
    else:
        doc = {"type": "tensors", "tensors": {k: _array_doc(np.asarray(a), f"input {k!r}") for k, a in value.items()}}
    text = json.dumps(doc, ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"))
    return (text + "\n").encode("utf-8")


def decode_example(data: bytes) -> Any:
    try:
        if len(data) > EXAMPLE_MAX_BYTES:
            raise ValueError(f"larger than {EXAMPLE_MAX_BYTES} bytes")
        doc = json.loads(data.decode("utf-8"))
        kind = doc["type"]
        if kind == "dataframe":
            import pandas as pd

            return pd.DataFrame({c["name"]: _restore(c["values"], c["dtype"], None) for c in doc["columns"]})
        if kind == "ndarray":
            return _restore(doc["values"], doc["dtype"], doc["shape"])
        if kind == "tensors":
            return {k: _restore(t["values"], t["dtype"], t["shape"]) for k, t in doc["tensors"].items()}
        raise ValueError(f"unknown type {kind!r}")
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, InvalidInput) as exc:
        raise ModelIntegrityError(f"{EXAMPLE_NAME} does not decode: {exc}", file=EXAMPLE_NAME) from exc


def _array_doc(array: np.ndarray, label: str) -> dict[str, Any]:
    dtype = dtype_name(array.dtype) if array.dtype.kind != "O" else object_dtype_name(array)
    return {
        "type": "ndarray",
        "dtype": _storable(dtype, label),
        "shape": list(array.shape),
        "values": _plain(array.ravel(), dtype),
    }


def _storable(dtype: str | None, label: str) -> str:
    if dtype is None or dtype == "binary":
        raise InvalidInput(
            f"{label} of the input example holds values mlark cannot store as JSON; "
            "use numbers, booleans, strings or datetimes",
            field="input_example",
        )
    return dtype


def _plain(values: np.ndarray, dtype: str | None) -> list[Any]:
    out: list[Any] = []
    for v in values.ravel().tolist() if values.dtype.kind != "M" else values.ravel():
        if isinstance(v, np.datetime64):
            out.append(None if np.isnat(v) else str(np.datetime_as_string(v, unit="ns")))
        elif v is None or (isinstance(v, float) and v != v):
            out.append(None)
        elif dtype == "datetime" and hasattr(v, "isoformat"):
            out.append(v.isoformat())
        elif isinstance(v, float) and v in (float("inf"), float("-inf")):
            out.append("inf" if v > 0 else "-inf")
        else:
            out.append(v if not isinstance(v, np.generic) else v.item())
    return out


def _restore(values: list[Any], dtype: str, shape: list[int] | None) -> np.ndarray:
    raw = np.array(values, dtype=object)
    if dtype in ("string", "bool") or dtype.startswith(("int", "uint")):
        array = convert(raw, dtype, where="input example") if dtype != "string" else raw
    elif dtype == "datetime":
        array = convert(raw, "datetime", where="input example")
    else:
        floats = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        array = convert(floats, dtype, where="input example")
    return array.reshape(shape) if shape is not None else array
