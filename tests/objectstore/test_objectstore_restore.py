"""Restoring files from the object store (mlark.objectstore.restore and .sink).

Large files are written in whole aligned blocks, through the page cache or around it; the thresholds
are lowered here so that a few MiB exercise every path: runs split across packs, a last block padded
and cut, the chunk before a run decoded again for the run's first block, both write modes and the
measurement that chooses between them. Every test compares the bytes written with the original.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import random
import threading
import time
from pathlib import Path

import blake3
import pytest

from mlark.core.tree import ChunkRef
from mlark.errors import IntegrityError
from mlark.meta.chunkindex import SqlChunkIndex
from mlark.meta.db import Database
from mlark.objectstore import restore as restore_mod
from mlark.objectstore import sink as sink_mod
from mlark.objectstore import writer as writer_mod
from mlark.objectstore.chunker import ChunkParams
from mlark.objectstore.files import ingest_path
from mlark.objectstore.index import FLAG_RAW, FLAG_ZSTD
from mlark.objectstore.pack import pack_key
from mlark.objectstore.restore import Restorer
from mlark.objectstore.sink import ALIGN, BlockSink
from mlark.objectstore.store import ObjectStore
from mlark.storage.memory import MemoryBackend

MIB = 1 << 20


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Block writes from 1 MiB on, runs of 256 KiB, 512 KiB sampled each way, packs of 2 MiB."""
    monkeypatch.setattr(restore_mod, "BLOCK_MIN", MIB)
    monkeypatch.setattr(restore_mod, "RUN_BYTES", 256 << 10)
    monkeypatch.setattr(sink_mod, "SAMPLE_BYTES", 512 << 10)
    monkeypatch.setattr(writer_mod, "PACK_TARGET", 2 * MIB)


def _mixed(size: int, seed: int) -> bytes:
    """Random segments (stored raw) and text-like segments (stored zstd), not block-aligned."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        n = min(rng.randrange(20_000, 300_000), size - len(out))
        if rng.random() < 0.5:
            out += rng.randbytes(n)
        else:
            out += bytes(rng.choice(b"0123456789,.\n") for _ in range(n))
    return bytes(out)


def _ingest(store: ObjectStore, tmp_path: Path, data: bytes) -> tuple[ChunkRef, ...]:
    src = tmp_path / "source.bin"
    src.write_bytes(data)
    writer = store.writer()
    _digest, _size, chunks = ingest_path(store, writer, str(src))
    store.index.add_packs(writer.finish())
    return chunks


def _restore(store: ObjectStore, chunks: tuple[ChunkRef, ...], out: Path, **kw: object) -> tuple[int, Restorer]:
    with Restorer(store, **kw) as rs:  # type: ignore[arg-type]
        with open(out, "wb", buffering=0) as fh:
            n = rs.write_file(chunks, fh.fileno(), out.name)
    return n, rs


@pytest.mark.parametrize("io", ["auto", "buffered", "direct"])
def test_large_file_in_blocks_is_restored_exactly(store: ObjectStore, tmp_path: Path, small_blocks: None,
                                                  io: str) -> None:
    data = _mixed(6 * MIB + 1234, seed=1)
    chunks = _ingest(store, tmp_path, data)
    located = store.locate(c.digest for c in chunks)
    assert {loc.flags for loc in located.values()} == {FLAG_RAW, FLAG_ZSTD}
    assert len({loc.pack for loc in located.values()}) >= 2  # runs end at pack boundaries too
    out = tmp_path / "out.bin"
    n, rs = _restore(store, chunks, out, io=io)
    assert n == len(data)
    assert out.read_bytes() == data
    assert rs.io in (io, "direct")  # auto remembers a choice of direct writes for the next file


def test_block_sizes_at_the_edges(store: ObjectStore, tmp_path: Path, small_blocks: None) -> None:
    for size in (MIB, MIB + 1, 2 * MIB - 1, 3 * MIB + ALIGN):
        data = _mixed(size, seed=size)
        chunks = _ingest(store, tmp_path, data)
        out = tmp_path / f"out-{size}.bin"
        _restore(store, chunks, out, io="buffered")
        assert out.read_bytes() == data, size


def test_small_files_and_single_runs(store: ObjectStore, tmp_path: Path) -> None:
    for size in (0, 1, 5000, 200_000, 3 * MIB + 7):
        data = _mixed(size, seed=size) if size else b""
        chunks = _ingest(store, tmp_path, data) if size else ()
        out = tmp_path / f"small-{size}.bin"
        n, _ = _restore(store, chunks, out)
        assert n == size and out.read_bytes() == data


def test_chunks_smaller_than_a_block_fall_back_to_plain_writes(store: ObjectStore, tmp_path: Path,
                                                               small_blocks: None) -> None:
    # Not what the chunker makes, but a tree may list any chunks: 600 pieces of 3 KiB.
    rng = random.Random(7)
    pieces = [rng.randbytes(3000) for _ in range(600)]
    writer = store.writer()
    for p in pieces:
        writer.put(blake3.blake3(p).hexdigest(), p)
    store.index.add_packs(writer.finish())
    chunks = tuple(ChunkRef(blake3.blake3(p).hexdigest(), len(p)) for p in pieces)
    out = tmp_path / "pieces.bin"
    _restore(store, chunks, out, io="direct")
    assert out.read_bytes() == b"".join(pieces)


def test_without_memory_maps(db: Database, tmp_path: Path, small_blocks: None) -> None:
    store = ObjectStore(MemoryBackend(), SqlChunkIndex(db), str(tmp_path / "tmp"), ChunkParams())
    data = _mixed(3 * MIB, seed=3)
    chunks = _ingest(store, tmp_path, data)
    out = tmp_path / "out.bin"
    _restore(store, chunks, out)
    assert out.read_bytes() == data


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x40]))


@pytest.mark.parametrize("kind", [FLAG_RAW, FLAG_ZSTD], ids=["raw", "zstd"])
@pytest.mark.parametrize("io", ["buffered", "direct"])
def test_a_damaged_chunk_is_named_and_nothing_after_it_matters(store: ObjectStore, tmp_path: Path,
                                                               small_blocks: None, kind: int, io: str) -> None:
    data = _mixed(4 * MIB, seed=4)
    chunks = _ingest(store, tmp_path, data)
    located = store.locate(c.digest for c in chunks)
    victims = [located[c.digest] for c in chunks[1:-1] if located[c.digest].flags == kind]
    loc = victims[len(victims) // 2]
    _flip(Path(store.backend.root) / pack_key(loc.pack), loc.offset + loc.stored_len // 2)  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError) as caught:
        _restore(store, chunks, tmp_path / "out.bin", io=io)
    assert loc.digest in str(caught.value) and loc.pack in str(caught.value)
    assert caught.value.fields.get("chunk") == loc.digest and caught.value.fields.get("pack") == loc.pack


def test_a_failed_write_stops_the_restore_and_no_write_outlives_it(store: ObjectStore, tmp_path: Path,
                                                                 small_blocks: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs of a large file are written by writer threads: a write that fails (the disk is full) must
    # reach the caller, and every write must be over when write_file returns, since the caller then
    # closes the descriptor and removes the file.
    data = _mixed(6 * MIB, seed=6)
    chunks = _ingest(store, tmp_path, data)
    calls: list[int] = []
    real_write = BlockSink.write

    def failing(self: BlockSink, view: memoryview, offset: int) -> None:
        calls.append(offset)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        real_write(self, view, offset)

    monkeypatch.setattr(BlockSink, "write", failing)
    with pytest.raises(OSError, match="No space left"):
        _restore(store, chunks, tmp_path / "out.bin", io="direct")
    seen = len(calls)
    assert 5 <= seen < len(chunks)
    time.sleep(0.2)
    assert len(calls) == seen  # nothing was still queued to write after the error came back
    monkeypatch.setattr(BlockSink, "write", real_write)
    n, _ = _restore(store, chunks, tmp_path / "again.bin", io="direct")  # the restorer's buffers are reusable
    assert n == len(data) and (tmp_path / "again.bin").read_bytes() == data


def test_a_truncated_pack_is_named(store: ObjectStore, tmp_path: Path, small_blocks: None) -> None:
    data = _mixed(3 * MIB, seed=5)
    chunks = _ingest(store, tmp_path, data)
    pack = store.locate([chunks[-1].digest])[chunks[-1].digest].pack
    path = Path(store.backend.root) / pack_key(pack)  # type: ignore[attr-defined]
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(IntegrityError) as caught:
        _restore(store, chunks, tmp_path / "out.bin")
    assert pack in str(caught.value)


def test_io_mode_is_checked(store: ObjectStore) -> None:
    with pytest.raises(ValueError):
        Restorer(store, io="fast")


def test_block_sink_measures_then_chooses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sink_mod, "SAMPLE_BYTES", 4 * ALIGN)
    block = mmap.mmap(-1, 2 * ALIGN)
    size = 40 * ALIGN - 100
    with open(tmp_path / "sink.bin", "wb", buffering=0) as fh:
        sink = BlockSink(fh.fileno(), size)
        for i in range(20):
            block[:] = bytes([i]) * (2 * ALIGN)
            sink.write(memoryview(block), i * 2 * ALIGN)
        assert sink.chosen in ("buffered", "direct")
        sink.close()
    got = (tmp_path / "sink.bin").read_bytes()
    assert len(got) == size
    assert got == b"".join(bytes([i]) * (2 * ALIGN) for i in range(20))[:size]
    block.close()


class _FakeDisk:
    """Stands in for pwrite_all: advances a fake clock by bytes / rate, by the fd's O_DIRECT flag."""

    def __init__(self, buffered: list[tuple[int, float]], direct: float) -> None:
        self.now = 0.0
        self.buffered = buffered  # (bytes written buffered so far below which, rate)
        self.direct = direct
        self.written = {"buffered": 0, "direct": 0}

    def clock(self) -> float:
        return self.now

    def pwrite_all(self, fd: int, pieces: list[memoryview], offset: int) -> None:
        n = sum(len(p) for p in pieces)
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            rate = self.direct
            self.written["direct"] += n
        else:
            done = self.written["buffered"]
            rate = next(r for limit, r in self.buffered if done < limit)
            self.written["buffered"] += n
        self.now += n / rate


@pytest.mark.parametrize(
    "buffered, direct, expect",
    [
        ([(1 << 62, 3e9)], 0.2e9, "buffered"),  # a slow disk: the page cache is far faster
        ([(1 << 62, 0.4e9)], 1.5e9, "direct"),  # costly fresh memory: around the page cache
        ([(1 << 62, 1.5e9)], 1.0e9, "direct"),  # near a tie: the predictable way
        ([(48 << 20, 3e9), (1 << 62, 0.3e9)], 1.0e9, "direct"),  # cheap memory at first, then not
    ],
    ids=["slow-disk", "costly-memory", "tie", "turns-slow"],
)
def test_block_sink_chooses_by_measurement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           buffered: list[tuple[int, float]], direct: float,
                                           expect: str) -> None:
    disk = _FakeDisk(buffered, direct)
    monkeypatch.setattr(sink_mod, "pwrite_all", disk.pwrite_all)
    monkeypatch.setattr(sink_mod, "_clock", disk.clock)
    block = mmap.mmap(-1, MIB)
    with open(tmp_path / "sink.bin", "wb", buffering=0) as fh:
        if not sink_mod.direct_works(fh.fileno()):
            pytest.skip("this file system takes no direct writes")
        sink = BlockSink(fh.fileno(), 256 * MIB)
        for i in range(256):
            sink.write(memoryview(block), i * MIB)
        assert sink.chosen == expect
        sink.close()
    block.close()
    assert disk.written["buffered"] >= sink_mod.SAMPLE_BYTES and disk.written["direct"] >= (
        sink_mod.SAMPLE_BYTES if expect == "direct" else 0
    )


def test_buffered_writes_go_one_at_a_time_in_small_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pieces: list[int] = []
    inside = [0, 0]  # now, most at once
    guard = threading.Lock()
    real = sink_mod.pwrite_all

    def recording(fd: int, views: list[memoryview], offset: int) -> None:
        with guard:
            inside[0] += 1
            inside[1] = max(inside[1], inside[0])
            pieces.extend(len(v) for v in views)
        time.sleep(0.0005)
        real(fd, views, offset)
        with guard:
            inside[0] -= 1

    monkeypatch.setattr(sink_mod, "pwrite_all", recording)
    blocks = [mmap.mmap(-1, MIB) for _ in range(8)]
    for i, b in enumerate(blocks):
        b[:] = bytes([i + 1]) * MIB
    with open(tmp_path / "sink.bin", "wb", buffering=0) as fh:
        sink = BlockSink(fh.fileno(), 8 * MIB, mode="buffered")
        threads = [threading.Thread(target=sink.write, args=(memoryview(b), i * MIB)) for i, b in enumerate(blocks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sink.close()
    assert (tmp_path / "sink.bin").read_bytes() == b"".join(bytes([i + 1]) * MIB for i in range(8))
    assert max(pieces) <= sink_mod.BUFFERED_PIECE and sum(pieces) == 8 * MIB
    assert inside[1] == 1  # never two buffered writes at once


def test_concurrent_direct_writes_count_their_time_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rates are bytes over busy time: two 4 MiB writes under way together for one second are 8 MiB/s.
    now = [0.0]
    monkeypatch.setattr(sink_mod, "_clock", lambda: now[0])
    with open(tmp_path / "sink.bin", "wb", buffering=0) as fh:
        sink = BlockSink(fh.fileno(), 64 * MIB, mode="buffered")  # no sampling; drive the clock by hand
        sink._phase = sink_mod._SAMPLE_DIRECT  # type: ignore[attr-defined]
        sink._direct = True  # type: ignore[attr-defined]
        sink._rate_buffered = 1.0  # type: ignore[attr-defined]
        sink._enter("direct")  # type: ignore[attr-defined]
        sink._enter("direct")  # type: ignore[attr-defined]
        now[0] = 1.0
        sink._leave("direct", 4 * MIB)  # type: ignore[attr-defined]
        sink._leave("direct", 4 * MIB)  # type: ignore[attr-defined]
        assert sink._rate_direct == pytest.approx(8 * MIB)  # type: ignore[attr-defined]
        sink._phase = sink_mod._FINAL  # type: ignore[attr-defined]
        sink._direct = False  # type: ignore[attr-defined]
        sink.close()
