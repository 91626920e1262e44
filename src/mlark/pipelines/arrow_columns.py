"""Numeric Arrow arrays to numpy and back through their buffers.

pyarrow's own conversions (``Array.to_numpy``, ``pa.array``) import pandas to look for pandas
types, a third of a second of a batch prediction that never uses pandas. These read and write the
buffers of primitive numeric arrays directly: data buffers are shared, not copied; a validity bitmap
becomes NaN in a float column; booleans are unpacked from (and packed into) their bitmaps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Arrow type names of the numeric types, and their numpy dtype names.
NUMERIC = {"bool": "bool", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
           "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
           "halffloat": "float16", "float": "float32", "double": "float64"}  # fmt: skip


def dtype_name(arrow_type: Any) -> str:
    """The numpy dtype name of a numeric Arrow type, else ""."""
    return NUMERIC.get(str(arrow_type), "")


def to_numpy(array: Any) -> np.ndarray | None:
    """A numeric Arrow Array (or a ChunkedArray of one chunk) as numpy; nulls become NaN in float
    columns. None for other types, other chunkings, and nulls in integer or boolean columns."""
    if hasattr(array, "chunks"):
        if array.num_chunks != 1:
            return None
        array = array.chunk(0)
    name = dtype_name(array.type)
    if not name:
        return None
    n, offset = len(array), array.offset
    validity, data = array.buffers()[:2]
    if name == "bool":
        if array.null_count:
            return None
        return _bits(data, offset, n)
    values = np.frombuffer(data, dtype=np.dtype(name))[offset:offset + n] if n else np.empty(0, dtype=name)
    if array.null_count:
        if name[0] != "f":
            return None
        values = np.where(_bits(validity, offset, n), values, np.array(np.nan, dtype=values.dtype))
    return values


def _bits(buffer: Any, offset: int, n: int) -> np.ndarray:
    if n == 0:
        return np.empty(0, dtype=bool)
    raw = np.frombuffer(buffer, dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[offset:offset + n].astype(bool)


def from_numpy(values: np.ndarray) -> Any:
    """A 1-D numeric or text (``<U``) numpy array as an Arrow Array without nulls, or None for other arrays."""
    import pyarrow as pa

    if values.ndim == 1 and values.dtype.kind == "U":
        return _strings(values)
    if values.ndim != 1 or values.dtype.kind not in "biuf" or values.dtype.byteorder == ">":
        return None
    if values.dtype.kind == "b":
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def _strings(values: np.ndarray) -> Any:
    """An Arrow string array from numpy text: each distinct value encoded once, rows laid out by index."""
    import pyarrow as pa

    unique, inverse = np.unique(values, return_inverse=True)
    encoded = [u.encode("utf-8") for u in unique.tolist()]
    sizes = np.array([len(e) for e in encoded], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if sizes.size else sizes
    lengths = sizes[inverse]
    ends = np.cumsum(lengths)
    if ends.size and ends[-1] >= 2**31:
        return None
    offsets = np.concatenate([[0], ends]).astype(np.int32)
    index = np.arange(int(ends[-1]) if ends.size else 0) + np.repeat(starts[inverse] - (ends - lengths), lengths)
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8)[index] if index.size else np.empty(0, np.uint8)
    return pa.Array.from_buffers(pa.string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
