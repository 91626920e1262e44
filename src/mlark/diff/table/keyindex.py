"""The old table's keys, sorted, so that the new table's rows find their partner batch by batch
while it is read (see :mod:`mlark.diff.table.match` for the key words)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlark.diff.deps import require
from mlark.diff.table import match


@dataclass
class KeyIndex:
    exact: bool  # words are the key values themselves (a single fixed-width column without nulls)
    words: Any  # sorted uint64
    order: Any | None  # row of each sorted word; None when the table is stored in key order
    names: list[str]

    @property
    def rows(self) -> int:
        return int(self.words.size)


def build_index(keys_a: Any, label: str) -> KeyIndex:
    """Raises DuplicateKeys for the old table, or HashCollision (the caller falls back)."""
    words, exact = match.key_words(keys_a)
    order, ordered = match.unique_sorted(words, exact, keys_a, label)
    return KeyIndex(exact=exact, words=ordered, order=order, names=list(keys_a.column_names))


def batch_key_words(index: KeyIndex, columns: list[Any]) -> tuple[Any, Any | None]:
    """Words for one batch of the new table's key columns, in the index's form, and a mask of the
    rows that can match (None: all). A null key cannot match an exact index (it has no nulls)."""
    np = require("numpy", purpose="diffing tables")
    from mlark.diff.table.hashing import column_hash, words_of

    if index.exact:
        col = columns[0]
        if col.null_count:
            valid = col.is_valid().to_numpy(zero_copy_only=False)
            return words_of(col.fill_null(col.drop_null()[0] if len(col.drop_null()) else 0)), valid
        return words_of(col), None
    out = np.zeros(len(columns[0]), dtype=np.uint64)
    for name, col in zip(index.names, columns):
        out += column_hash(col, match.key_seed(name))
    return out, None


def lookup(index: KeyIndex, words: Any, valid: Any | None) -> tuple[Any, Any]:
    """``(local, rows_a)``: positions in the batch that have a partner, and the partner rows."""
    np = require("numpy", purpose="diffing tables")
    if index.rows == 0 or words.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    # binary searches for sorted queries walk the index in order (numpy narrows each search from the
    # previous one); random queries would miss the cache at every level. A batch already in key
    # order sorts in linear time.
    order = np.argsort(words, kind="stable")
    pos = np.empty(words.size, dtype=np.intp)
    pos[order] = np.searchsorted(index.words, words[order])
    np.minimum(pos, index.rows - 1, out=pos)
    found = index.words[pos] == words
    if valid is not None:
        found &= valid
    local = np.flatnonzero(found)
    rows_a = pos[local] if index.order is None else index.order[pos[local]]
    return local, rows_a.astype(np.int64)
