"""Element types of tensors under one set of names (numpy's, plus ``bfloat16`` and the float8
types), and turning raw elements into float64 for comparison."""

from __future__ import annotations

from typing import Any

from mlark.diff.deps import optional, require

#: safetensors dtype tags -> canonical names
SAFETENSORS = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8",
    "BOOL": "bool", "C64": "complex64", "C128": "complex128",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu",
}
ITEMSIZE = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
    "uint64": 8, "uint32": 4, "uint16": 2, "uint8": 1, "bool": 1, "complex64": 8, "complex128": 16,
    "float8_e4m3fn": 1, "float8_e5m2": 1, "float8_e8m0fnu": 1, "float8_e4m3fnuz": 1, "float8_e5m2fnuz": 1,
}
_NUMPY_NATIVE = {"float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint64", "uint32", "uint16",
                 "uint8", "bool", "complex64", "complex128"}


def numpy_dtype(name: str) -> Any | None:
    """The numpy dtype for a canonical name (bfloat16 / float8 through ml_dtypes when installed)."""
    np = require("numpy", purpose="comparing tensors")
    if name in _NUMPY_NATIVE:
        return np.dtype(name)
    mld = optional("ml_dtypes")
    if mld is not None and hasattr(mld, name):
        return np.dtype(getattr(mld, name))
    return None


def is_numeric(name: str) -> bool:
    return name in ITEMSIZE


def to_float(raw: Any, name: str) -> Any | None:
    """Raw elements (a uint8 array, or a typed array) as float64 (complex128 for complex); None when
    the type has no numeric reading here."""
    np = require("numpy", purpose="comparing tensors")
    if name == "bfloat16" and raw.dtype == np.uint8:
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    dt = numpy_dtype(name)
    if dt is None:
        return None
    values = raw.view(dt) if raw.dtype == np.uint8 else raw
    if values.dtype.kind == "c":
        return values.astype(np.complex128)
    return values.astype(np.float64)
