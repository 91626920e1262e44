"""Table diffs against a plain-Python model of the same comparison, on random tables and edits;
plus the hashing invariants the engine relies on."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlark.diff import diff_tables
from mlark.diff.table.hashing import column_hash, seed_of

SCHEMA = pa.schema([("id", pa.int64()), ("f", pa.float64()), ("s", pa.string()), ("n", pa.int32())])

values_f = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64))
values_s = st.one_of(st.none(), st.text(alphabet="abcé\u00e9 xy\n", max_size=12))
values_n = st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1))
row_values = st.tuples(values_f, values_s, values_n)


def same(x, y) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return (math.isnan(x) and math.isnan(y)) or x == y
    return x == y and type(x) is type(y)


def canon(row):
    return tuple("NaN" if isinstance(v, float) and math.isnan(v) else (0.0 if v == 0 and isinstance(v, float) else v)
                 for v in row)


@st.composite
def table_pairs(draw):
    n = draw(st.integers(0, 40))
    ids = draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n, unique=True))
    rows_a = {i: draw(row_values) for i in ids}
    rows_b = dict(rows_a)
    for i in ids:
        op = draw(st.sampled_from(["keep", "keep", "drop", "edit"]))
        if op == "drop":
            del rows_b[i]
        elif op == "edit":
            rows_b[i] = draw(row_values)
    for i in draw(st.lists(st.integers(51, 90), max_size=5, unique=True)):
        rows_b[i] = draw(row_values)
    order_b = draw(st.permutations(list(rows_b)))
    batch = draw(st.integers(1, 50))
    return rows_a, {i: rows_b[i] for i in order_b}, batch


def to_table(rows) -> pa.Table:
    cols = list(zip(*rows.values())) if rows else [[], [], []]
    return pa.table([pa.array(list(rows), pa.int64()), pa.array(list(cols[0]), pa.float64()),
                     pa.array(list(cols[1]), pa.string()), pa.array(list(cols[2]), pa.int32())], schema=SCHEMA)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_pairs())
def test_key_diff_matches_a_python_model(data) -> None:
    rows_a, rows_b, batch = data
    d = diff_tables(to_table(rows_a), to_table(rows_b), key="id", batch_size=batch, sample=1000)
    added = [i for i in rows_b if i not in rows_a]
    removed = [i for i in rows_a if i not in rows_b]
    changed = {i: [c for c, x, y in zip("fsn", rows_a[i], rows_b[i]) if not same(canon([x])[0], canon([y])[0])]
               for i in rows_a if i in rows_b}
    changed = {i: cols for i, cols in changed.items() if cols}
    assert (d.rows.added, d.rows.removed, d.rows.changed) == (len(added), len(removed), len(changed))
    assert d.rows.unchanged == len(rows_a) - len(removed) - len(changed)
    per_col = Counter(c for cols in changed.values() for c in cols)
    assert d.rows.changed_by_column == dict(per_col)
    assert {r.key["id"]: sorted(r.changes) for r in d.changed_rows} == {i: sorted(c) for i, c in changed.items()}
    assert sorted(r.values["id"] for r in d.added_rows) == sorted(added)
    assert sorted(r.values["id"] for r in d.removed_rows) == sorted(removed)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_pairs())
def test_content_diff_matches_a_multiset_model(data) -> None:
    rows_a, rows_b, batch = data
    ta = to_table(rows_a).drop_columns(["id"])
    tb = to_table(rows_b).drop_columns(["id"])
    d = diff_tables(ta, tb, batch_size=batch, sample=1000)
    ca = Counter(canon(r) for r in rows_a.values())
    cb = Counter(canon(r) for r in rows_b.values())
    assert d.rows.removed == sum((ca - cb).values())
    assert d.rows.added == sum((cb - ca).values())
    assert d.rows.unchanged == sum((ca & cb).values())
    assert Counter(canon(tuple(r.values.values())) for r in d.removed_rows) == ca - cb


@given(st.lists(st.one_of(st.none(), st.binary(max_size=40)), max_size=60), st.integers(0, 59))
def test_string_hash_is_a_function_of_the_value(values, cut) -> None:
    """Same value -> same hash, whatever the batch, offsets width, slicing or dictionary encoding."""
    seed = seed_of("c")
    arr = pa.array(values, pa.binary())
    whole = column_hash(arr, seed)
    large = column_hash(arr.cast(pa.large_binary()), seed)
    assert np.array_equal(whole, large)
    if values:
        cut = cut % len(values)
        parts = np.concatenate([column_hash(arr.slice(0, cut), seed), column_hash(arr.slice(cut), seed)])
        assert np.array_equal(whole, parts)
        assert np.array_equal(whole, column_hash(arr.dictionary_encode(), seed))
    by_value = {}
    for v, h in zip(values, whole.tolist()):
        assert by_value.setdefault(v, h) == h
    distinct = {v for v in values}
    assert len({by_value[v] for v in distinct}) == len(distinct)


def test_equal_length_and_mixed_length_batches_hash_alike() -> None:
    seed = seed_of("x")
    fixed = pa.array(["abcdefghij", "klmnopqrst", "0123456789"])
    mixed = pa.array(["abcdefghij", "k", "0123456789"])
    assert column_hash(fixed, seed)[0] == column_hash(mixed, seed)[0]
    assert column_hash(fixed, seed)[2] == column_hash(mixed, seed)[2]
    long = pa.array(["x" * 40_000, "y", "x" * 40_000])  # beyond the position-seed table
    h = column_hash(long, seed)
    assert h[0] == h[2] != h[1]


def test_integer_and_float_widths_compare_by_value() -> None:
    a = pa.table({"id": pa.array([1, 2, 3], pa.int16()), "v": pa.array([1, 2, 3], pa.int8())})
    b = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "v": pa.array([1.0, 2.5, 3.0], pa.float32())})
    d = diff_tables(a, b, key="id")
    assert d.rows.changed == 1 and d.changed_rows[0].changes == {"v": (2, 2.5)}


@pytest.mark.parametrize("rows", [0, 1])
def test_tiny_and_empty_tables(rows) -> None:
    t = pa.table({"id": pa.array(list(range(rows)), pa.int64()), "v": pa.array([None] * rows, pa.null())})
    d = diff_tables(t, t, key="id")
    assert not d.has_changes and d.rows.rows_a == rows
    e = diff_tables(t, pa.table({"id": pa.array([5], pa.int64()), "v": pa.array([None], pa.null())}), key="id")
    assert e.rows.added == 1 and e.rows.removed == rows
    assert e.render(width=80) and e.to_markdown()
