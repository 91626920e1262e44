"""SqlChunkIndex: the chunk index on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from typing import Any, Iterator

import pytest
from sqlalchemy import func, select

from mlark.meta import chunkindex as chunkindex_module
from mlark.meta.chunkindex import SqlChunkIndex
from mlark.meta.db import Database
from mlark.meta.schema import packs as packs_table
from mlark.objectstore.index import FLAG_RAW, FLAG_ZSTD, ChunkIndex, ChunkLocation, PackInfo


def digest(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def make_pack(name: str, chunk_labels: list[str]) -> PackInfo:
    pack = digest(f"pack:{name}")
    entries = []
    offset = 8
    for i, label in enumerate(chunk_labels):
        stored = 100 + i
        entries.append(
            ChunkLocation(
                digest=digest(label),
                pack=pack,
                offset=offset,
                stored_len=stored,
                raw_len=stored * 2,
                flags=FLAG_ZSTD if i % 2 else FLAG_RAW,
            )
        )
        offset += stored
    return PackInfo(digest=pack, size=offset + 49 * len(entries) + 44, entries=tuple(entries))


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database.open(database_url, create=True)
    yield database
    database.close()


@pytest.fixture
def index(db: Database) -> SqlChunkIndex:
    return SqlChunkIndex(db)


def test_satisfies_the_protocol(index: SqlChunkIndex) -> None:
    port: ChunkIndex = index  # checked by type checkers
    for name in ("lookup", "add_packs", "remove_packs", "replace_all", "pack_digests", "iter_chunks", "count"):
        assert callable(getattr(port, name))


def test_empty_index(index: SqlChunkIndex) -> None:
    assert index.count() == 0
    assert index.pack_digests() == set()
    assert list(index.iter_chunks()) == []
    assert index.lookup([]) == {}
    assert index.lookup([digest("nothing")]) == {}
    index.add_packs([])
    index.remove_packs([])
    index.remove_packs([digest("no such pack")])


def test_add_and_lookup(index: SqlChunkIndex) -> None:
    a = make_pack("a", ["1", "2", "3"])
    b = make_pack("b", ["4", "5"])
    index.add_packs([a, b])
    assert index.count() == 5
    assert index.pack_digests() == {a.digest, b.digest}
    found = index.lookup([digest("2"), digest("5"), digest("unknown"), digest("2")])
    assert found == {digest("2"): a.entries[1], digest("5"): b.entries[1]}
    loc = found[digest("2")]
    assert (loc.pack, loc.offset, loc.stored_len, loc.raw_len, loc.flags) == (a.digest, 108, 101, 202, FLAG_ZSTD)


def test_pack_rows_record_size_and_chunk_count(db: Database, index: SqlChunkIndex) -> None:
    a = make_pack("a", ["1", "2", "3"])
    index.add_packs([a])
    row = db.run_read(lambda conn: conn.execute(select(packs_table)).one())
    assert (row.digest, row.size, row.chunk_count) == (a.digest, a.size, 3)
    assert row.created_at.tzinfo is not None


def test_a_chunk_already_indexed_keeps_its_location(index: SqlChunkIndex) -> None:
    a = make_pack("a", ["1", "2"])
    b = make_pack("b", ["2", "3"])  # repeats chunk 2
    index.add_packs([a])
    index.add_packs([b])
    assert index.lookup([digest("2")])[digest("2")] == a.entries[1]
    assert index.lookup([digest("3")])[digest("3")].pack == b.digest
    assert index.count() == 3
    assert index.pack_digests() == {a.digest, b.digest}


def test_within_one_call_the_first_pack_wins(index: SqlChunkIndex) -> None:
    a = make_pack("a", ["x", "y"])
    b = make_pack("b", ["y", "z"])
    index.add_packs([a, b])
    assert index.lookup([digest("y")])[digest("y")].pack == a.digest
    assert index.count() == 3


def test_adding_the_same_pack_twice_is_a_no_op(index: SqlChunkIndex) -> None:
    a = make_pack("a", ["1", "2"])
    index.add_packs([a])
    index.add_packs([a])
    index.add_packs(iter([a, a]))
    assert index.count() == 2
    assert index.pack_digests() == {a.digest}


def test_an_entry_naming_another_pack_is_refused(index: SqlChunkIndex) -> None:
    a = make_pack("a", ["1"])
    wrong = PackInfo(digest=digest("pack:other"), size=a.size, entries=a.entries)
    with pytest.raises(ValueError, match="lives in"):
        index.add_packs([wrong])
    assert index.count() == 0


def test_remove_packs(index: SqlChunkIndex) -> None:
    a = make_pack("a", ["1", "2"])
    b = make_pack("b", ["3"])
    c = make_pack("c", ["4", "5"])
    index.add_packs([a, b, c])
    index.remove_packs([a.digest, c.digest, digest("pack:unknown")])
    assert index.pack_digests() == {b.digest}
    assert index.count() == 1
    assert set(index.lookup([digest(x) for x in "12345"])) == {digest("3")}


def test_replace_all(index: SqlChunkIndex) -> None:
    index.add_packs([make_pack("a", ["1", "2"]), make_pack("b", ["3"])])
    c = make_pack("c", ["2", "9"])
    index.replace_all(iter([c]))
    assert index.pack_digests() == {c.digest}
    assert [loc.digest for loc in index.iter_chunks()] == sorted([digest("2"), digest("9")])
    assert index.lookup([digest("2")])[digest("2")].pack == c.digest  # moved: the old index is gone
    index.replace_all([])
    assert index.count() == 0 and index.pack_digests() == set()


def test_replace_all_is_one_transaction(index: SqlChunkIndex) -> None:
    a = make_pack("a", ["1"])
    index.add_packs([a])
    bad = PackInfo(digest=digest("pack:bad"), size=1, entries=make_pack("x", ["2"]).entries)
    with pytest.raises(ValueError):
        index.replace_all([make_pack("b", ["3"]), bad])
    # nothing changed: the delete was rolled back with the failed insert
    assert index.pack_digests() == {a.digest}
    assert index.count() == 1


def test_lookup_of_thousands_of_digests(index: SqlChunkIndex) -> None:
    labels = [f"chunk-{i}" for i in range(2600)]
    packs = [make_pack(f"p{n}", labels[n * 650 : (n + 1) * 650]) for n in range(4)]
    index.add_packs(packs)
    assert index.count() == 2600
    wanted = [digest(label) for label in labels] + [digest(f"absent-{i}") for i in range(900)]
    found = index.lookup(reversed(wanted))
    assert len(found) == 2600
    assert found[digest("chunk-1234")] == packs[1].entries[1234 - 650]
    assert all(k == v.digest for k, v in found.items())


def test_iter_chunks_pages_through_everything(index: SqlChunkIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunkindex_module, "ITER_PAGE", 7)
    packs = [make_pack(f"p{n}", [f"c{n}-{i}" for i in range(10)]) for n in range(3)]
    index.add_packs(packs)
    listed = list(index.iter_chunks())
    assert len(listed) == 30
    assert [loc.digest for loc in listed] == sorted(e.digest for p in packs for e in p.entries)
    assert set(listed) == {e for p in packs for e in p.entries}


def test_add_packs_in_joins_the_callers_transaction(db: Database, index: SqlChunkIndex) -> None:
    a = make_pack("a", ["1", "2"])

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        with db.write() as conn:
            index.add_packs_in(conn, [a])
            assert set(index.lookup_in(conn, [digest("1")])) == {digest("1")}
            raise Abort
    assert index.count() == 0 and index.pack_digests() == set()

    def commit_version(conn: Any) -> None:
        index.add_packs_in(conn, [a])
        conn.execute(select(func.count()).select_from(packs_table))  # the caller's own work

    db.run_write(commit_version)
    assert index.count() == 2


def test_remove_packs_in_joins_the_callers_transaction(db: Database, index: SqlChunkIndex) -> None:
    old = make_pack("old", ["1", "2", "3"])
    index.add_packs([old])
    new = make_pack("new", ["1", "2"])  # gc rewrote the pack without chunk 3

    def switch(conn: Any) -> None:
        index.remove_packs_in(conn, [old.digest])
        index.add_packs_in(conn, [new])

    db.run_write(switch)
    assert index.pack_digests() == {new.digest}
    assert {loc.pack for loc in index.iter_chunks()} == {new.digest}
    assert index.count() == 2
