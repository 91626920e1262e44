"""Pass 1 over one table: row hashes, key columns, column statistics and the drift sample, in one
streaming pass over record batches. Memory: 8 bytes per row (the row hash), the key columns, the
statistics and the sample; never the table itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlark.diff.deps import require
from mlark.diff.table.hashing import (
    column_hash,
    encode_strings,
    low_cardinality,
    seed_of,
)
from mlark.diff.table.sample import DEFAULT_SIZE, RowSampler
from mlark.diff.table.source import DEFAULT_BATCH, TableSource
from mlark.diff.table.stats import ColumnAccumulator, ColumnStats
from mlark.diff.table.types import cast_column, stat_kind, type_class


@dataclass(frozen=True)
class ScanPlan:
    """What to compute for one side. ``types`` maps every column of this side to the type its values
    are read as (the comparison type for columns both sides have, its own type otherwise)."""

    types: dict[str, Any]
    compared: tuple[str, ...]  # columns that make up the row hash
    key: tuple[str, ...] = ()  # key columns, kept in memory for the join
    sampled: tuple[str, ...] = ()  # columns whose values go into the drift sample
    stats: bool = True
    sample_size: int = DEFAULT_SIZE
    batch_size: int = DEFAULT_BATCH


@dataclass
class ScanResult:
    rows: int
    row_hash: Any  # numpy uint64, one per row
    keys: Any  # pyarrow.Table of the key columns (cast to their comparison types), or None
    accumulators: dict[str, ColumnAccumulator] = field(default_factory=dict)
    sampler: RowSampler | None = None

    def stats(self) -> dict[str, ColumnStats]:
        out = {}
        full = self.sampler is not None and self.sampler.complete
        for name, acc in self.accumulators.items():
            exact = None
            if full and acc.counts is None and self.sampler is not None and name in self.sampler.columns:
                exact = _distinct(self.sampler.column(name))
            out[name] = acc.finish(exact_distinct=exact)
        return out


def _distinct(col: Any) -> int:
    """Distinct non-null values of a (numeric or temporal) column, by sorting."""
    np = require("numpy", purpose="diffing tables")
    pa = require("pyarrow", purpose="diffing tables")
    from mlark.diff.table.types import type_class

    if col is None:
        return 0
    col = col.drop_null()
    cls = type_class(col.type)
    if cls in ("timestamp", "date", "time", "duration"):
        col = col.view(pa.int64()) if col.type.bit_width == 64 else col.view(pa.int32())
    elif cls == "decimal":
        col = col.cast(pa.float64())
    values = col.to_numpy(zero_copy_only=False)
    if values.dtype.kind == "f":
        values = values + 0.0  # -0.0 and 0.0 are one value
    return int(np.unique(values).size)


class _Prepared:
    """Per-column state kept across batches: whether strings are hashed per distinct value."""

    def __init__(self) -> None:
        self.dictionary: dict[str, bool] = {}

    def column(self, name: str, arr: Any, ctype: Any) -> Any:
        arr = cast_column(arr, ctype)
        if type_class(arr.type) in ("string", "binary"):
            pa = require("pyarrow", purpose="diffing tables")
            if not pa.types.is_dictionary(arr.type):
                use = self.dictionary.get(name)
                if use is None:
                    use = self.dictionary[name] = low_cardinality(arr)
                if use:
                    arr = encode_strings(arr)
        return arr


def scan(source: TableSource, plan: ScanPlan, on_batch: Callable[[int, Any, dict[str, Any], Any], None] | None = None
         ) -> ScanResult:
    """Pass 1 over ``source``. ``on_batch(first_row, batch, arrays, row_hash)`` is called for every
    batch (``arrays``: each column cast to its comparison type; ``row_hash``: the batch's row hashes)."""
    np = require("numpy", purpose="diffing tables")
    pa = require("pyarrow", purpose="diffing tables")
    compared = set(plan.compared)
    seeds = {name: seed_of(name) for name in plan.types}
    accs = {name: ColumnAccumulator(t, seed=seeds[name]) for name, t in plan.types.items()} if plan.stats else {}
    sampler = RowSampler(list(plan.sampled), plan.sample_size) if plan.stats and plan.sampled else None
    prepared = _Prepared()
    hashes: list[Any] = []
    known = source.num_rows  # when the row count is known, the row hashes go straight into one array
    row_hash = np.empty(known, dtype=np.uint64) if known is not None else None
    keys: dict[str, list[Any]] = {k: [] for k in plan.key}
    rows = 0
    # value hashes feed the row hash and the distinct counts; nested columns that are not compared
    # are hashed in Python (slow), so they get no distinct count
    need_hash = compared | ({n for n, t in plan.types.items() if stat_kind(t) != "other"} if plan.stats else set())
    for batch in source.batches(plan.batch_size):
        n = batch.num_rows
        row = np.zeros(n, dtype=np.uint64)
        arrays = {}
        for name in plan.types:
            arr = prepared.column(name, batch.column(name), plan.types[name])
            arrays[name] = arr
            h = column_hash(arr, seeds[name]) if name in need_hash else None
            if name in compared:
                row += h
            if plan.stats:
                accs[name].update(arr, h)
        for k in plan.key:
            arr = arrays[k]
            if pa.types.is_dictionary(arr.type):
                arr = arr.cast(arr.type.value_type)
            if not arr.type.equals(plan.types[k]):
                arr = arr.cast(plan.types[k])
            keys[k].append(arr)
        if sampler is not None:
            sampler.update(rows, arrays)
        if on_batch is not None:
            on_batch(rows, batch, arrays, row)
        if row_hash is not None and rows + n <= row_hash.size:
            row_hash[rows: rows + n] = row
        else:
            hashes.append(row)
        rows += n
    if row_hash is None or rows != row_hash.size or hashes:  # unknown, or not what the metadata said
        done = [row_hash[: min(rows, row_hash.size)]] if row_hash is not None else []
        row_hash = np.concatenate(done + hashes) if done or hashes else np.zeros(0, dtype=np.uint64)
    key_table = None
    if plan.key:
        key_table = pa.table({k: pa.chunked_array(keys[k], type=plan.types[k]) for k in plan.key})
    return ScanResult(rows=rows, row_hash=row_hash, keys=key_table, accumulators=accs, sampler=sampler)
