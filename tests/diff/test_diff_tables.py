"""Table diffs: rows by key and by content, schema changes, values, statistics, drift, formats, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from mlark.diff import diff_tables
from mlark.diff.errors import DuplicateKeys, InputNotFound, KeyColumnMissing, UnreadableFile
from mlark.errors import InvalidInput, NotFound


def base_table(n: int = 100) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "x": pa.array(rng.normal(size=n)),
        "k": pa.array(rng.integers(0, 5, size=n)),
        "s": pa.array([f"name-{i % 7}" for i in range(n)]),
    })


def replace(table: pa.Table, name: str, values: list) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i), pa.array(values, type=table.schema.field(i).type))


# -- rows by key -------------------------------------------------------------------------------------


def test_key_diff_counts_added_removed_changed_and_columns() -> None:
    a = base_table(100)
    xs = a["x"].to_pylist()
    ss = a["s"].to_pylist()
    for i in (3, 10, 50):
        xs[i] += 1.0
    ss[10] = "renamed"
    b = replace(replace(a, "x", xs), "s", ss)
    b = b.filter(pa.array([i != 7 for i in range(100)]))  # id 7 removed
    b = pa.concat_tables([b, pa.table({"id": [1000], "x": [0.5], "k": [1], "s": ["new"]}).cast(b.schema)])
    d = diff_tables(a, b, key="id")
    assert (d.rows.added, d.rows.removed, d.rows.changed, d.rows.unchanged) == (1, 1, 3, 96)
    assert d.rows.changed_by_column == {"x": 3, "s": 1}
    assert [r.key for r in d.changed_rows] == [{"id": 3}, {"id": 10}, {"id": 50}]
    row10 = d.changed_rows[1]
    assert row10.changes["s"] == ("name-3", "renamed")
    assert row10.changes["x"][1] == pytest.approx(row10.changes["x"][0] + 1.0)
    assert [r.values["id"] for r in d.added_rows] == [1000]
    assert [r.values["id"] for r in d.removed_rows] == [7]
    assert d.has_changes


def test_identical_tables_have_no_changes(tmp_path) -> None:
    a = base_table(1000)
    pq.write_table(a, tmp_path / "a.parquet")
    pq.write_table(a, tmp_path / "b.parquet", row_group_size=100)
    d = diff_tables(tmp_path / "a.parquet", tmp_path / "b.parquet", key="id")
    assert not d.has_changes
    assert d.rows.unchanged == 1000 and d.rows.changed == 0
    assert all(c.drift is None or c.drift.value == 0 for c in d.columns)


def test_rows_in_a_different_order_match_by_key() -> None:
    a = base_table(200)
    perm = np.random.default_rng(1).permutation(200)
    b = a.take(pa.array(perm))
    d = diff_tables(a, b, key="id")
    assert not d.rows.has_changes
    xs = b["x"].to_pylist()
    xs[0] = 99.0
    d = diff_tables(a, replace(b, "x", xs), key="id")
    assert d.rows.changed == 1
    assert d.changed_rows[0].key == {"id": int(perm[0])}
    assert d.changed_rows[0].row_a == int(perm[0]) and d.changed_rows[0].row_b == 0


def test_composite_string_key() -> None:
    a = pa.table({"country": ["de", "de", "fr", "fr"], "city": ["berlin", "bonn", "paris", "lyon"],
                  "pop": [3.6, 0.3, 2.1, 0.5]})
    b = pa.table({"city": ["bonn", "berlin", "paris", "nice"], "country": ["de", "de", "fr", "fr"],
                  "pop": [0.3, 3.7, 2.1, 0.3]})
    d = diff_tables(a, b, key=["country", "city"])
    assert (d.rows.added, d.rows.removed, d.rows.changed, d.rows.unchanged) == (1, 1, 1, 2)
    assert d.changed_rows[0].key == {"country": "de", "city": "berlin"}
    assert d.changed_rows[0].changes == {"pop": (3.6, 3.7)}
    assert d.schema.reordered


def test_null_keys_match_each_other() -> None:
    a = pa.table({"id": [1, None, 3], "v": [1, 2, 3]})
    b = pa.table({"id": [None, 1, 3], "v": [5, 1, 3]})
    d = diff_tables(a, b, key="id")
    assert (d.rows.changed, d.rows.unchanged, d.rows.added, d.rows.removed) == (1, 2, 0, 0)
    assert d.changed_rows[0].key == {"id": None}
    assert d.changed_rows[0].changes == {"v": (2, 5)}


def test_value_semantics_nulls_nan_and_signed_zero() -> None:
    a = pa.table({"id": [1, 2, 3, 4, 5], "x": [float("nan"), -0.0, None, 1.0, None], "s": ["a", None, "", "b", None]})
    b = pa.table({"id": [1, 2, 3, 4, 5], "x": [float("nan"), 0.0, None, None, 2.0], "s": ["a", None, "", "b", ""]})
    d = diff_tables(a, b, key="id")
    assert d.rows.changed == 2  # id 4: 1.0 -> null; id 5: null -> 2.0 and null -> ""
    assert d.rows.changed_by_column == {"x": 2, "s": 1}
    by_key = {r.key["id"]: r.changes for r in d.changed_rows}
    assert by_key[4] == {"x": (1.0, None)}
    assert by_key[5] == {"x": (None, 2.0), "s": (None, "")}


def test_many_batches_give_the_same_answer_as_one() -> None:
    rng = np.random.default_rng(5)
    n = 5000
    a = pa.table({"id": rng.permutation(n), "v": rng.integers(0, 3, n), "t": [f"t{i}" * (i % 5) for i in range(n)]})
    vs = a["v"].to_numpy().copy()
    changed = rng.choice(n, 300, replace=False)
    vs[changed] += 1
    b = replace(a, "v", vs.tolist()).take(pa.array(rng.permutation(n)))
    big = diff_tables(a, b, key="id", sample=20)
    small = diff_tables(a, b, key="id", sample=20, batch_size=7)
    assert big.rows == small.rows
    assert big.rows.changed == 300
    assert big.changed_rows == small.changed_rows
    assert [r.row_a for r in big.changed_rows] == sorted(changed.tolist())[:20]


# -- rows by content ---------------------------------------------------------------------------------


def test_content_diff_is_a_multiset() -> None:
    a = pa.table({"x": [1, 1, 1, 2, 3], "y": ["a", "a", "a", "b", "c"]})
    b = pa.table({"x": [3, 1, 4, 2], "y": ["c", "a", "d", "b"]})
    d = diff_tables(a, b)
    assert d.rows.mode == "content"
    assert (d.rows.removed, d.rows.added, d.rows.unchanged, d.rows.changed) == (2, 1, 3, 0)
    assert sorted(r.row for r in d.removed_rows) == [1, 2]  # the surplus copies of (1, "a")
    assert [r.values for r in d.added_rows] == [{"x": 4, "y": "d"}]


def test_content_diff_ignores_row_order() -> None:
    a = base_table(300)
    b = a.take(pa.array(np.random.default_rng(2).permutation(300)))
    assert not diff_tables(a, b).has_changes


# -- schema ------------------------------------------------------------------------------------------


def test_schema_changes_added_removed_retyped_reordered() -> None:
    a = pa.table({"id": pa.array([1, 2], pa.int32()), "a": [1.0, 2.0], "gone": ["x", "y"],
                  "n": pa.array([1, 2], pa.int16())})
    b = pa.table({"n": pa.array([1, 2], pa.int64()), "id": pa.array([1, 2], pa.int64()), "a": [1.0, 2.5],
                  "new": [True, False]})
    d = diff_tables(a, b, key="id")
    s = d.schema
    assert s.added == (("new", "bool"),)
    assert s.removed == (("gone", "string"),)
    assert {(r.name, r.type_a, r.type_b, r.compared_as) for r in s.retyped} == {
        ("id", "int32", "int64", "int64"), ("n", "int16", "int64", "int64")}
    assert s.reordered
    assert d.rows.compared_columns == ("a", "n")
    assert d.rows.changed == 1 and d.rows.changed_by_column == {"a": 1}


def test_csv_against_parquet_compares_values(tmp_path) -> None:
    a = pa.table({"id": pa.array([1, 2, 3], pa.int32()), "price": [1.5, 2.0, 3.25], "name": ["a", "b", "c"]})
    pq.write_table(a, tmp_path / "a.parquet")
    (tmp_path / "b.csv").write_text("id,price,name\n3,3.25,c\n1,1.5,a\n2,2.5,b\n")
    d = diff_tables(tmp_path / "a.parquet", tmp_path / "b.csv", key="id")
    assert d.a.format == "parquet" and d.b.format == "csv"
    assert [(r.name, r.compared_as) for r in d.schema.retyped] == [("id", "int64")]
    assert (d.rows.changed, d.rows.unchanged) == (1, 2)
    assert d.changed_rows[0].changes == {"price": (2.0, 2.5)}


def test_uncomparable_retype_is_reported_not_compared() -> None:
    a = pa.table({"id": [1, 2], "v": pa.array([[1], [2]], pa.list_(pa.int64()))})
    b = pa.table({"id": [1, 2], "v": pa.array([{"a": 1}, {"a": 2}], pa.struct([("a", pa.int64())]))})
    d = diff_tables(a, b, key="id")
    assert d.schema.not_comparable == ("v",)
    assert d.rows.compared_columns == ()
    assert d.column("v").a.distinct is None  # not hashed, so not counted
    assert any("not compared" in n for n in d.notes)


def test_nested_values_are_compared() -> None:
    a = pa.table({"id": [1, 2, 3], "tags": [["a", "b"], [], None]})
    b = pa.table({"id": [1, 2, 3], "tags": [["a", "b"], ["c"], None]})
    d = diff_tables(a, b, key="id")
    assert d.rows.changed == 1 and d.changed_rows[0].changes == {"tags": ([], ["c"])}


# -- formats -----------------------------------------------------------------------------------------


def test_arrow_ipc_file_stream_folder_and_csv_widening(tmp_path) -> None:
    a = base_table(50)
    with ipc.new_file(tmp_path / "a.arrow", a.schema) as w:
        w.write_table(a)
    with ipc.new_stream(tmp_path / "b.arrows", a.schema) as w:
        w.write_table(a)
    assert not diff_tables(tmp_path / "a.arrow", tmp_path / "b.arrows", key="id").has_changes
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(a.slice(0, 20), folder / "part-0.parquet")
    pq.write_table(a.slice(20), folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    d = diff_tables(tmp_path / "a.arrow", folder, key="id")
    assert d.b.format == "parquet" and d.b.rows == 50 and not d.rows.has_changes
    # a value far down that does not fit the type inferred from the first block
    lines = ["id,v"] + [f"{i},{i}" for i in range(200_000)] + ["200000,1.5"]
    (tmp_path / "w.csv").write_text("\n".join(lines) + "\n")
    d = diff_tables(tmp_path / "w.csv", tmp_path / "w.csv", key="id")
    assert d.a.rows == 200_001 and dict(d.a.columns)["v"] == "double"


def test_format_can_be_forced(tmp_path) -> None:
    (tmp_path / "a.data").write_text("id,v\n1,2\n")
    (tmp_path / "b.data").write_text("id,v\n1,3\n")
    with pytest.raises(UnreadableFile, match="unknown table format"):
        diff_tables(tmp_path / "a.data", tmp_path / "b.data")
    d = diff_tables(tmp_path / "a.data", tmp_path / "b.data", key="id", format="csv")
    assert d.rows.changed == 1
    with pytest.raises(InvalidInput, match="unknown table format 'xls'"):
        diff_tables(tmp_path / "a.data", tmp_path / "b.data", format="xls")


# -- bad input ---------------------------------------------------------------------------------------


def test_file_that_does_not_parse_names_file_and_reason(tmp_path) -> None:
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 this is not parquet at all")
    good = tmp_path / "good.parquet"
    pq.write_table(base_table(5), good)
    with pytest.raises(UnreadableFile) as err:
        diff_tables(good, bad, key="id")
    assert isinstance(err.value, InvalidInput) and isinstance(err.value, ValueError)
    assert str(bad) in str(err.value) and "parquet" in str(err.value)
    assert err.value.fields["file"] == str(bad) and err.value.fields["reason"]
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    with pytest.raises(UnreadableFile, match=r"ragged\.csv as csv: .*Expected 2 columns"):
        diff_tables(ragged, good)


def test_missing_path() -> None:
    with pytest.raises(InputNotFound) as err:
        diff_tables("/nonexistent/a.parquet", "/nonexistent/b.parquet")
    assert isinstance(err.value, NotFound)


def test_missing_key_column_lists_columns() -> None:
    a = base_table(5)
    b = a.drop_columns(["k"])
    with pytest.raises(KeyColumnMissing) as err:
        diff_tables(a, b, key=["id", "k"])
    msg = str(err.value)
    assert "'k'" in msg and "id, x, s" in msg
    assert err.value.fields["column"] == "k" and err.value.fields["columns"] == ["id", "x", "s"]
    with pytest.raises(KeyColumnMissing, match="'nope'.*id, x, k, s"):
        diff_tables(a, a, key="nope")


def test_duplicate_keys_say_how_many_and_show_some() -> None:
    a = base_table(10)
    b = pa.table({"id": [1, 2, 2, 3, 3, 3, 4], "x": [0.0] * 7, "k": [0] * 7, "s": ["a"] * 7})
    with pytest.raises(DuplicateKeys) as err:
        diff_tables(a, b, key="id")
    e = err.value
    assert e.fields["duplicates"] == 2 and e.fields["rows"] == 5
    assert "2 key value(s) occur more than once (5 rows)" in str(e)
    assert "id=3 x3" in str(e) and "id=2 x2" in str(e)
    assert {tuple(x["key"].values()) for x in e.fields["examples"]} == {(2,), (3,)}
    s = pa.table({"a": ["x", "x", "y"], "b": [1, 1, 1]})
    with pytest.raises(DuplicateKeys, match=r"key \(a, b\) is not unique.*\(a=x, b=1\) x2"):
        diff_tables(s, s, key=["a", "b"])


def test_bad_options() -> None:
    a = base_table(3)
    with pytest.raises(InvalidInput, match="sample"):
        diff_tables(a, a, sample=-1)
    with pytest.raises(InvalidInput, match="key"):
        diff_tables(a, a, key=["id", "id"])
    with pytest.raises(InvalidInput, match="path or a pyarrow.Table"):
        diff_tables(42, a)


def test_hash_collision_falls_back_to_an_exact_join(monkeypatch) -> None:
    """Two different keys with one hash must not pair up: the exact Arrow join takes over."""
    import mlark.diff.table.keyindex as keyindex
    import mlark.diff.table.match as match

    def collide(words, values):
        words = words.copy()
        for i, v in enumerate(values):
            if v in ("apple", "zebra"):
                words[i] = 42
        return words

    real_key_words, real_batch_words = match.key_words, keyindex.batch_key_words

    def key_words(keys):
        words, _ = real_key_words(keys)
        return collide(words, keys.column(0).to_pylist()), False

    def batch_key_words(index, columns):
        words, valid = real_batch_words(index, columns)
        return collide(words, columns[0].to_pylist()), valid

    monkeypatch.setattr(match, "key_words", key_words)
    monkeypatch.setattr("mlark.diff.table.keyed.batch_key_words", batch_key_words)
    calls = []
    real_exact = match.match_by_key_exact
    monkeypatch.setattr("mlark.diff.table.engine.match_by_key_exact",
                        lambda *a, **k: calls.append(1) or real_exact(*a, **k))
    a = pa.table({"name": ["apple", "pear"], "v": [1, 2]})
    b = pa.table({"name": ["zebra", "pear"], "v": [1, 3]})
    d = diff_tables(a, b, key="name")
    assert calls == [1]
    assert (d.rows.added, d.rows.removed, d.rows.changed, d.rows.unchanged) == (1, 1, 1, 0)
    assert [r.values["name"] for r in d.added_rows] == ["zebra"]
    assert [r.values["name"] for r in d.removed_rows] == ["apple"]
    assert d.changed_rows[0].changes == {"v": (2, 3)}


def test_null_key_in_the_new_table_only() -> None:
    a = pa.table({"id": [1, 2, 3], "v": [1, 2, 3]})
    b = pa.table({"id": [None, 3, 1, None], "v": [9, 3, 1, 8]})
    with pytest.raises(DuplicateKeys, match="id=null x2"):
        diff_tables(a, b, key="id")
    d = diff_tables(a, b.slice(0, 3), key="id")
    assert (d.rows.added, d.rows.removed, d.rows.unchanged) == (1, 1, 2)
    assert d.added_rows[0].values == {"id": None, "v": 9}


# -- statistics and drift ----------------------------------------------------------------------------


def test_column_statistics_side_by_side() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(10, 2, size=2000)
    x_b = x.copy()
    x_b[:100] = np.nan
    a = pa.table({"id": np.arange(2000), "x": x, "c": rng.choice(["a", "b", "c"], 2000, p=[0.5, 0.3, 0.2]),
                  "t": pa.array(np.arange(2000).astype("datetime64[s]"))})
    b = pa.table({"id": np.arange(2000), "x": pa.array(x_b, from_pandas=False),
                  "c": pa.array([None] * 10 + a["c"].to_pylist()[10:]), "t": a["t"]})
    d = diff_tables(a, b, key="id")
    cx = d.column("x")
    assert cx.a.kind == "numeric" and cx.a.distinct == 2000 and not cx.a.distinct_approx
    assert cx.a.mean == pytest.approx(x.mean()) and cx.a.std == pytest.approx(x.std())
    assert cx.a.min == pytest.approx(x.min()) and cx.a.max == pytest.approx(x.max())
    assert cx.b.nans == 100 and cx.b.mean == pytest.approx(x[100:].mean())
    cc = d.column("c")
    assert cc.a.kind == "categorical" and cc.a.distinct == 3 and cc.b.nulls == 10
    assert [v for v, _ in cc.a.top] == ["a", "b", "c"]
    assert sum(n for _, n in cc.a.top) == 2000
    ct = d.column("t")
    assert ct.a.kind == "temporal" and str(ct.a.min) == "1970-01-01 00:00:00" and ct.drift.value == 0
    assert d.rows.changed_by_column == {"x": 100, "c": 10}


def test_drift_scores() -> None:
    rng = np.random.default_rng(4)
    n = 20_000
    same = rng.normal(size=n)
    a = pa.table({"same": same, "shift": rng.normal(size=n), "cat": rng.choice(["a", "b"], n, p=[0.9, 0.1]),
                  "cat_same": rng.choice(["a", "b"], n)})
    b = pa.table({"same": same, "shift": rng.normal(1.0, 1.0, size=n), "cat": rng.choice(["a", "b"], n, p=[0.5, 0.5]),
                  "cat_same": a["cat_same"]})
    d = diff_tables(a, b, stats=True, sample_size=4000)
    same_d = d.column("same").drift
    assert same_d.value == 0 and same_d.ks == 0 and same_d.sampled  # same rows sampled on both sides
    shift = d.column("shift").drift
    assert shift.method == "psi" and shift.level == "major" and shift.value > 0.25
    assert 0.3 < shift.ks < 0.5  # KS of N(0,1) vs N(1,1) is about 0.38
    cat = d.column("cat").drift
    assert cat.level == "major" and cat.ks is None
    expected = (0.5 - 0.9) * math.log(0.5 / 0.9) + (0.5 - 0.1) * math.log(0.5 / 0.1)
    assert cat.value == pytest.approx(expected, abs=0.05)
    assert d.column("cat_same").drift.value == 0
    assert any("sample" in note for note in d.notes)


def test_high_cardinality_strings_get_no_categorical_drift() -> None:
    n = 30_000
    a = pa.table({"u": [f"user-{i}" for i in range(n)]})
    d = diff_tables(a, a)
    c = d.column("u")
    assert c.a.high_cardinality and c.a.top is None and c.drift is None
    assert c.a.distinct_approx and abs(c.a.distinct - n) < n * 0.03


def test_stats_can_be_skipped() -> None:
    d = diff_tables(base_table(10), base_table(10), key="id", stats=False)
    assert d.columns == () and not d.has_changes


# -- output ------------------------------------------------------------------------------------------


def make_diff():
    a = pa.table({"id": [1, 2, 3], "x": [1.0, float("nan"), 3.0], "s": ["a|b", "b", "c"]})
    b = pa.table({"id": [1, 2, 4], "x": [1.5, float("inf"), 4.0], "s": ["a|b", "b\nc", "d"], "extra": [1, 2, 3]})
    return diff_tables(a, b, key="id")


def test_to_dict_is_json_with_nan_and_inf_as_strings() -> None:
    d = make_diff()
    text = json.dumps(d.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["kind"] == "table" and data["rows"]["changed"] == 2
    changed = {r["key"]["id"]: r["changes"] for r in data["changed_rows"]}
    assert changed[2]["x"] == {"before": "NaN", "after": "Infinity"}
    assert data["schema"]["added"] == [{"name": "extra", "type": "int64"}]
    assert json.loads(d.to_json()) == data


def test_render_fits_the_width_and_markdown_escapes() -> None:
    d = make_diff()
    for width in (60, 100, 200):
        text = d.render(width=width)
        assert "Rows (matched by key id)" in text
        assert max(len(line) for line in text.splitlines()) <= width
    assert "changed" in str(d)
    md = d.to_markdown()
    assert "| change | columns |" in md and "a\\|b" in md
    assert "#### Changed rows" in md
    assert "b\\\\nc" in md  # a newline shown as \n, its backslash escaped for Markdown
    assert d.summary().startswith("table <table> -> <table>: 3 -> 3 rows")
