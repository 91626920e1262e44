"""Pairing the rows of two tables.

By key: each row's key becomes one 64-bit word (the value itself for a single integer, float or
temporal key without nulls; otherwise the sum of the key columns' value hashes). Sorted words
show duplicates as equal neighbours; the new table's rows find their partner in the old table's
sorted words (:mod:`mlark.diff.table.keyindex`, :mod:`mlark.diff.table.keyed`). Where words are
hashes, every duplicate and every matched pair is checked against the real key values, and a hash
collision (about 2**-64 per pair) sends the whole match to an exact Arrow hash join
(:func:`match_by_key_exact`). Null key values match each other. A key must be unique in each
table; otherwise :class:`DuplicateKeys` says how many key values repeat and shows some.

By content (no key): the two multisets of row hashes; a row whose hash occurs more often in the
old table than in the new one is removed, and the other way round added. Without a key a changed
row is one removed and one added row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlark.diff.deps import require
from mlark.diff.errors import DuplicateKeys
from mlark.diff.text import fmt_value

EXAMPLES = 5


@dataclass
class Matching:
    """Row indices, each array sorted: ``changed_a[i]`` pairs with ``changed_b[i]``."""

    changed_a: Any
    changed_b: Any
    removed: Any  # row indices in the old table
    added: Any  # row indices in the new table
    unchanged: int


def _join_keys(ka: Any, kb: Any) -> tuple[Any, Any, list[str]]:
    """Key tables where nulls join as values: a nullable column becomes (is-null flag, filled value)."""
    pa = require("pyarrow", purpose="diffing tables")
    pc = require("pyarrow.compute", purpose="diffing tables")
    names = list(ka.column_names)
    out_a: dict[str, Any] = {}
    out_b: dict[str, Any] = {}
    for i, name in enumerate(names):
        ca, cb = ka.column(name), kb.column(name)
        if ca.null_count == 0 and cb.null_count == 0:
            out_a[f"k{i}"], out_b[f"k{i}"] = ca, cb
            continue
        filler = None
        for col in (ca, cb):
            valid = col.drop_null()
            if len(valid):
                filler = valid[0]
                break
        out_a[f"n{i}"], out_b[f"n{i}"] = pc.is_null(ca), pc.is_null(cb)
        if filler is not None:
            out_a[f"k{i}"], out_b[f"k{i}"] = ca.fill_null(filler), cb.fill_null(filler)
    cols = list(out_a)
    return pa.table(out_a), pa.table(out_b), cols


def check_unique(keys: Any, label: str) -> None:
    pc = require("pyarrow.compute", purpose="diffing tables")
    names = list(keys.column_names)
    if keys.num_rows < 2:
        return
    if len(names) == 1 and pc.count_distinct(keys.column(0), mode="all").as_py() == keys.num_rows:
        return
    grouped = keys.group_by(names, use_threads=False).aggregate([([], "count_all")])
    dup = grouped.filter(pc.greater(grouped["count_all"], 1))
    if dup.num_rows == 0:
        return
    rows = int(pc.sum(dup["count_all"]).as_py())
    examples = []
    for rec in dup.slice(0, EXAMPLES).to_pylist():
        value = {k: rec[k] for k in names}
        examples.append({"key": value, "rows": rec["count_all"]})
    shown = ", ".join(
        ("(" + ", ".join(f"{k}={fmt_value(v, 40)}" for k, v in e["key"].items()) + ")" if len(names) > 1
         else f"{names[0]}={fmt_value(e['key'][names[0]], 40)}") + f" x{e['rows']}"
        for e in examples)
    what = "key" if len(names) == 1 else "key (" + ", ".join(names) + ")"
    raise DuplicateKeys(
        f"{what} is not unique in {label}: {dup.num_rows:,} key value(s) occur more than once "
        f"({rows:,} rows), e.g. {shown}{', ...' if dup.num_rows > EXAMPLES else ''}",
        file=label, key=names, duplicates=dup.num_rows, rows=rows, examples=examples,
    )


def key_words(keys: Any) -> tuple[Any, bool]:
    """One uint64 per row of a key table, and whether it is the key itself (exact) or a hash."""
    from mlark.diff.table.hashing import words_of
    from mlark.diff.table.types import type_class

    cols = [keys.column(i).combine_chunks() for i in range(keys.num_columns)]
    if len(cols) == 1 and cols[0].null_count == 0 and type_class(cols[0].type) in (
            "int", "uint", "float", "timestamp", "date", "time", "duration", "bool"):
        return words_of(cols[0]), True
    return hashed_words(keys), False


def same_keys(keys_a: Any, ia: Any, keys_b: Any, ib: Any) -> Any:
    """Per pair, whether the real key values are equal (null equals null)."""
    np = require("numpy", purpose="diffing tables")
    pa = require("pyarrow", purpose="diffing tables")
    pc = require("pyarrow.compute", purpose="diffing tables")
    same = np.ones(len(ia), dtype=bool)
    for name in keys_a.column_names:
        va = keys_a.column(name).take(pa.array(ia))
        vb = keys_b.column(name).take(pa.array(ib))
        eq = pc.equal(va, vb)
        both_null = pc.and_(va.is_null(), vb.is_null())
        eq = pc.or_kleene(eq, both_null).fill_null(False)
        same &= eq.to_numpy(zero_copy_only=False)
    return same


class HashCollision(Exception):
    """Two different keys share a 64-bit hash: the caller falls back to an exact join."""


def unique_sorted(words: Any, exact: bool, keys: Any, label: str) -> tuple[Any | None, Any]:
    """``(order, sorted_words)``, ``order`` None when the words are already strictly increasing (a
    table stored in key order: no sort, no copy). Raises DuplicateKeys, or HashCollision when two
    different keys share a hash."""
    np = require("numpy", purpose="diffing tables")
    if words.size < 2 or bool(np.all(words[1:] > words[:-1])):
        return None, words
    order = np.argsort(words, kind="stable")
    ordered = words[order]
    dup = np.flatnonzero(ordered[1:] == ordered[:-1])
    if dup.size:
        first, second = order[dup], order[dup + 1]
        if not exact and not same_keys(keys, first, keys, second).all():
            raise HashCollision
        check_unique(keys, label)  # exact report: how many, which
    return order, ordered


def hashed_words(keys: Any) -> Any:
    """The sum of the key columns' value hashes (seeded by ``key_seed``), one per row."""
    np = require("numpy", purpose="diffing tables")
    from mlark.diff.table.hashing import column_hash

    out = np.zeros(keys.num_rows, dtype=np.uint64)
    for name in keys.column_names:
        out += column_hash(keys.column(name).combine_chunks(), key_seed(name))
    return out


def key_seed(name: str) -> int:
    from mlark.diff.table.hashing import seed_of

    return seed_of("\x00key\x00" + name)


def match_by_key_exact(keys_a: Any, keys_b: Any, hash_a: Any, hash_b: Any, *,
                       labels: tuple[str, str] = ("a", "b")) -> Matching:
    """The exact fallback when two keys share a hash: Arrow's hash join on the key columns."""
    check_unique(keys_a, labels[0])
    check_unique(keys_b, labels[1])
    np = require("numpy", purpose="diffing tables")
    pa = require("pyarrow", purpose="diffing tables")
    pc = require("pyarrow.compute", purpose="diffing tables")
    ja, jb, cols = _join_keys(keys_a, keys_b)
    ja = ja.append_column("__a", pa.array(np.arange(ja.num_rows, dtype=np.int64)))
    jb = jb.append_column("__b", pa.array(np.arange(jb.num_rows, dtype=np.int64)))
    joined = ja.join(jb, keys=cols, join_type="full outer", use_threads=True)
    ia = joined["__a"]
    ib = joined["__b"]
    both = pc.and_(ia.is_valid(), ib.is_valid())
    pa_idx = pc.filter(ia, both).to_numpy()
    pb_idx = pc.filter(ib, both).to_numpy()
    removed = np.sort(ia.filter(ib.is_null()).to_numpy())
    added = np.sort(ib.filter(ia.is_null()).to_numpy())
    differ = hash_a[pa_idx] != hash_b[pb_idx]
    ca, cb = pa_idx[differ], pb_idx[differ]
    order = np.argsort(ca, kind="stable")
    return Matching(changed_a=ca[order], changed_b=cb[order], removed=removed, added=added,
                    unchanged=int(pa_idx.size - ca.size))


def match_by_content(hash_a: Any, hash_b: Any) -> Matching:
    np = require("numpy", purpose="diffing tables")
    ua, ca = np.unique(hash_a, return_counts=True)
    ub, cb = np.unique(hash_b, return_counts=True)
    _, ia, ib = np.intersect1d(ua, ub, assume_unique=True, return_indices=True)
    common = np.minimum(ca[ia], cb[ib])
    excess_a = ca.copy()
    excess_a[ia] -= common
    excess_b = cb.copy()
    excess_b[ib] -= common
    removed = _excess_rows(hash_a, ua, excess_a)
    added = _excess_rows(hash_b, ub, excess_b)
    empty = np.zeros(0, dtype=np.int64)
    return Matching(changed_a=empty, changed_b=empty, removed=removed, added=added,
                    unchanged=int(common.sum()))


def _excess_rows(hashes: Any, uniq: Any, excess: Any) -> Any:
    """Row indices carrying each hash's excess count (the last occurrences), sorted."""
    np = require("numpy", purpose="diffing tables")
    if not excess.any():
        return np.zeros(0, dtype=np.int64)
    wanted = uniq[excess > 0]
    rows = np.flatnonzero(np.isin(hashes, wanted))
    if rows.size == int(excess.sum()):
        return rows.astype(np.int64)
    # a hash present on both sides with a higher count here: keep only its last `excess` rows
    h = hashes[rows]
    order = np.argsort(h, kind="stable")
    hs = h[order]
    uniq_h, start, counts = np.unique(hs, return_index=True, return_counts=True)
    pos = np.arange(hs.size) - np.repeat(start, counts)
    from_end = np.repeat(counts, counts) - 1 - pos
    need = excess[np.searchsorted(uniq, uniq_h)]
    keep = from_end < np.repeat(need, counts)
    return np.sort(rows[order][keep]).astype(np.int64)
