"""A deterministic uniform row sample per table, for drift scores.

A row is kept when ``splitmix64(row_index ^ SEED) < 2**64 >> level``; ``level`` starts at 0
(every row) and goes up by one (halving the rate) whenever more than ``2 * size`` rows are held.
So a table of at most ``2 * size`` rows is sampled completely (drift is then exact), a bigger
one is a Bernoulli sample of between ``size`` and ``2 * size`` rows, and two tables sampled at
the same level keep the same row positions: identical columns get a drift of exactly 0.
"""

from __future__ import annotations

from typing import Any

from mlark.diff.deps import require

SEED = 0x5A4D504C455F4D4C
DEFAULT_SIZE = 50_000


class RowSampler:
    def __init__(self, columns: list[str], size: int = DEFAULT_SIZE) -> None:
        self.columns = columns
        self.size = size
        self.level = 0
        self._prio: list[Any] = []
        self._values: dict[str, list[Any]] = {c: [] for c in columns}
        self._held = 0

    @staticmethod
    def priorities(start: int, count: int) -> Any:
        np = require("numpy", purpose="diffing tables")
        from mlark.diff.table.hashing import mix64

        idx = np.arange(start, start + count, dtype=np.uint64)
        idx ^= np.uint64(SEED)
        return mix64(idx)

    @staticmethod
    def threshold(level: int) -> int:
        return (1 << 64) >> level

    def _keep(self, prio: Any, level: int) -> Any:
        np = require("numpy", purpose="diffing tables")
        if level == 0:
            return np.ones(prio.size, dtype=bool)
        return prio < np.uint64(self.threshold(level))

    def update(self, start: int, arrays: dict[str, Any]) -> None:
        """Offer the rows ``start, start+1, ...`` of one batch (``arrays``: column -> Arrow array)."""
        np = require("numpy", purpose="diffing tables")
        if not self.columns:
            return
        count = len(next(iter(arrays.values())))
        prio = self.priorities(start, count)
        keep = self._keep(prio, self.level)
        if not keep.any():
            return
        idx = np.flatnonzero(keep)
        self._prio.append(prio[idx])
        pa = require("pyarrow", purpose="diffing tables")
        taken = pa.RecordBatch.from_arrays([arrays[c] for c in self.columns],
                                           names=[f"c{i}" for i in range(len(self.columns))]).take(idx)
        for c, col in zip(self.columns, taken.columns):
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            self._values[c].append(col)
        self._held += idx.size
        while self._held > 2 * self.size:
            self.level += 1
            self._refilter(self.level)

    def _refilter(self, level: int) -> None:
        np = require("numpy", purpose="diffing tables")
        held = 0
        for i, prio in enumerate(self._prio):
            keep = self._keep(prio, level)
            if keep.all():
                held += prio.size
                continue
            idx = np.flatnonzero(keep)
            self._prio[i] = prio[idx]
            for c in self.columns:
                self._values[c][i] = self._values[c][i].take(idx)
            held += idx.size
        self._held = held

    def restrict(self, level: int) -> None:
        """Drop the rows a sampler at ``level`` would not have kept (to align two tables' samples)."""
        if level > self.level:
            self.level = level
            self._refilter(level)

    def column(self, name: str) -> Any:
        """The sampled values of one column, as one Arrow array."""
        pa = require("pyarrow", purpose="diffing tables")
        chunks = self._values[name]
        if not chunks:
            return None
        return pa.chunked_array(chunks).combine_chunks()

    @property
    def rows(self) -> int:
        return self._held

    @property
    def complete(self) -> bool:
        return self.level == 0
