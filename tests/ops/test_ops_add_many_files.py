"""Adding folders of many small files: the fast path (one read per file), the stat cache, progress.

Small files are read with one system call each and their chunks compressed in batches; these tests
hold that path to the same results as the general one: identical trees and bytes, the same refusal
of a file that changes while it is added, and a stat cache that only ever saves reading.
"""

from __future__ import annotations

import gc
import os
import random
import time
from pathlib import Path

import pytest

from mlark.errors import InvalidInput
from mlark.objectstore import pack as pack_mod
from mlark.ops import add as add_mod
from mlark.core.gcpause import gc_paused
from mlark.ops.repo import Repo
from mlark.ops.scan import PlannedFile, scan


def _shards(root: Path, count: int, seed: int = 1) -> dict[str, bytes]:
    rng = random.Random(seed)
    root.mkdir(parents=True)
    files = {}
    for i in range(count):
        if i % 3 == 0:
            data = rng.randbytes(rng.randrange(1, 9000))  # stored raw
        else:
            data = b"".join(b"%d,%d\n" % (rng.randrange(10**6), i) for _ in range(rng.randrange(1, 400)))  # zstd
        name = f"part-{i:04d}.csv"
        (root / name).write_bytes(data)
        files[name] = data
    (root / "empty.txt").write_bytes(b"")
    files["empty.txt"] = b""
    (root / "large.bin").write_bytes(rng.randbytes(300_000))  # above the small-file limit: cut by CDC
    files["large.bin"] = (root / "large.bin").read_bytes()
    return files


def test_many_small_files_round_trip(repo: Repo, tmp_path: Path) -> None:
    files = _shards(tmp_path / "shards", 600)
    outcome = repo.add_outcome(tmp_path / "shards", name="shards", message="600 generated shards")
    assert outcome.created and outcome.version.file_count == len(files)
    assert outcome.stats.chunks_new >= 600
    out = repo.get("shards", to=tmp_path / "out")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    assert repo.fsck().ok
    # The same folder read through the general path (one stream per file) makes the same version.
    monkey = pytest.MonkeyPatch()
    monkey.setattr(add_mod, "ingest_small", lambda *a, **k: None)
    try:
        (tmp_path / "again").mkdir()
        again = Repo.open(repo.root)
        try:
            copy = tmp_path / "again" / "shards"
            copy.mkdir()
            for name, data in files.items():
                (copy / name).write_bytes(data)
            v = again.add(copy, name="shards-general", message="the same shards through the stream path")
        finally:
            again.close()
    finally:
        monkey.undo()
    assert v.digest == outcome.version.digest


def test_compression_without_the_batch_call(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A zstd binding without multi_compress_to_buffer: each chunk compressed on its own, same bytes back.
    files = _shards(tmp_path / "shards", 50, seed=2)
    real = pack_mod.zstandard.ZstdCompressor

    class Plain:
        def __init__(self, level: int) -> None:
            self._c = real(level=level)

        def compress(self, data: bytes) -> bytes:
            return self._c.compress(data)

    monkeypatch.setattr(pack_mod.zstandard, "ZstdCompressor", Plain)
    repo.add(tmp_path / "shards", name="shards", message="50 shards, one compress call per chunk")
    out = repo.get("shards", to=tmp_path / "out")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files


@pytest.mark.parametrize("change", ["grew", "shrank"])
def test_a_file_that_changes_while_added_is_refused(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    change: str) -> None:
    _shards(tmp_path / "shards", 20, seed=3)
    victim = tmp_path / "shards" / "part-0005.csv"
    real_scan = scan

    def scan_then_change(path: str | os.PathLike[str]):  # type: ignore[no-untyped-def]
        plan = real_scan(path)
        with open(victim, "ab" if change == "grew" else "r+b") as fh:
            if change == "grew":
                fh.write(b"more rows\n")
            else:
                fh.truncate(1)
        return plan

    monkeypatch.setattr(add_mod, "scan", scan_then_change)
    with pytest.raises(InvalidInput, match="changed size"):
        repo.add(tmp_path / "shards", name="shards", message="shards, one of them changing")
    assert repo.artifacts() == []


def test_the_stat_cache_saves_reading_and_nothing_else(repo: Repo, tmp_path: Path) -> None:
    files = _shards(tmp_path / "shards", 300, seed=4)
    time.sleep(0.1)  # older than the "racily clean" window, so the cache may trust what it records
    first = repo.add_outcome(tmp_path / "shards", name="shards", message="300 shards, first add")
    assert first.cached_files == 0
    repo2 = Repo.open(repo.root)
    try:
        second = repo2.add_outcome(tmp_path / "shards", name="shards", message="300 shards, unchanged")
        assert not second.created and second.version.digest == first.version.digest
        assert second.cached_files == len(files)
        (tmp_path / "shards" / "part-0007.csv").write_bytes(b"edited\n")
        files["part-0007.csv"] = b"edited\n"
        third = repo2.add_outcome(tmp_path / "shards", name="shards", message="part 7 edited by hand")
        assert third.created and third.cached_files == len(files) - 1
        assert third.stats.bytes_new == len(b"edited\n") + len(repo2.tree(third.version).encode())
        out = repo2.get("shards", to=tmp_path / "out")
        assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    finally:
        repo2.close()


def test_stat_cache_get_many_agrees_with_get(repo: Repo, tmp_path: Path) -> None:
    _shards(tmp_path / "shards", 40, seed=5)
    repo.add(tmp_path / "shards", name="shards", message="40 shards for the stat cache")
    cache = repo.stat_cache
    plan = scan(tmp_path / "shards")
    stale = plan.files[3]
    moved = PlannedFile(stale.path, stale.abspath, stale.size, stale.mode, stale.mtime_ns + 1, stale.ino,
                        stale.ctime_ns)
    files = [f for f in plan.files if f is not stale] + [moved]
    many = cache.get_many(files)
    for f in files:
        one = cache.get(f)
        assert many.get(f.abspath) == one, f.path
    assert moved.abspath not in many


def test_gc_pause_restores_the_collector() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()
