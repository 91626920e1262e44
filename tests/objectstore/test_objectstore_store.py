"""The object store over a real backend and a real chunk index (SQLite file or PostgreSQL)."""

from __future__ import annotations

import random
from pathlib import Path

import blake3
import pytest

from mlark.errors import IntegrityError
from mlark.meta.chunkindex import SqlChunkIndex
from mlark.meta.db import Database
from mlark.objectstore.chunker import ChunkParams
from mlark.objectstore.files import ingest_path, iter_file, store_bytes
from mlark.objectstore.index import FLAG_RAW, FLAG_ZSTD
from mlark.objectstore.pack import pack_key
from mlark.objectstore.store import ObjectStore
from mlark.storage import LocalBackend


def _digest(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def _commit(store: ObjectStore, chunks: list[bytes]):  # type: ignore[no-untyped-def]
    writer = store.writer()
    for c in chunks:
        writer.put(_digest(c), c)
    packs = writer.finish()
    store.index.add_packs(packs)
    return writer.stats, packs


def _pack_path(store: ObjectStore, pack: str) -> Path:
    return Path(store.backend.root) / pack_key(pack)  # type: ignore[attr-defined]


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x40]))


def test_same_chunk_twice_in_one_session_is_stored_once(store: ObjectStore) -> None:
    a = random.Random(1).randbytes(30_000)
    stats, packs = _commit(store, [a, a, a])
    assert (stats.chunks, stats.chunks_new) == (3, 1)
    assert stats.bytes == 90_000 and stats.bytes_new == 30_000
    assert len(packs) == 1 and len(packs[0].entries) == 1
    assert store.index.count() == 1
    assert store.read_chunk(_digest(a)) == a


def test_dedup_across_writer_sessions_and_store_instances(store: ObjectStore, db: Database, tmp_path: Path) -> None:
    rng = random.Random(2)
    a, b, c = rng.randbytes(20_000), rng.randbytes(20_000), rng.randbytes(20_000)
    _commit(store, [a, b])
    stats, packs = _commit(store, [b, a])
    assert stats.chunks_new == 0 and stats.bytes_stored == 0
    assert packs == []
    # A second store over the same index and folder (another process, say) dedups too.
    other = ObjectStore(LocalBackend(str(tmp_path / "store")), SqlChunkIndex(db), str(tmp_path / "tmp2"),
                        ChunkParams())
    stats, packs = _commit(other, [a, c, b])
    assert stats.chunks_new == 1
    assert [e.digest for p in packs for e in p.entries] == [_digest(c)]
    assert store.index.count() == 3
    assert len(list(store.pack_keys())) == 2
    assert list(store.read_chunks([_digest(c), _digest(a), _digest(b), _digest(a)])) == [c, a, b, a]


def test_scan_pack_reads_the_footer_back(store: ObjectStore) -> None:
    rng = random.Random(3)
    chunks = [rng.randbytes(1000), b"abc" * 10_000]
    _, packs = _commit(store, chunks)
    info = store.scan_pack(packs[0].digest)
    assert info.entries == packs[0].entries
    assert info.size == packs[0].size
    assert store.index.pack_digests() == {packs[0].digest}
    assert store.verify_pack(packs[0].digest).entries == packs[0].entries


def test_files_round_trip_through_the_store(store: ObjectStore, tmp_path: Path) -> None:
    data = random.Random(4).randbytes(1_500_000) + b"tail" * 1000
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    writer = store.writer()
    digest, size, chunks = ingest_path(store, writer, str(path))
    store.index.add_packs(writer.finish())
    assert digest == _digest(data) and size == len(data) and len(chunks) > 5
    assert b"".join(iter_file(store, chunks, digest, "big.bin")) == data
    # Storing the same bytes again stores nothing new.
    writer = store.writer()
    again = ingest_path(store, writer, str(path))
    assert again == (digest, size, chunks)
    assert writer.finish() == [] and writer.stats.bytes_new == 0


def test_store_bytes_of_an_empty_document(store: ObjectStore) -> None:
    writer = store.writer()
    digest, chunks = store_bytes(store, writer, b"")
    assert chunks == () and digest == _digest(b"")
    assert writer.finish() == []


@pytest.mark.parametrize("kind", ["raw", "zstd"])
def test_flipped_byte_in_a_pack_is_an_integrity_error_naming_chunk_and_pack(store: ObjectStore, kind: str) -> None:
    data = random.Random(5).randbytes(40_000) if kind == "raw" else b"row,value\n" * 4000
    _, packs = _commit(store, [data])
    loc = packs[0].entries[0]
    assert loc.flags == (FLAG_RAW if kind == "raw" else FLAG_ZSTD)
    _flip(_pack_path(store, loc.pack), loc.offset + loc.stored_len // 2)
    for read in (lambda: store.read_chunk(loc.digest), lambda: list(store.read_chunks([loc.digest]))):
        with pytest.raises(IntegrityError) as err:
            read()
        assert loc.digest in str(err.value) and loc.pack in str(err.value)
        assert err.value.fields["chunk"] == loc.digest
        assert err.value.fields["pack"] == loc.pack
    with pytest.raises(IntegrityError, match="does not match its name"):
        store.verify_pack(loc.pack)


def test_corrupt_file_content_is_never_returned(store: ObjectStore, tmp_path: Path) -> None:
    data = random.Random(6).randbytes(600_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    writer = store.writer()
    digest, _, chunks = ingest_path(store, writer, str(path))
    packs = writer.finish()
    store.index.add_packs(packs)
    loc = store.locate([chunks[2].digest])[chunks[2].digest]
    _flip(_pack_path(store, loc.pack), loc.offset + 10)
    got = bytearray()
    with pytest.raises(IntegrityError) as err:
        for part in iter_file(store, chunks, digest, "f"):
            got += part
    assert chunks[2].digest in str(err.value)
    # Only verified bytes came out: a prefix of the file that stops before the damaged chunk
    # (chunks read together in one run are released together, so it may stop earlier).
    assert data.startswith(bytes(got))
    assert len(got) <= chunks[0].size + chunks[1].size


def test_missing_pack_is_an_integrity_error(store: ObjectStore) -> None:
    _, packs = _commit(store, [b"some bytes"])
    loc = packs[0].entries[0]
    _pack_path(store, loc.pack).unlink()
    with pytest.raises(IntegrityError, match="missing") as err:
        store.read_chunk(loc.digest)
    assert err.value.fields == {"chunk": loc.digest, "pack": loc.pack}


def test_truncated_pack_is_an_integrity_error(store: ObjectStore) -> None:
    _, packs = _commit(store, [random.Random(7).randbytes(5000)])
    loc = packs[0].entries[0]
    path = _pack_path(store, loc.pack)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IntegrityError) as err:
        store.read_chunk(loc.digest)
    assert loc.digest in str(err.value) and loc.pack in str(err.value)
    with pytest.raises(IntegrityError):
        store.scan_pack(loc.pack)


def test_unindexed_chunk_is_an_integrity_error(store: ObjectStore) -> None:
    digest = _digest(b"never stored")
    with pytest.raises(IntegrityError, match="not in the chunk index") as err:
        store.read_chunk(digest)
    assert err.value.fields["chunk"] == digest
    with pytest.raises(IntegrityError, match="not in the chunk index"):
        list(store.read_chunks([digest]))


def test_index_can_be_rebuilt_from_pack_footers(store: ObjectStore) -> None:
    rng = random.Random(8)
    chunks = [rng.randbytes(3000) for _ in range(5)]
    _commit(store, chunks[:3])
    _commit(store, chunks[2:])
    before = sorted(store.index.iter_chunks(), key=lambda loc: loc.digest)
    store.index.replace_all([])
    assert store.index.count() == 0
    store.index.replace_all([store.scan_pack(d) for d, _ in store.pack_keys()])
    assert sorted(store.index.iter_chunks(), key=lambda loc: loc.digest) == before
    assert [store.read_chunk(_digest(c)) for c in chunks] == chunks


def test_aborted_writer_leaves_no_pack(store: ObjectStore, tmp_path: Path) -> None:
    writer = store.writer()
    writer.put(_digest(b"x" * 10), b"x" * 10)
    writer.flush_pending()
    writer.abort()
    assert list(store.pack_keys()) == []
    assert list((tmp_path / "tmp").iterdir()) == []
