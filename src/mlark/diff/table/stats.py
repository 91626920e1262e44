"""Per-column statistics, accumulated batch by batch with ``pyarrow.compute``.

Every column: rows, nulls, distinct values (exact for categorical columns with at most
``CATEGORY_CAP`` distinct values and for fully sampled tables, otherwise a HyperLogLog estimate,
flagged ``distinct_approx``). Numeric columns: min, max, mean and population standard deviation
(batches merged with Chan's formula), and NaN counts for floats (NaN is left out of min, max, mean
and std). Temporal columns: min and max. Categorical columns (strings, booleans): the
``TOP`` most frequent values with their counts, while the column has at most ``CATEGORY_CAP``
distinct values; beyond that it is flagged ``high_cardinality`` and keeps no counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlark.diff.deps import require
from mlark.diff.table.hll import HyperLogLog
from mlark.diff.table.types import stat_kind, type_class

CATEGORY_CAP = 10_000
TOP = 5


@dataclass(frozen=True)
class ColumnStats:
    """Statistics of one column of one table."""

    kind: str  # numeric | temporal | categorical | other
    rows: int
    nulls: int
    distinct: int | None  # None: not counted (a nested column that is not compared)
    distinct_approx: bool
    nans: int = 0
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    top: tuple[tuple[Any, int], ...] | None = None
    high_cardinality: bool = False

    def to_dict(self) -> dict[str, Any]:
        from mlark.diff.jsonable import jsonable

        out: dict[str, Any] = {
            "kind": self.kind, "rows": self.rows, "nulls": self.nulls, "distinct": self.distinct,
            "distinct_approx": self.distinct_approx,
        }
        if self.kind == "numeric":
            out.update(nans=self.nans, min=self.min, max=self.max, mean=self.mean, std=self.std)
        elif self.kind == "temporal":
            out.update(min=self.min, max=self.max)
        elif self.kind == "categorical":
            out["high_cardinality"] = self.high_cardinality
            out["top"] = None if self.top is None else [{"value": v, "count": c} for v, c in self.top]
        return jsonable(out)


@dataclass
class ColumnAccumulator:
    dtype: Any
    kind: str = ""
    rows: int = 0
    nulls: int = 0
    nans: int = 0
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: Any = None
    max: Any = None
    counts: dict[Any, int] | None = field(default_factory=dict)
    hll: HyperLogLog = field(default_factory=HyperLogLog)
    hashed: bool = False  # whether value hashes were seen (distinct counts need them)

    def __post_init__(self) -> None:
        self.kind = stat_kind(self.dtype)
        if self.kind != "categorical":
            self.counts = None

    seed: int = 0  # the column's hash seed: what the HyperLogLog sees must match the value hashes

    def give_up_counts(self) -> None:
        """Too many categories: count distinct values with the HyperLogLog from now on, starting
        with the values counted so far (their hashes were not fed to it while counting)."""
        pa = require("pyarrow", purpose="diffing tables")
        from mlark.diff.table.hashing import column_hash
        from mlark.diff.table.types import value_type

        if self.counts:
            known = pa.array(list(self.counts), type=value_type(self.dtype))
            self.hll.update(column_hash(known, self.seed))
        self.counts = None

    def update(self, arr: Any, hashes: Any) -> None:
        """One batch of values (cast to the comparison type) and their value hashes."""
        np = require("numpy", purpose="diffing tables")
        n = len(arr)
        self.rows += n
        nulls = arr.null_count
        self.nulls += nulls
        if nulls < n:
            if self.kind == "numeric":
                self._numeric(arr)
            elif self.kind == "temporal":
                self._min_max(arr)
            elif self.kind == "categorical" and self.counts is not None:
                self._categories(arr, np)
        if hashes is not None:
            self.hashed = True
        if hashes is not None and self.counts is None:  # exact category counts need no sketch
            if nulls:
                hashes = hashes[arr.is_valid().to_numpy(zero_copy_only=False)]
            self.hll.update(hashes)

    def _min_max(self, arr: Any) -> None:
        pc = require("pyarrow.compute", purpose="diffing tables")
        mm = pc.min_max(arr)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if lo is not None and (self.min is None or lo < self.min):
            self.min = lo
        if hi is not None and (self.max is None or hi > self.max):
            self.max = hi

    def _numeric(self, arr: Any) -> None:
        pa = require("pyarrow", purpose="diffing tables")
        pc = require("pyarrow.compute", purpose="diffing tables")
        if type_class(arr.type) == "decimal":
            arr = arr.cast(pa.float64())
        mean = pc.mean(arr).as_py()
        if type_class(arr.type) == "float" and mean is not None and math.isnan(mean):
            nan = pc.is_nan(arr)  # only when there is a NaN: the mean of a batch without one is a number
            n_nan = pc.sum(nan).as_py() or 0
            if n_nan:
                self.nans += n_nan
                arr = arr.filter(pc.invert(nan))
                mean = pc.mean(arr).as_py()
        n = len(arr) - arr.null_count
        if n == 0:
            return
        if arr.null_count == 0 and arr.type == pa.float64():
            values = arr.to_numpy(zero_copy_only=True)  # numpy's min/max are much faster on floats
            lo, hi = float(values.min()), float(values.max())
            self.min = lo if self.min is None else min(self.min, lo)
            self.max = hi if self.max is None else max(self.max, hi)
        else:
            self._min_max(arr)
        var = pc.variance(arr, ddof=0).as_py()
        if mean is None or var is None:
            return
        m2 = var * n
        if self.count == 0:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    def _categories(self, arr: Any, np: Any) -> None:
        pa = require("pyarrow", purpose="diffing tables")
        pc = require("pyarrow.compute", purpose="diffing tables")
        counts = self.counts
        assert counts is not None
        if pa.types.is_dictionary(arr.type):
            idx = arr.indices.drop_null().to_numpy(zero_copy_only=False)
            per = np.bincount(idx, minlength=len(arr.dictionary))
            nz = np.flatnonzero(per)
            if len(counts) + nz.size > CATEGORY_CAP and nz.size > CATEGORY_CAP:
                self.give_up_counts()
                return
            values = arr.dictionary.take(nz).to_pylist()
            pairs = zip(values, per[nz].tolist())
        else:
            vc = pc.value_counts(arr.drop_null() if arr.null_count else arr)
            if len(vc) > CATEGORY_CAP:
                self.give_up_counts()
                return
            pairs = zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())
        for value, c in pairs:
            counts[value] = counts.get(value, 0) + c
        if len(counts) > CATEGORY_CAP:
            self.give_up_counts()

    def finish(self, exact_distinct: int | None = None) -> ColumnStats:
        distinct: int | None
        if self.counts is not None:
            distinct, approx = len(self.counts), False
        elif exact_distinct is not None:
            distinct, approx = exact_distinct, False
        elif self.hashed:
            distinct, approx = min(self.hll.estimate(), self.rows - self.nulls), True
        else:
            distinct, approx = None, False
        top = None
        if self.counts is not None:
            ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], repr(kv[0])))
            top = tuple(ranked[:TOP])
        std = math.sqrt(self.m2 / self.count) if self.count else None
        return ColumnStats(
            kind=self.kind, rows=self.rows, nulls=self.nulls, distinct=distinct, distinct_approx=approx,
            nans=self.nans, min=self.min, max=self.max,
            mean=self.mean if self.count else None, std=std, top=top,
            high_cardinality=self.kind == "categorical" and self.counts is None,
        )
