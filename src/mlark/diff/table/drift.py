"""Drift scores between two versions of a column.

- **Population stability index (PSI)** for every numeric, temporal and categorical column:
  ``PSI = sum over bins of (b - a) * ln(b / a)`` where ``a`` and ``b`` are the shares of rows of
  the old and new table in a bin; a share of 0 is floored at ``EPSILON`` (1e-4). Numeric and
  temporal bins are the deciles of the old version (ties merged) plus a bin for nulls and NaN;
  categorical bins are the categories of either version plus a bin for nulls. Read it as: below
  0.1 *stable*, 0.1 to 0.25 *moderate* shift, 0.25 and above *major* shift.
- **Kolmogorov-Smirnov statistic** for numeric and temporal columns: the largest distance between
  the two empirical distribution functions of the non-null values (0 = same, 1 = disjoint).

Numeric and temporal scores come from the row sample (:mod:`mlark.diff.table.sample`; exact when
the tables fit in it), categorical PSI from exact category counts; a categorical column with more
than ``CATEGORY_CAP`` distinct values gets no score (its categories are not categories).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlark.diff.deps import require

EPSILON = 1e-4
BINS = 10
MODERATE = 0.1
MAJOR = 0.25


@dataclass(frozen=True)
class Drift:
    method: str  # "psi"
    value: float
    level: str  # stable | moderate | major
    ks: float | None = None
    sampled: bool = False
    sample_rows: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        from mlark.diff.jsonable import jsonable

        return jsonable({"method": self.method, "value": self.value, "level": self.level, "ks": self.ks,
                         "sampled": self.sampled,
                         "sample_rows": list(self.sample_rows) if self.sample_rows else None})


def level_of(psi: float) -> str:
    if psi >= MAJOR:
        return "major"
    if psi >= MODERATE:
        return "moderate"
    return "stable"


def psi(shares_a: Any, shares_b: Any) -> float:
    np = require("numpy", purpose="drift scores")
    a = np.maximum(np.asarray(shares_a, dtype=np.float64), EPSILON)
    b = np.maximum(np.asarray(shares_b, dtype=np.float64), EPSILON)
    value = float(np.sum((b - a) * np.log(b / a)))
    return 0.0 if abs(value) < 1e-15 else value


def ks_statistic(xa: Any, xb: Any) -> float | None:
    np = require("numpy", purpose="drift scores")
    if xa.size == 0 or xb.size == 0:
        return None
    values = np.concatenate([np.sort(xa), np.sort(xb)])
    order = np.argsort(values, kind="stable")  # merges the two sorted runs in linear time
    from_a = order < xa.size
    gap = np.cumsum(from_a) / xa.size - np.cumsum(~from_a) / xb.size
    ordered = values[order]
    last_of_value = np.append(ordered[1:] != ordered[:-1], True)  # the distribution functions jump there
    return float(np.max(np.abs(gap[last_of_value])))


def numeric_drift(xa: Any, xb: Any, *, sampled: bool) -> Drift:
    """``xa``/``xb``: float64 arrays with NaN for nulls (and NaN values)."""
    np = require("numpy", purpose="drift scores")
    va, vb = xa[~np.isnan(xa)], xb[~np.isnan(xb)]
    ref = va if va.size else vb
    ref = ref[np.isfinite(ref)]  # infinities fall into the outer bins
    if ref.size:
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, BINS + 1)[1:-1]))
    else:
        edges = np.zeros(0)
    nbins = edges.size + 1

    def shares(x: Any, valid: Any) -> Any:
        counts = np.bincount(np.searchsorted(edges, valid, side="right"), minlength=nbins).astype(np.float64)
        counts = np.append(counts, x.size - valid.size)
        return counts / max(x.size, 1)

    value = psi(shares(xa, va), shares(xb, vb)) if xa.size and xb.size else 0.0
    return Drift("psi", value, level_of(value), ks=ks_statistic(va, vb), sampled=sampled,
                 sample_rows=(int(xa.size), int(xb.size)))


def categorical_drift(counts_a: dict[Any, int], counts_b: dict[Any, int], nulls_a: int, nulls_b: int,
                      rows_a: int, rows_b: int) -> Drift:
    keys = list(dict.fromkeys([*counts_a, *counts_b]))
    sa = [counts_a.get(k, 0) / max(rows_a, 1) for k in keys] + [nulls_a / max(rows_a, 1)]
    sb = [counts_b.get(k, 0) / max(rows_b, 1) for k in keys] + [nulls_b / max(rows_b, 1)]
    value = psi(sa, sb) if rows_a and rows_b else 0.0
    return Drift("psi", value, level_of(value), ks=None, sampled=False, sample_rows=None)


def as_float(arr: Any) -> Any:
    """An Arrow array as float64 numpy, NaN for nulls (temporal values as their integer count)."""
    pa = require("pyarrow", purpose="drift scores")
    np = require("numpy", purpose="drift scores")
    from mlark.diff.table.types import type_class

    if arr is None:
        return np.zeros(0)
    cls = type_class(arr.type)
    if cls in ("timestamp", "date", "time", "duration"):
        arr = arr.view(pa.int64()) if arr.type.bit_width == 64 else arr.view(pa.int32())
    out = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(out, dtype=np.float64)


def finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x
