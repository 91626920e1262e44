"""Comparing two tensors chunk by chunk (``CHUNK`` elements at a time, so memory stays bounded).

Status, in order of precedence: ``reshaped`` (shapes differ; values not compared), ``retyped``
(element types differ; values compared as float64 when both are numeric), ``changed`` (same type
and shape, bytes differ) or ``unchanged`` (bytes identical). For compared values:

- ``max_abs_diff``: the largest ``|a - b|`` (NaN when a NaN meets a number; NaN against NaN counts
  as equal);
- ``rel_l2``: ``||a - b||_2 / ||a||_2`` (infinity when ``a`` is all zeros and ``b`` is not);
- ``changed_elements``: how many elements differ.
"""

from __future__ import annotations

import math
from typing import Any

from mlark.diff.deps import require
from mlark.diff.tensors.result import TensorChange
from mlark.diff.tensors.source import TensorEntry, iter_chunks

CHUNK = 1 << 20


def _bytes_equal(a: TensorEntry, b: TensorEntry) -> bool:
    np = require("numpy", purpose="comparing tensors")
    for start, stop in iter_chunks(a.numel, CHUNK):
        if not np.array_equal(a.read_raw(start, stop), b.read_raw(start, stop)):
            return False
    return True


def _value_stats(a: TensorEntry, b: TensorEntry) -> dict[str, Any]:
    np = require("numpy", purpose="comparing tensors")
    if a.read_float is None or b.read_float is None:
        return {}
    max_abs = 0.0
    nan_seen = False
    sq_diff = 0.0
    sq_a = 0.0
    changed = 0
    with np.errstate(invalid="ignore", over="ignore"):
        for start, stop in iter_chunks(a.numel, CHUNK):
            xa, xb = a.read_float(start, stop), b.read_float(start, stop)
            if xa is None or xb is None:
                return {}
            both_nan = np.isnan(xa) & np.isnan(xb)
            d = np.abs(xa - xb)
            d[both_nan] = 0.0
            if d.size:
                top = float(np.max(d))
                if math.isnan(top):
                    nan_seen = True
                else:
                    max_abs = max(max_abs, top)
            changed += int(np.count_nonzero(d != 0))
            sq_diff += float(np.sum(d * d))
            sq_a += float(np.sum(np.abs(xa) ** 2))
    if sq_a == 0:
        rel = 0.0 if sq_diff == 0 else math.inf
    else:
        rel = math.sqrt(sq_diff) / math.sqrt(sq_a)
    if nan_seen:
        max_abs = math.nan
    return {"max_abs_diff": max_abs, "rel_l2": rel, "changed_elements": changed}


def compare_entries(name: str, a: TensorEntry | None, b: TensorEntry | None) -> TensorChange:
    if a is None and b is not None:
        return TensorChange(name, "added", None, b.dtype, None, b.shape)
    if b is None and a is not None:
        return TensorChange(name, "removed", a.dtype, None, a.shape, None)
    assert a is not None and b is not None
    if a.shape != b.shape:
        return TensorChange(name, "reshaped", a.dtype, b.dtype, a.shape, b.shape)
    if a.dtype != b.dtype:
        return TensorChange(name, "retyped", a.dtype, b.dtype, a.shape, b.shape, **_value_stats(a, b))
    if _bytes_equal(a, b):
        return TensorChange(name, "unchanged", a.dtype, b.dtype, a.shape, b.shape)
    stats = _value_stats(a, b)
    if not stats:  # a type with no numeric reading: only that bytes differ
        return TensorChange(name, "changed", a.dtype, b.dtype, a.shape, b.shape)
    return TensorChange(name, "changed", a.dtype, b.dtype, a.shape, b.shape, **stats)


def compare_maps(a: dict[str, TensorEntry], b: dict[str, TensorEntry]) -> list[TensorChange]:
    """Every name of either side, in the old side's order and then the new side's additions."""
    names = list(a) + [n for n in b if n not in a]
    out = []
    for n in names:
        ea, eb = a.get(n), b.get(n)
        out.append(compare_entries(n, ea, eb))
        for e in (ea, eb):
            if e is not None and e.close is not None:
                e.close()
    return out
