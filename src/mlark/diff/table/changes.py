"""Pass 2 over both tables, for a diff by content and for the exact-join fallback of a diff by
key (the usual keyed diff does its pass 2 in :mod:`mlark.diff.table.keyed`): which columns changed
in the changed rows, and the sample rows to show.

The old table is read once, hashing each compared column of the changed rows only (8 bytes per
changed row and column) and keeping the values of the sampled rows; then the new table is read
once, hashing the same cells and comparing them on the fly, so nothing else is held. Values shown
in samples are the file's own (not the comparison type's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlark.diff.deps import require
from mlark.diff.table.hashing import column_hash, seed_of
from mlark.diff.table.match import Matching
from mlark.diff.table.result import ChangedRow, SampleRow
from mlark.diff.table.source import DEFAULT_BATCH, TableSource
from mlark.diff.table.types import cast_column


@dataclass
class Changes:
    by_column: dict[str, int] = field(default_factory=dict)
    changed_rows: list[ChangedRow] = field(default_factory=list)
    added_rows: list[SampleRow] = field(default_factory=list)
    removed_rows: list[SampleRow] = field(default_factory=list)


def _in_batch(sorted_rows: Any, start: int, count: int) -> tuple[int, int]:
    np = require("numpy", purpose="diffing tables")
    lo, hi = np.searchsorted(sorted_rows, [start, start + count])
    return int(lo), int(hi)


def _rows(batch: Any, local: Any) -> list[dict[str, Any]]:
    return batch.take(local).to_pylist() if len(local) else []


def collect_changes(
    src_a: TableSource, src_b: TableSource, matching: Matching, *, compared: list[str],
    types_a: dict[str, Any], types_b: dict[str, Any], key: list[str], sample: int,
    batch_size: int = DEFAULT_BATCH,
) -> Changes:
    np = require("numpy", purpose="diffing tables")
    out = Changes()
    n_changed = int(matching.changed_a.size)
    seeds = [seed_of(c) for c in compared]
    want_a = n_changed > 0 or (sample and matching.removed.size)
    want_b = n_changed > 0 or (sample and matching.added.size)
    sample_a = matching.changed_a[:sample]
    removed_pick = matching.removed[:sample]
    added_pick = matching.added[:sample]
    hashes_a = np.zeros((len(compared), n_changed), dtype=np.uint64)
    before: dict[int, dict[str, Any]] = {}

    if want_a:
        start = 0
        for batch in src_a.batches(batch_size):
            n = batch.num_rows
            lo, hi = _in_batch(matching.changed_a, start, n)
            if hi > lo:
                local = matching.changed_a[lo:hi] - start
                taken = batch.take(local)
                for j, col in enumerate(compared):
                    arr = cast_column(taken.column(col), types_a[col])
                    hashes_a[j, lo:hi] = column_hash(arr, seeds[j])
            slo, shi = _in_batch(sample_a, start, n)
            for offset, row in zip(sample_a[slo:shi].tolist(), _rows(batch, sample_a[slo:shi] - start)):
                before[offset] = row
            rlo, rhi = _in_batch(removed_pick, start, n)
            for r, row in zip(removed_pick[rlo:rhi].tolist(), _rows(batch, removed_pick[rlo:rhi] - start)):
                out.removed_rows.append(SampleRow(row=int(r), values=row))
            start += n

    counts = np.zeros(len(compared), dtype=np.int64)
    sample_flags: dict[int, list[str]] = {}
    after: dict[int, dict[str, Any]] = {}
    if want_b:
        order_b = np.argsort(matching.changed_b, kind="stable")
        sorted_b = matching.changed_b[order_b]
        start = 0
        for batch in src_b.batches(batch_size):
            n = batch.num_rows
            lo, hi = _in_batch(sorted_b, start, n)
            if hi > lo:
                pairs = order_b[lo:hi]  # positions in the changed list
                local = sorted_b[lo:hi] - start
                taken = batch.take(local)
                shown = pairs < sample
                for j, col in enumerate(compared):
                    arr = cast_column(taken.column(col), types_b[col])
                    differ = column_hash(arr, seeds[j]) != hashes_a[j, pairs]
                    counts[j] += int(np.count_nonzero(differ))
                    for p in pairs[shown & differ].tolist():
                        sample_flags.setdefault(p, []).append(col)
                if shown.any():
                    rows = _rows(batch, local[shown])
                    for p, row in zip(pairs[shown].tolist(), rows):
                        after[p] = row
            alo, ahi = _in_batch(added_pick, start, n)
            for r, row in zip(added_pick[alo:ahi].tolist(), _rows(batch, added_pick[alo:ahi] - start)):
                out.added_rows.append(SampleRow(row=int(r), values=row))
            start += n

    out.by_column = {c: int(k) for c, k in sorted(zip(compared, counts.tolist()), key=lambda x: (-x[1], x[0]))
                     if k}
    for p in range(min(sample, n_changed)):
        ra, rb = int(matching.changed_a[p]), int(matching.changed_b[p])
        row_a, row_b = before.get(ra, {}), after.get(p, {})
        changed_cols = [c for c in compared if c in set(sample_flags.get(p, []))]
        out.changed_rows.append(ChangedRow(
            key={k: row_a.get(k) for k in key},
            row_a=ra, row_b=rb,
            changes={c: (row_a.get(c), row_b.get(c)) for c in changed_cols},
        ))
    return out
