"""Mapping numpy and pandas types to signature dtypes, and converting values without losing any.

Rules (docs/design/models.md, "Signature enforcement"): a conversion is applied when every value
survives it exactly (int32 -> int64, 3.0 -> 3, "42" -> 42, int64 -> float64 below 2**53); floats
narrow (float64 -> float32) by rounding, as every float32 framework does, but never overflow to
infinity; anything else (3.5 -> int, "abc" -> float, NaN -> int, numbers -> text) is refused with a
:class:`SignatureMismatch` naming the column and the first offending row.
"""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from mlark.models.errors import SignatureMismatch
from mlark.models.signature import FLOAT_DTYPES, INTEGER_DTYPES

_BY_KIND_SIZE = {
    ("b", 1): "bool",
    **{("i", np.dtype(f"int{b}").itemsize): f"int{b}" for b in (8, 16, 32, 64)},
    **{("u", np.dtype(f"uint{b}").itemsize): f"uint{b}" for b in (8, 16, 32, 64)},
    **{("f", np.dtype(f"float{b}").itemsize): f"float{b}" for b in (16, 32, 64)},
}


def dtype_name(dtype: Any) -> str | None:
    """The signature dtype of a numpy dtype, or None when values must be inspected (object) or it has none."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biuf":
        return _BY_KIND_SIZE.get((dtype.kind, dtype.itemsize))
    if dtype.kind == "U":
        return "string"
    if dtype.kind == "S":
        return "binary"
    if dtype.kind == "M":
        return "datetime"
    return None


def object_dtype_name(values: np.ndarray) -> str | None:
    """The signature dtype of an object array from its values (missing values ignored), or None if mixed."""
    kinds = set()
    for v in values.ravel():
        if _is_missing(v):
            continue
        if isinstance(v, str):
            kinds.add("string")
        elif isinstance(v, bytes):
            kinds.add("binary")
        elif isinstance(v, (bool, np.bool_)):
            kinds.add("bool")
        elif isinstance(v, (int, np.integer)):
            kinds.add("int64")
        elif isinstance(v, (float, np.floating)):
            kinds.add("float64")
        else:
            return None
    if kinds == {"int64", "float64"}:
        return "float64"
    if len(kinds) == 1:
        return kinds.pop()
    return "string" if not kinds else None


def series_values(series: Any) -> np.ndarray:
    """A pandas Series as a numpy array: nullable and text columns as objects (missing = None/NaN/NA)."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return series.astype(object).to_numpy()
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        numpy_dtype = getattr(dtype, "numpy_dtype", None)
        if numpy_dtype is not None and np.dtype(numpy_dtype).kind in "biuf" and not series.isna().any():
            return series.to_numpy(dtype=numpy_dtype)
        return series.to_numpy(dtype=object)
    return series.to_numpy()


def _fail(where: str, target: str, got: str, why: str, *, column: str | None, row: int | None) -> SignatureMismatch:
    at = "" if row is None else f", row {row}"
    return SignatureMismatch(
        f"{where} expects {target}, got {got}{at}: {why}",
        column=column,
        expected=target,
        got=got,
        row=row,
    )


def _show(value: Any) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(v != v)
    pd = sys.modules.get("pandas")
    return pd is not None and (v is pd.NA or v is pd.NaT)


def convert(values: np.ndarray, target: str, *, where: str, column: str | None = None) -> np.ndarray:
    """``values`` as ``target`` if no value changes; else SignatureMismatch naming ``where``."""
    kind = values.dtype.kind
    got = dtype_name(values.dtype) or (object_dtype_name(values) if kind == "O" else None) or str(values.dtype)

    def fail(why: str, index: int | None = None) -> SignatureMismatch:
        row = None
        if index is not None and values.ndim:
            row = int(np.unravel_index(index, values.shape)[0])
        return _fail(where, target, got, why, column=column, row=row)

    if target in ("string", "binary"):
        wanted, np_kind = (str, "U") if target == "string" else (bytes, "S")
        if kind == np_kind:
            return values.astype(object)
        if kind == "O":
            for i, v in enumerate(values.ravel()):
                if not _is_missing(v) and not isinstance(v, wanted):
                    raise fail(
                        f"value {_show(v)} is not {'text' if target == 'string' else 'bytes'}; "
                        "other values are not converted to it",
                        i,
                    )
            return values
        raise fail(
            "numbers and other values are not converted to text; pass strings" if target == "string" else "pass bytes"
        )
    if target == "datetime":
        return _to_datetime(values, fail)
    if target == "bool":
        return _to_bool(values, fail)
    if target in INTEGER_DTYPES:
        return _to_int(values, np.dtype(target), fail)
    if target in FLOAT_DTYPES:
        return _to_float(values, np.dtype(target), fail)
    raise fail("unknown target type")


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask.ravel())[0])


def _to_bool(values: np.ndarray, fail: Any) -> np.ndarray:
    kind = values.dtype.kind
    if kind == "b":
        return values
    if kind in "iuf":
        ok = (values == 0) | (values == 1)
        if not ok.all():
            i = _first(~ok)
            raise fail(f"value {_show(values.ravel()[i])} is not 0 or 1", i)
        return values.astype(bool)
    if kind == "O":
        flat = values.ravel()
        for i, v in enumerate(flat):
            if not isinstance(v, (bool, np.bool_)):
                raise fail(f"value {_show(v)} is not a boolean", i)
        return values.astype(bool)
    raise fail("pass booleans (True/False) or 0/1")


def _parse_int(text: str) -> int | None:
    s = text.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        d = Decimal(s)
    except InvalidOperation:
        return None
    if not d.is_finite() or d != d.to_integral_value():
        return None
    return int(d)


def _to_int(values: np.ndarray, target: np.dtype, fail: Any) -> np.ndarray:
    info = np.iinfo(target)
    kind = values.dtype.kind
    if kind == "b":
        return values.astype(target)
    if kind in "iu":
        if values.size and (int(values.min()) < info.min or int(values.max()) > info.max):
            for i, v in enumerate(values.ravel()):
                if not info.min <= int(v) <= info.max:
                    raise fail(f"value {_show(v)} does not fit {target.name}", i)
        return values.astype(target)
    if kind == "f":
        missing = np.isnan(values)
        if missing.any():
            i = _first(missing)
            raise fail(f"the value is missing (NaN); {target.name} cannot hold missing values", i)
        bad = ~np.isfinite(values) | (values != np.trunc(values))
        if bad.any():
            i = _first(bad)
            raise fail(f"value {_show(values.ravel()[i])} is not a whole number; converting would lose information", i)
        out_of_range = (values < info.min) | (values > info.max)
        if out_of_range.any():
            i = _first(out_of_range)
            raise fail(f"value {_show(values.ravel()[i])} does not fit {target.name}", i)
        return values.astype(target)
    if kind in "UO":
        flat = values.ravel()
        out = []
        for i, v in enumerate(flat):
            if _is_missing(v):
                raise fail(f"the value is missing; {target.name} cannot hold missing values", i)
            if isinstance(v, (bool, np.bool_)):
                n: int | None = int(v)
            elif isinstance(v, (int, np.integer)):
                n = int(v)
            elif isinstance(v, (float, np.floating)):
                n = int(v) if float(v).is_integer() else None
            elif isinstance(v, str):
                n = _parse_int(v)
            else:
                n = None
            if n is None:
                what = "is not a whole number" if isinstance(v, (str, float, np.floating)) else "is not a number"
                if isinstance(v, str) and _parse_float(v) is None:
                    what = "is not a number"
                raise fail(f"value {_show(v)} {what}; converting would lose information", i)
            if not info.min <= n <= info.max:
                raise fail(f"value {_show(v)} does not fit {target.name}", i)
            out.append(n)
        return np.array(out, dtype=target).reshape(values.shape)
    raise fail("pass whole numbers")


def _parse_float(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def _to_float(values: np.ndarray, target: np.dtype, fail: Any) -> np.ndarray:
    kind = values.dtype.kind
    if kind == "b":
        return values.astype(target)
    if kind in "iu":
        with np.errstate(invalid="ignore", over="ignore"):
            out = values.astype(target)
            exact = np.isfinite(out) & (out.astype(values.dtype) == values)
        if not exact.all():
            i = _first(~exact)
            raise fail(f"value {_show(values.ravel()[i])} has no exact {target.name} representation", i)
        return out
    if kind == "f":
        with np.errstate(over="ignore"):
            out = values.astype(target)
        overflow = np.isfinite(values) & ~np.isfinite(out)
        if overflow.any():
            i = _first(overflow)
            raise fail(f"value {_show(values.ravel()[i])} overflows {target.name}", i)
        return out
    if kind in "UO":
        flat = values.ravel()
        parsed = np.empty(flat.shape, dtype=np.float64)
        for i, v in enumerate(flat):
            if _is_missing(v):
                parsed[i] = np.nan
            elif isinstance(v, (bool, np.bool_, int, np.integer)):
                if abs(int(v)) > 2**53:
                    raise fail(f"value {_show(v)} has no exact float representation", i)
                parsed[i] = float(v)
            elif isinstance(v, (float, np.floating)):
                parsed[i] = float(v)
            elif isinstance(v, str) and (f := _parse_float(v)) is not None:
                parsed[i] = f
            else:
                raise fail(f"value {_show(v)} is not a number", i)
        return _to_float(parsed.reshape(values.shape), target, fail)
    raise fail("pass numbers")


def _to_datetime(values: np.ndarray, fail: Any) -> np.ndarray:
    kind = values.dtype.kind
    target = np.dtype("datetime64[ns]")
    if kind == "M":
        with np.errstate(invalid="ignore", over="ignore"):
            out = values.astype(target)
            changed = (out.astype(values.dtype) != values) & ~np.isnat(values)
        if changed.any():
            i = _first(changed)
            raise fail(f"value {_show(values.ravel()[i])} does not fit datetime64[ns]", i)
        return out
    if kind in "UO":
        flat = values.ravel()
        out = np.empty(flat.shape, dtype=target)
        for i, v in enumerate(flat):
            if _is_missing(v):
                out[i] = np.datetime64("NaT")
                continue
            try:
                out[i] = np.datetime64(v.isoformat() if hasattr(v, "isoformat") else v, "ns")
            except (ValueError, TypeError):
                raise fail(f"value {_show(v)} is not an ISO 8601 date or time", i) from None
        return out.reshape(values.shape)
    raise fail("pass datetimes or ISO 8601 strings")
