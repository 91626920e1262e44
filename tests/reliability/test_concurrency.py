"""Several `mlark add` processes on one repository at once, on SQLite and PostgreSQL, with and without gc.

Every worker imports everything first and then waits for a start file, so the adds really overlap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import blake3
import pytest

from mlark.ops.repo import Repo
from rel_support import (
    MIB,
    WORKER,
    assert_fsck_clean,
    cli_env,
    folder_manifest,
    no_traceback,
    version_manifest,
    write_parts,
)

WORKERS = 6


def _random(seed: bytes, size: int) -> bytes:
    return blake3.blake3(seed).digest(length=size)


@dataclass
class Result:
    label: str
    returncode: int
    stdout: str
    stderr: str


class Barrier:
    """Start processes that wait on a file; release them together; collect their results."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / f"barrier-{time.monotonic_ns()}"
        self.dir.mkdir()
        self.go = self.dir / "go"
        self.procs: list[tuple[str, subprocess.Popen[str], Path]] = []

    def start(self, label: str, mode: str, *args: str) -> None:
        ready = self.dir / f"ready-{len(self.procs)}"
        proc = subprocess.Popen([sys.executable, str(WORKER), mode, str(self.go), str(ready), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
        self.procs.append((label, proc, ready))

    def release(self) -> None:
        deadline = time.monotonic() + 120
        for label, proc, ready in self.procs:
            while not ready.exists():
                if proc.poll() is not None:
                    raise AssertionError(f"{label} exited before the start signal: {proc.communicate()}")
                assert time.monotonic() < deadline, f"{label} never got ready"
                time.sleep(0.01)
        self.go.touch()

    def wait(self, timeout: float = 180) -> list[Result]:
        results = []
        for label, proc, _ in self.procs:
            out, err = proc.communicate(timeout=timeout)
            results.append(Result(label, proc.returncode, out, err))
        return results


def _assert_all_ok(results: list[Result]) -> None:
    for r in results:
        assert r.returncode == 0, f"{r.label} exited {r.returncode}:\n{r.stderr}"
        assert "database is locked" not in r.stderr.lower(), f"{r.label}: {r.stderr}"
        no_traceback(r.stderr)


def _add_args(root: Path, folder: Path, name: str, message: str) -> list[str]:
    return ["--", "--repo", str(root), "add", str(folder), "--name", name, "-m", message, "--json"]


def _make_folder(folder: Path, common: bytes, unique_seed: bytes) -> dict[str, tuple[int, str]]:
    """A shared file (all workers store the same chunks at once) plus content of its own."""
    write_parts(folder / "common.bin", [common])
    write_parts(folder / "own" / "unique.bin", [_random(unique_seed, 6 * MIB)])
    write_parts(folder / "own" / "small.txt", [b"worker " + unique_seed + b"\n"])
    return folder_manifest(folder)


@pytest.fixture
def repo_root(database_url: str, tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    Repo.init(root, database=database_url).close()
    return root


def _check_versions(root: Path, name: str, expected: list[dict[str, tuple[int, str]]]) -> None:
    """Numbers are 1..n, unique; each version reads back as exactly one of the expected folders."""
    with Repo.open(root) as repo:
        history = repo.history(name)
        numbers = sorted(v.number for v in history)
        assert numbers == list(range(1, len(expected) + 1)), f"{name}: numbers {numbers}"
        seen = []
        for v in history:
            got = version_manifest(repo, v.ref)
            assert got in expected, f"{v.ref} reads back as none of the added folders"
            seen.append(got)
        assert sorted(map(sorted, map(dict.items, seen))) == sorted(map(sorted, map(dict.items, expected)))
        assert repo.resolve(name).number == len(expected)


def test_concurrent_adds_of_different_artifacts(repo_root: Path, tmp_path: Path) -> None:
    common = _random(b"common", 4 * MIB)
    barrier = Barrier(tmp_path)
    expected = {}
    for i in range(WORKERS):
        folder = tmp_path / f"art-{i}"
        expected[f"art-{i}"] = _make_folder(folder, common, b"art-%d" % i)
        barrier.start(f"add art-{i}", "cli", *_add_args(repo_root, folder, f"art-{i}", f"import shard {i}"))
    barrier.release()
    results = barrier.wait()
    _assert_all_ok(results)
    for r in results:
        doc = json.loads(r.stdout)
        assert doc["created"] is True and doc["version"]["number"] == 1, r.stdout
    for name, manifest in expected.items():
        _check_versions(repo_root, name, [manifest])
    assert_fsck_clean(repo_root)


def test_concurrent_adds_of_one_artifact_with_different_content(repo_root: Path, tmp_path: Path) -> None:
    common = _random(b"common", 4 * MIB)
    barrier = Barrier(tmp_path)
    expected = []
    for i in range(WORKERS):
        folder = tmp_path / f"take-{i}"
        expected.append(_make_folder(folder, common, b"take-%d" % i))
        barrier.start(f"add take-{i}", "cli", *_add_args(repo_root, folder, "shared", f"candidate split {i}"))
    barrier.release()
    results = barrier.wait()
    _assert_all_ok(results)
    numbers = sorted(json.loads(r.stdout)["version"]["number"] for r in results)
    assert numbers == list(range(1, WORKERS + 1)), numbers
    assert all(json.loads(r.stdout)["created"] for r in results)
    _check_versions(repo_root, "shared", expected)
    with Repo.open(repo_root) as repo:
        log = repo.alias_log("shared", "latest")
        assert len(log) == WORKERS  # every version moved latest exactly once
    assert_fsck_clean(repo_root)


def test_concurrent_adds_of_identical_content(repo_root: Path, tmp_path: Path) -> None:
    common = _random(b"common", 4 * MIB)
    barrier = Barrier(tmp_path)
    manifest = {}
    for i in range(WORKERS):
        folder = tmp_path / f"copy-{i}"  # different folders, same bytes
        manifest = _make_folder(folder, common, b"identical")
        barrier.start(f"add copy-{i}", "cli", *_add_args(repo_root, folder, "same", "the one export"))
    barrier.release()
    results = barrier.wait()
    _assert_all_ok(results)
    docs = [json.loads(r.stdout) for r in results]
    assert [d["created"] for d in docs].count(True) == 1, docs
    assert {d["version"]["number"] for d in docs} == {1}
    assert len({d["version"]["digest"] for d in docs}) == 1
    _check_versions(repo_root, "same", [manifest])
    assert_fsck_clean(repo_root)


def test_gc_running_during_adds_breaks_nothing(repo_root: Path, tmp_path: Path) -> None:
    common = _random(b"common", 4 * MIB)
    # Garbage for gc to work on: a removed version whose chunks the new adds share, and an unindexed pack.
    old = tmp_path / "old"
    _make_folder(old, common, b"old-1")
    with Repo.open(repo_root) as repo:
        repo.add(old, name="old", message="first cut of the old export")
        write_parts(old / "own" / "unique.bin", [_random(b"old-2", 6 * MIB)])
        kept = repo.add(old, name="old", message="second cut of the old export")
        repo.rm("old:v1", message="superseded by v2")
        writer = repo.store.writer()
        stray = os.urandom(300_000)
        writer.put(blake3.blake3(stray).hexdigest(), stray)
        assert len(writer.finish()) == 1  # sealed, never indexed: like an add killed before its commit
    kept_manifest = folder_manifest(old)

    barrier = Barrier(tmp_path)
    stop = tmp_path / "stop-gc"
    barrier.start("gc loop", "gcloop", str(stop), str(repo_root))
    expected: dict[str, list[dict[str, tuple[int, str]]]] = {"mixed": []}
    for i in range(WORKERS):
        folder = tmp_path / f"w-{i}"
        if i % 2:
            manifest = _make_folder(folder, common, b"mixed-%d" % i)
            expected["mixed"].append(manifest)
            barrier.start(f"add mixed {i}", "cli", *_add_args(repo_root, folder, "mixed", f"mixed batch {i}"))
        else:
            # Shares its unique file with the removed old:v1, whose chunks gc is trying to delete.
            manifest = _make_folder(folder, common, b"old-1")
            write_parts(folder / "own" / "tag.txt", [b"%d\n" % i])
            expected[f"solo-{i}"] = [folder_manifest(folder)]
            barrier.start(f"add solo-{i}", "cli", *_add_args(repo_root, folder, f"solo-{i}", f"revive {i}"))
    barrier.release()
    adds = barrier.procs[1:]
    add_results = []
    for label, proc, _ in adds:
        out, err = proc.communicate(timeout=180)
        add_results.append(Result(label, proc.returncode, out, err))
    stop.touch()
    label, gc_proc, _ = barrier.procs[0]
    out, err = gc_proc.communicate(timeout=180)
    assert gc_proc.returncode == 0, f"gc loop failed:\n{err}"
    runs = json.loads(out)
    assert len(runs) >= 1 and all(r["live_chunks"] > 0 for r in runs)
    assert sum(r["unindexed_packs_deleted"] for r in runs) >= 1
    _assert_all_ok(add_results)

    for name, manifests in expected.items():
        _check_versions(repo_root, name, manifests)
    with Repo.open(repo_root) as repo:
        assert version_manifest(repo, kept.ref) == kept_manifest
        final = repo.gc()
        assert final.unindexed_packs_deleted == 0
    for name, manifests in expected.items():
        _check_versions(repo_root, name, manifests)
    assert_fsck_clean(repo_root)
