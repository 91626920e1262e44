"""Checking ``predict`` input against a signature (docs/design/models.md, "Signature enforcement").

- A missing column (or named input) is a :class:`SignatureMismatch` naming it.
- Extra columns are dropped with an :class:`ExtraColumnsWarning` naming them.
- Columns come out in the signature's order, converted to its dtypes by the rules in
  :mod:`mlark.models.dtypes` (lossless conversions applied, lossy ones refused naming the column).
- Tensors are converted the same way and their shapes checked (``-1`` matches any size); an array
  missing only the leading batch dimension is taken as one row.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from mlark.errors import InvalidInput
from mlark.models.dtypes import convert, series_values
from mlark.models.errors import ExtraColumnsWarning, SignatureMismatch
from mlark.models.inputs import is_dataframe, normalize
from mlark.models.signature import Schema, Spec

STACKLEVEL = 5  # _warn_extra <- _to_columns <- enforce <- Model.prepare <- Model.predict <- the caller


def enforce(schema: Schema | None, data: Any) -> Any:
    """``data`` normalised and, when there is a schema, made to fit it."""
    value = normalize(data)
    if schema is None:
        return value
    if schema.kind == "columns":
        return _to_columns(schema, value)
    return _to_tensors(schema, value)


# ---------------------------------------------------------------------- columns


def _to_columns(schema: Schema, value: Any) -> Any:
    import pandas as pd

    names = [s.name for s in schema.specs]
    if isinstance(value, np.ndarray):
        value = _frame_from_array(value, names)
    elif not is_dataframe(value):
        raise SignatureMismatch(
            f"the model takes a table with columns {_listing(names)}; got named arrays {_listing(list(value))}",
            expected=names,
        )
    by_name: dict[str, Any] = {}
    for column in value.columns:
        key = str(column)
        if key in by_name:
            raise InvalidInput(f"the input has two columns named {key!r}", field="data", column=key)
        by_name[key] = column
    missing = [n for n in names if n not in by_name]
    if missing:
        raise SignatureMismatch(
            f"the input is missing column{'s' if len(missing) > 1 else ''} {_listing(missing)} required by the "
            f"model's signature (columns given: {_listing(list(by_name))})",
            column=missing[0],
            missing=missing,
        )
    _warn_extra([k for k in by_name if k not in set(names)])
    out = {}
    for spec in schema.specs:
        assert spec.name is not None
        series = value[by_name[spec.name]]
        out[spec.name] = convert(series_values(series), spec.dtype, where=f"column {spec.name!r}", column=spec.name)
    return pd.DataFrame(out, index=value.index)


def _frame_from_array(array: np.ndarray, names: list[str | None]) -> Any:
    import pandas as pd

    if array.ndim == 1 and len(names) == 1:
        array = array.reshape(-1, 1)
    elif array.ndim == 1 and array.shape[0] == len(names):
        array = array.reshape(1, -1)  # one record
    if array.ndim != 2 or array.shape[1] != len(names):
        raise SignatureMismatch(
            f"the model takes a table with {len(names)} columns ({_listing(names)}); got an array of shape "
            f"{list(array.shape)}. Pass a DataFrame or a dict of columns, or an array with {len(names)} columns "
            "in the signature's order",
            expected=names,
        )
    return pd.DataFrame({n: array[:, i] for i, n in enumerate(names)})


# ---------------------------------------------------------------------- tensors


def _to_tensors(schema: Schema, value: Any) -> Any:
    specs = schema.specs
    if len(specs) == 1:
        spec = specs[0]
        return _conform(_single(spec, value), spec)
    names = [s.name for s in specs]
    if isinstance(value, np.ndarray):
        raise SignatureMismatch(
            f"the model takes {len(specs)} named inputs ({_listing(names)}); pass a dict of arrays", expected=names
        )
    if is_dataframe(value):
        value = {str(c): value[c].to_numpy() for c in value.columns}
    missing = [n for n in names if n not in value]
    if missing:
        raise SignatureMismatch(
            f"the input is missing {_listing(missing)} required by the model's signature "
            f"(given: {_listing(list(value))})",
            column=missing[0],
            missing=missing,
        )
    _warn_extra([k for k in value if k not in set(names)])
    return {s.name: _conform(np.asarray(value[s.name]), s) for s in specs}


def _single(spec: Spec, value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if is_dataframe(value):
        columns = [str(c) for c in value.columns]
        if spec.name is not None and spec.name in columns and len(spec.shape or ()) == 1:
            _warn_extra([c for c in columns if c != spec.name], deeper=1)
            return value[value.columns[columns.index(spec.name)]].to_numpy()
        if len(spec.shape or ()) == 1:
            if value.shape[1] != 1:
                raise SignatureMismatch(
                    f"the model takes one column of {spec.dtype}; got a table with columns {_listing(columns)}",
                    expected=spec.describe(),
                )
            return value.iloc[:, 0].to_numpy()
        return value.to_numpy()
    if len(value) == 1:
        return np.asarray(next(iter(value.values())))
    if spec.name is not None and spec.name in value:
        _warn_extra([k for k in value if k != spec.name], deeper=1)
        return np.asarray(value[spec.name])
    raise SignatureMismatch(
        f"the model takes one array{'' if spec.name is None else f' named {spec.name!r}'}; got {_listing(list(value))}",
        expected=spec.describe(),
    )


def _conform(array: np.ndarray, spec: Spec) -> np.ndarray:
    label = "input" if spec.name is None else f"input {spec.name!r}"
    shape = spec.shape or ()
    if array.ndim == len(shape) - 1 and shape and shape[0] == -1:
        array = array[np.newaxis, ...]  # one row without its batch dimension
    if array.ndim != len(shape) or any(d >= 0 and d != n for d, n in zip(shape, array.shape, strict=True)):
        raise SignatureMismatch(
            f"{label} expects shape {_shape(shape)}, got {list(array.shape)}",
            column=spec.name,
            expected=_shape(shape),
            got=list(array.shape),
        )
    return convert(array, spec.dtype, where=label, column=spec.name)


# ---------------------------------------------------------------------- helpers


def _warn_extra(extra: list[str], *, deeper: int = 0) -> None:
    if extra:
        message = (
            f"ignoring input column{'s' if len(extra) > 1 else ''} not in the model's signature: {_listing(extra)}"
        )
        warnings.warn(ExtraColumnsWarning(message, extra), stacklevel=STACKLEVEL + 1 + deeper)


def _listing(names: list[Any], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join("any" if d < 0 else str(d) for d in shape) + "]"
