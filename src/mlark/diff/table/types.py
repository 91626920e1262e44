"""Which Arrow types two versions of a column are compared as, and how a column is classified
for statistics.

Two columns with the same name are compared as one *comparison type*: integers of any width as
int64 (uint64 when both are unsigned), integers and floats as float64, strings and dictionary
strings as strings, binaries as binary, timestamps as timestamps in the finer unit (as instants
when both carry a time zone), dates as date32, times and durations in the finer unit. Anything else
that differs is compared as its string form when both sides cast to string, and otherwise not at
all (the column is listed as *not comparable*). A CSV read back next to the Parquet it came from
therefore compares by value, although its inferred types may differ (reported as *retyped*).
"""

from __future__ import annotations

from typing import Any

from mlark.diff.deps import require

_UNITS = {"s": 0, "ms": 1, "us": 2, "ns": 3}


def _pa() -> Any:
    return require("pyarrow", purpose="diffing tables")


def value_type(t: Any) -> Any:
    pa = _pa()
    return t.value_type if pa.types.is_dictionary(t) else t


def type_class(t: Any) -> str:
    pa = _pa()
    t = value_type(t)
    T = pa.types
    if T.is_null(t):
        return "null"
    if T.is_boolean(t):
        return "bool"
    if T.is_unsigned_integer(t):
        return "uint"
    if T.is_integer(t):
        return "int"
    if T.is_floating(t):
        return "float"
    if T.is_decimal(t):
        return "decimal"
    if T.is_string(t) or T.is_large_string(t) or getattr(T, "is_string_view", lambda _t: False)(t):
        return "string"
    if T.is_binary(t) or T.is_large_binary(t) or T.is_fixed_size_binary(t) or \
            getattr(T, "is_binary_view", lambda _t: False)(t):
        return "binary"
    if T.is_timestamp(t):
        return "timestamp"
    if T.is_date(t):
        return "date"
    if T.is_time(t):
        return "time"
    if T.is_duration(t):
        return "duration"
    return "other"


def stat_kind(t: Any) -> str:
    """``numeric``, ``temporal``, ``categorical`` or ``other``: which statistics a column gets."""
    cls = type_class(t)
    if cls in ("int", "uint", "float", "decimal"):
        return "numeric"
    if cls in ("timestamp", "date", "time", "duration"):
        return "temporal"
    if cls in ("string", "bool"):
        return "categorical"
    return "other"


def _finer(a: Any, b: Any) -> str:
    return a.unit if _UNITS[a.unit] >= _UNITS[b.unit] else b.unit


def comparison_type(ta: Any, tb: Any) -> Any | None:
    """The type both columns are cast to before comparing values; None when they cannot be compared."""
    pa = _pa()
    va, vb = value_type(ta), value_type(tb)
    ca, cb = type_class(va), type_class(vb)
    if ca == "null" and cb == "null":
        return pa.null()
    if ca == "null":
        return comparison_type(vb, vb)
    if cb == "null":
        return comparison_type(va, va)
    if va.equals(vb):
        if ca == "string":
            return pa.large_string()
        if ca == "binary":
            return pa.large_binary()
        if ca in ("int", "uint"):
            return pa.uint64() if ca == "uint" and va.bit_width == 64 else pa.int64()
        if ca == "float":
            return pa.float64()
        if ca == "date":
            return pa.date32()
        return va
    pair = {ca, cb}
    if pair <= {"int", "uint"}:
        if pair == {"uint"}:
            return pa.uint64() if 64 in (va.bit_width, vb.bit_width) else pa.int64()
        wide_unsigned = any(type_class(t) == "uint" and t.bit_width == 64 for t in (va, vb))
        return pa.string() if wide_unsigned else pa.int64()
    if pair <= {"int", "uint", "float", "decimal"}:
        return pa.float64()
    if pair == {"string"}:
        return pa.large_string()
    if pair <= {"string", "binary"}:
        return pa.large_binary()
    if pair == {"timestamp"}:
        if (va.tz is None) != (vb.tz is None):
            return None
        return pa.timestamp(_finer(va, vb), tz="UTC" if va.tz is not None else None)
    if pair == {"date"}:
        return pa.date32()
    if pair == {"date", "timestamp"}:
        ts = va if ca == "timestamp" else vb
        return pa.timestamp(ts.unit, tz=ts.tz)
    if pair == {"time"}:
        unit = _finer(va, vb)
        return pa.time64(unit) if unit in ("us", "ns") else pa.time32(unit)
    if pair == {"duration"}:
        return pa.duration(_finer(va, vb))
    if _castable(va, pa.string()) and _castable(vb, pa.string()):
        return pa.string()
    return None


def _castable(src: Any, dst: Any) -> bool:
    pa = _pa()
    try:
        pa.array([], type=src).cast(dst)
        return True
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return False


def cast_column(arr: Any, ctype: Any) -> Any:
    """``arr`` as ``ctype``; a dictionary of strings stays a dictionary when strings are wanted."""
    pa = _pa()
    t = arr.type
    if type_class(ctype) in ("string", "binary") and type_class(t) in ("string", "binary"):
        return arr  # hashed by their bytes, whatever the offsets width or dictionary encoding
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if t.equals(ctype):
        return arr
    return arr.cast(ctype)


def type_name(t: Any) -> str:
    return str(t)
