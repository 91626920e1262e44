"""Diffing by key in three reads instead of four: while the new table is read (pass 1), each batch's
rows are paired with the old table's rows through the :class:`KeyIndex`; changed rows are known at
once, so their cells are hashed per column and their sample values kept right then. Afterwards
one more read of the old table (pass 2) hashes the same cells there and counts which columns
changed. Memory: 8 bytes per changed row and compared column, plus the samples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlark.diff.deps import require
from mlark.diff.table import match
from mlark.diff.table.changes import Changes
from mlark.diff.table.hashing import column_hash, seed_of
from mlark.diff.table.keyindex import KeyIndex, batch_key_words, lookup
from mlark.diff.table.match import Matching
from mlark.diff.table.result import ChangedRow, SampleRow
from mlark.diff.table.source import DEFAULT_BATCH, TableSource
from mlark.diff.table.types import cast_column


@dataclass
class NewSide:
    """The hook ``scan`` calls for every batch of the new table."""

    index: KeyIndex
    hash_a: Any  # row hashes of the old table
    compared: list[str]
    key: list[str]
    sample: int
    _words: list[Any] = field(default_factory=list)
    _valid: list[Any] = field(default_factory=list)
    _ia: list[Any] = field(default_factory=list)
    _ib: list[Any] = field(default_factory=list)
    _changed_a: list[Any] = field(default_factory=list)
    _changed_b: list[Any] = field(default_factory=list)
    _cells: list[Any] = field(default_factory=list)  # per batch: (len(compared), changed rows) uint64
    candidates: dict[int, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # row_a -> (row_b, values)
    added_rows: list[SampleRow] = field(default_factory=list)

    def __post_init__(self) -> None:
        np = require("numpy", purpose="diffing tables")
        self.seeds = [seed_of(c) for c in self.compared]
        self.seen = np.zeros(self.hash_a.size, dtype=bool)  # old rows that found a partner
        self._hit: list[Any] = []  # per batch: new rows that found one

    def __call__(self, start: int, batch: Any, arrays: dict[str, Any], row_hash: Any) -> None:
        np = require("numpy", purpose="diffing tables")
        words, valid = batch_key_words(self.index, [arrays[k] for k in self.key])
        self._words.append(words)
        self._valid.append(valid if valid is not None else np.ones(words.size, dtype=bool))
        local, rows_a = lookup(self.index, words, valid)
        self.seen[rows_a] = True
        hit = np.zeros(words.size, dtype=bool)
        hit[local] = True
        self._hit.append(hit)
        if not self.index.exact:  # hashed keys: every pair is checked against the real keys at the end
            self._ia.append(rows_a)
            self._ib.append(local + start)
        differ = self.hash_a[rows_a] != row_hash[local]
        ch_local, ch_a = local[differ], rows_a[differ]
        self._changed_a.append(ch_a)
        self._changed_b.append(ch_local + start)
        if ch_local.size:
            cells = np.empty((len(self.compared), ch_local.size), dtype=np.uint64)
            idx = ch_local
            for j, col in enumerate(self.compared):
                cells[j] = column_hash(arrays[col].take(idx), self.seeds[j])
            self._cells.append(cells)
            self._keep_candidates(batch, ch_local, ch_a, start)
        if len(self.added_rows) < self.sample:
            pick = np.flatnonzero(~hit)[: self.sample - len(self.added_rows)]
            if pick.size:
                for r, row in zip(pick.tolist(), batch.take(pick).to_pylist()):
                    self.added_rows.append(SampleRow(row=start + r, values=row))

    def _keep_candidates(self, batch: Any, ch_local: Any, ch_a: Any, start: int) -> None:
        """Keep the values of the changed rows that come first in the old table (the ones shown)."""
        np = require("numpy", purpose="diffing tables")
        if not self.sample:
            return
        if len(self.candidates) >= self.sample:
            worst = max(self.candidates)
            better = ch_a < worst
            ch_local, ch_a = ch_local[better], ch_a[better]
        if not ch_a.size:
            return
        first = np.argsort(ch_a, kind="stable")[: self.sample]
        rows = batch.take(ch_local[first]).to_pylist()
        for a, b, values in zip(ch_a[first].tolist(), (ch_local[first] + start).tolist(), rows):
            self.candidates[a] = (b, values)
        if len(self.candidates) > self.sample:
            for a in sorted(self.candidates)[self.sample:]:
                del self.candidates[a]

    def finish(self, keys_a: Any, keys_b: Any, label_b: str) -> tuple[Matching, Any, Any]:
        """``(matching, changed_order, cells)`` once the new table is read; raises DuplicateKeys for
        it, or HashCollision when the pairing rests on a hash two different keys share."""
        np = require("numpy", purpose="diffing tables")

        def cat(chunks: list[Any], dtype: Any = np.int64) -> Any:
            return np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)

        words = cat(self._words, np.uint64)
        valid = cat(self._valid, bool)
        self._words.clear()
        self._valid.clear()
        candidates = words[valid] if not valid.all() else words
        if self.index.exact and not valid.all():
            # null keys: unique among themselves is checked exactly on the key columns
            match.check_unique(keys_b, label_b)
        match.unique_sorted(candidates, self.index.exact, keys_b.filter(valid) if not valid.all() else keys_b,
                            label_b)
        del words, candidates
        if not self.index.exact:
            ia, ib = cat(self._ia), cat(self._ib)
            if ia.size and not match.same_keys(keys_a, ia, keys_b, ib).all():
                raise match.HashCollision
            del ia, ib
        hit = cat(self._hit, bool)
        matched = int(np.count_nonzero(hit))
        changed_a, changed_b = cat(self._changed_a), cat(self._changed_b)
        order = np.argsort(changed_a, kind="stable")
        cells = np.concatenate(self._cells, axis=1) if self._cells else \
            np.zeros((len(self.compared), 0), dtype=np.uint64)
        matching = Matching(changed_a=changed_a[order], changed_b=changed_b[order],
                            removed=np.flatnonzero(~self.seen), added=np.flatnonzero(~hit),
                            unchanged=matched - int(changed_a.size))
        return matching, order, cells


def finish_with_old(src_a: TableSource, side: NewSide, matching: Matching, order: Any, cells: Any, *,
                    types_a: dict[str, Any], batch_size: int = DEFAULT_BATCH) -> Changes:
    """Pass 2 over the old table: hash the changed rows' cells, compare, collect samples."""
    np = require("numpy", purpose="diffing tables")
    out = Changes(added_rows=list(side.added_rows))
    compared, sample = side.compared, side.sample
    cells = cells[:, order]  # now aligned with matching.changed_a (sorted)
    counts = np.zeros(len(compared), dtype=np.int64)
    changed_cols: dict[int, list[str]] = {}
    before: dict[int, dict[str, Any]] = {}
    rows_a = matching.changed_a
    sample_a = rows_a[:sample]
    removed_pick = matching.removed[:sample]
    if rows_a.size or removed_pick.size:
        start = 0
        for batch in src_a.batches(batch_size):
            n = batch.num_rows
            lo, hi = np.searchsorted(rows_a, [start, start + n])
            if hi > lo:
                taken = batch.take(rows_a[lo:hi] - start)
                for j, col in enumerate(compared):
                    values = cast_column(taken.column(col), types_a[col])
                    differ = column_hash(values, side.seeds[j]) != cells[j, lo:hi]
                    counts[j] += int(np.count_nonzero(differ))
                    for p in (np.flatnonzero(differ) + lo).tolist():
                        if p < sample:
                            changed_cols.setdefault(p, []).append(col)
            slo, shi = np.searchsorted(sample_a, [start, start + n])
            if shi > slo:
                for r, row in zip(sample_a[slo:shi].tolist(), batch.take(sample_a[slo:shi] - start).to_pylist()):
                    before[r] = row
            rlo, rhi = np.searchsorted(removed_pick, [start, start + n])
            if rhi > rlo:
                picked = removed_pick[rlo:rhi]
                for r, row in zip(picked.tolist(), batch.take(picked - start).to_pylist()):
                    out.removed_rows.append(SampleRow(row=int(r), values=row))
            start += n
    out.by_column = {c: int(k) for c, k in sorted(zip(compared, counts.tolist()), key=lambda x: (-x[1], x[0])) if k}
    for p in range(min(sample, rows_a.size)):
        ra = int(rows_a[p])
        rb, after = side.candidates.get(ra, (int(matching.changed_b[p]), {}))
        row_a = before.get(ra, {})
        cols = changed_cols.get(p, [])
        out.changed_rows.append(ChangedRow(key={k: row_a.get(k) for k in side.key}, row_a=ra, row_b=rb,
                                           changes={c: (row_a.get(c), after.get(c)) for c in compared if c in cols}))
    return out
