"""64-bit hashes of column values and of rows, computed with vectorised numpy over Arrow buffers.

- Fixed-width values (integers, floats, booleans, dates, times, timestamps, durations) become one
  64-bit word each (floats as float64 with ``-0.0`` folded into ``0.0`` and every NaN into one NaN),
  xor-ed with a per-column seed and passed through the SplitMix64 finaliser.
- Strings and binaries are hashed by their bytes: each value is cut into 8-byte words, word ``k``
  is xor-ed with a seed for position ``k`` and mixed, and the value's hash is the wrapping sum of
  its words, xor-ed with its length (then seeded and mixed like a fixed-width value). The words are
  gathered from the batch's data buffer with one strided fancy index and summed with one
  cumulative sum, so no Python code runs per value. Low-cardinality strings (``dictionary``
  arrays, or a batch whose first values repeat) are hashed once per distinct value.
- Nulls hash to a per-column constant; other types (lists, structs, maps, decimals) fall back to
  hashing their canonical Python representation with BLAKE2b (slow but rare).

A row hash is the wrapping sum of its columns' hashes; each column's seed comes from its name, so
the sum is independent of column order and the same column contributes the same way in both
tables. Two different rows share a row hash with probability about 2**-64.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mlark.diff.deps import require
from mlark.diff.table.types import type_class

_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_GOLDEN = 0x9E3779B97F4A7C15
_KSEED_TAG = 0x243F6A8885A308D3
_KSEEDS = 4096
_NULL_TAG = 0x6E756C6C5F5F6D6C  # "null__ml"
_DICT_PROBE = 2048

_np_cache: dict[str, Any] = {}


def _np() -> Any:
    return require("numpy", purpose="diffing tables")


def seed_of(name: str) -> int:
    """The seed of a column: 64 bits of BLAKE2b of its name."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def mix64(z: Any) -> Any:
    """SplitMix64 finaliser, in place on a uint64 array; returns it."""
    np = _np()
    tmp = np.empty_like(z)
    np.right_shift(z, np.uint64(30), out=tmp)
    np.bitwise_xor(z, tmp, out=z)
    np.multiply(z, np.uint64(_M1), out=z)
    np.right_shift(z, np.uint64(27), out=tmp)
    np.bitwise_xor(z, tmp, out=z)
    np.multiply(z, np.uint64(_M2), out=z)
    np.right_shift(z, np.uint64(31), out=tmp)
    np.bitwise_xor(z, tmp, out=z)
    return z


def mix64_scalar(value: int) -> int:
    z = value & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * _M1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * _M2) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def null_hash(seed: int) -> int:
    return mix64_scalar(_NULL_TAG ^ seed)


def _validity(arr: Any) -> Any | None:
    """A numpy bool array, True where valid; None when there are no nulls."""
    if arr.null_count == 0:
        return None
    return arr.is_valid().to_numpy(zero_copy_only=False)


def _filled(arr: Any, value: Any) -> Any:
    return arr.fill_null(value) if arr.null_count else arr


def _words(arr: Any) -> Any:
    """Fixed-width values as one uint64 word each (nulls are garbage; masked by the caller)."""
    pa = require("pyarrow", purpose="diffing tables")
    np = _np()
    cls = type_class(arr.type)
    if cls == "float":
        values = _filled(arr.cast(pa.float64()), 0).to_numpy(zero_copy_only=False)
        values = values + 0.0  # a copy; folds -0.0 into 0.0
        nan = np.isnan(values)
        if nan.any():
            values[nan] = np.nan
        return values.view(np.uint64)
    if cls == "bool":
        return _filled(arr, False).to_numpy(zero_copy_only=False).astype(np.uint64)
    if cls == "uint":
        return _filled(arr.cast(pa.uint64()), 0).to_numpy(zero_copy_only=False).copy()
    if cls in ("int", "timestamp", "date", "time", "duration"):
        if cls != "int":
            arr = arr.view(pa.int64()) if arr.type.bit_width == 64 else arr.view(pa.int32())
        values = _filled(arr.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        return values.view(np.uint64).copy()
    raise TypeError(f"not a fixed-width type: {arr.type}")


def _position_seeds(k: Any) -> Any:
    """The seed of each 8-byte word position ``k`` (a table for short strings, computed beyond it)."""
    np = _np()
    if k.size and int(k.max()) < _KSEEDS:
        return _kseeds()[k]
    return mix64(k.astype(np.uint64) * np.uint64(_GOLDEN) + np.uint64(_KSEED_TAG))


def _kseeds() -> Any:
    tab = _np_cache.get("kseeds")
    if tab is None:
        np = _np()
        k = np.arange(_KSEEDS, dtype=np.uint64)
        tab = _np_cache["kseeds"] = mix64(k * np.uint64(_GOLDEN) + np.uint64(_KSEED_TAG))
    return tab


def words_of(arr: Any) -> Any:
    """Fixed-width values as uint64 words (no nulls expected): equal words <=> equal values."""
    return _words(arr)


def _bytes_hash(arr: Any) -> Any:
    """Hash of each string/binary value by its bytes (nulls are garbage; masked by the caller).

    The value is cut into little-endian 8-byte words (the last one zero-padded); word ``k`` is
    xor-ed with the seed of position ``k`` and mixed; the value's hash is the wrapping sum of its
    mixed words, xor-ed with its length times a constant. Equal-length batches take a reshape
    instead of a gather; both paths compute the same function.
    """
    pa = require("pyarrow", purpose="diffing tables")
    np = _np()
    from numpy.lib.stride_tricks import as_strided

    t = arr.type
    if pa.types.is_fixed_size_binary(t) or getattr(pa.types, "is_string_view", lambda _t: False)(t) or \
            getattr(pa.types, "is_binary_view", lambda _t: False)(t):
        arr = arr.cast(pa.large_binary())
        t = arr.type
    wide = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    bufs = arr.buffers()
    off_dtype = np.int64 if wide else np.int32
    offsets = np.frombuffer(bufs[1], dtype=off_dtype, count=arr.offset + n + 1)[arr.offset:].astype(np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    lengths = np.diff(offsets)
    h = np.zeros(n, dtype=np.uint64)
    if end > start:
        data = np.zeros(end - start + 16, dtype=np.uint8)
        data[: end - start] = np.frombuffer(bufs[2], dtype=np.uint8, count=end)[start:]
        width = int(lengths[0])
        if bool((lengths == width).all()):
            nw = (width + 7) >> 3
            mat = np.zeros((n, nw * 8), dtype=np.uint8)
            mat[:, :width] = data[: n * width].reshape(n, width)
            words = mat.view("<u8")
            words ^= _position_seeds(np.arange(nw, dtype=np.int64))
            mix64(words.reshape(-1))
            h = words.sum(axis=1, dtype=np.uint64)
        else:
            nw = (lengths + 7) >> 3
            total = int(nw.sum())
            first = np.cumsum(nw) - nw
            k = np.arange(total, dtype=np.int64) - np.repeat(first, nw)
            wstart = np.repeat(offsets[:-1] - start, nw) + (k << 3)
            rows = as_strided(data, shape=(data.size - 8, 8), strides=(1, 1))
            words = rows[wstart].view("<u8").reshape(-1)
            has = nw > 0
            tail = (lengths[has] - ((nw[has] - 1) << 3)).astype(np.uint64)
            mask = np.where(tail >= 8, np.uint64(0xFFFFFFFFFFFFFFFF),
                            (np.uint64(1) << (np.minimum(tail, 7) * np.uint64(8))) - np.uint64(1))
            words[(first + nw - 1)[has]] &= mask
            words ^= _position_seeds(k)
            mix64(words)
            sums = np.empty(total + 1, dtype=np.uint64)
            sums[0] = 0
            np.cumsum(words, out=sums[1:])
            h = sums[first + nw] - sums[first]
    h ^= lengths.astype(np.uint64) * np.uint64(_GOLDEN)
    return h


def _fallback_hash(arr: Any) -> Any:
    np = _np()
    out = np.zeros(len(arr), dtype=np.uint64)
    for i, value in enumerate(arr.to_pylist()):
        if value is not None:
            digest = hashlib.blake2b(repr(_canonical(value)).encode("utf-8"), digest_size=8).digest()
            out[i] = int.from_bytes(digest, "little")
    return out


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        if value != value:
            return "NaN"
        return value + 0.0
    if isinstance(value, dict):
        return tuple((k, _canonical(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    return value


def low_cardinality(arr: Any) -> bool:
    """Whether the first values of a string batch repeat enough to hash distinct values only."""
    pc = require("pyarrow.compute", purpose="diffing tables")
    probe = arr.slice(0, _DICT_PROBE)
    if len(probe) < 64:
        return False
    return pc.count_distinct(probe).as_py() * 4 <= len(probe)


def encode_strings(arr: Any) -> Any:
    """A dictionary array for a string/binary array (kept as is when it already is one)."""
    pa = require("pyarrow", purpose="diffing tables")
    pc = require("pyarrow.compute", purpose="diffing tables")
    if pa.types.is_dictionary(arr.type):
        return arr
    return pc.dictionary_encode(arr)


def column_hash(arr: Any, seed: int) -> Any:
    """One uint64 per value of ``arr`` (already cast to its comparison type); nulls get the column's null hash."""
    pa = require("pyarrow", purpose="diffing tables")
    np = _np()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if pa.types.is_null(arr.type):
        return np.full(n, null_hash(seed), dtype=np.uint64)
    if pa.types.is_dictionary(arr.type):
        dict_h = column_hash(arr.dictionary, seed)
        idx = _filled(arr.indices, 0).to_numpy(zero_copy_only=False)
        h = dict_h[idx] if dict_h.size else np.zeros(n, dtype=np.uint64)
        valid = _validity(arr)
        if valid is not None:
            h[~valid] = np.uint64(null_hash(seed))
        return h
    cls = type_class(arr.type)
    if cls in ("string", "binary"):
        h = _bytes_hash(arr)
    elif cls in ("float", "bool", "int", "uint", "timestamp", "date", "time", "duration"):
        h = _words(arr)
    else:
        h = _fallback_hash(arr)
    h ^= np.uint64(seed)
    mix64(h)
    valid = _validity(arr)
    if valid is not None:
        h[~valid] = np.uint64(null_hash(seed))
    return h
