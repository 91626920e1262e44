"""Inferring a signature from an input example (and, when the model can run, its output)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlark.errors import InvalidInput
from mlark.models.dtypes import dtype_name, object_dtype_name
from mlark.models.inputs import is_dataframe, normalize
from mlark.models.signature import Schema, Signature, Spec


def infer_schema(data: Any, *, what: str = "input") -> Schema:
    value = normalize(data)
    if is_dataframe(value):
        return Schema("columns", tuple(Spec(_column_dtype(value[c], str(c), what), str(c)) for c in _unique(value)))
    if isinstance(value, np.ndarray):
        return Schema("tensors", (_tensor_spec(value, None, what),))
    return Schema("tensors", tuple(_tensor_spec(np.asarray(a), name, what) for name, a in value.items()))


def infer_output_schema(output: Any) -> Schema | None:
    """The schema of what a model returned; None when it is not a table or arrays."""
    if isinstance(output, (tuple, list)) and output and all(isinstance(o, np.ndarray) for o in output):
        return Schema("tensors", tuple(_tensor_spec(o, None, "output") for o in output))
    try:
        return infer_schema(output, what="output")
    except InvalidInput:
        return None


def infer_signature(model_input: Any, model_output: Any = None) -> Signature:
    """A signature from an input example and, optionally, the model's output for it.

    >>> infer_signature(X_train.head(), model.predict(X_train.head()))
    """
    outputs = None if model_output is None else infer_output_schema(model_output)
    return Signature(infer_schema(model_input), outputs)


def _unique(frame: Any) -> list[Any]:
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInput(f"the table has duplicate column names: {', '.join(dupes)}", field="data")
    return list(frame.columns)


def _column_dtype(series: Any, name: str, what: str) -> str:
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _column_dtype(series.astype(dtype.categories.dtype), name, what)
    if pd.api.types.is_bool_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return "bool"
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and hasattr(dtype, "numpy_dtype"):
        found = dtype_name(dtype.numpy_dtype)
    elif pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        found = "string"
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        found = "datetime"
    elif pd.api.types.is_object_dtype(dtype):
        found = object_dtype_name(series.to_numpy())
    else:
        try:
            found = dtype_name(dtype)
        except TypeError:
            found = None
    if found is None:
        raise InvalidInput(
            f"cannot infer a signature type for {what} column {name!r} ({dtype}); pass signature= explicitly",
            field="signature",
            value=name,
        )
    return found


def _tensor_spec(array: np.ndarray, name: str | None, what: str) -> Spec:
    found = dtype_name(array.dtype) if array.dtype.kind != "O" else object_dtype_name(array)
    if found is None:
        label = what if name is None else f"{what} {name!r}"
        raise InvalidInput(
            f"cannot infer a signature type for {label} ({array.dtype}); pass signature= explicitly",
            field="signature",
        )
    shape = (-1, *array.shape[1:]) if array.ndim else ()
    return Spec(found, name, tuple(int(d) for d in shape))
