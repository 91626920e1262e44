"""Crash safety: `mlark add` killed with SIGKILL at random moments never leaves a broken repository.

docs/format.md, section 7: packs, then one transaction for index + version + refs. A kill at any
moment must leave either no trace in the history (only unindexed packs, which `gc` removes) or a
complete version; earlier versions must stay byte-identical, and fsck must find no errors.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import blake3

from mlark.ops.repo import Repo
from rel_support import (
    MIB,
    assert_fsck_clean,
    cli_env,
    folder_manifest,
    mlark_bin,
    run_cli,
    pack_files,
    unindexed_pack_digests,
    version_manifest,
    write_parts,
)

# Data layout of the folder whose add gets killed (about 190 MiB):
#   shared/  copies of ds:v2's files + 112 MiB cut from a fixed block pool: deduplicated after the first add
#   fresh/   3 x 24 MiB of new random bytes per attempt: always new chunks, three new packs
POOL_BLOCKS = 8
SHARED_FILES = 4
SHARED_BLOCKS_PER_FILE = 28
FRESH_FILES = 3
FRESH_MIB_PER_FILE = 24
GC_EVERY = 3
TARGETED = {1: "temp pack", 2: "sealed pack"}  # attempt -> moment to kill at; the others are random


class Scene:
    """A repository with a small artifact `ds` (v1, v2) and a big one whose adds get killed."""

    def __init__(self, tmp_path: Path, database: str | None, seed: int) -> None:
        self.tmp = tmp_path
        self.rng = random.Random(seed)
        self.root = tmp_path / "proj"
        Repo.init(self.root, database=database).close()
        self.pool = [self.rng.randbytes(MIB) for _ in range(POOL_BLOCKS)]
        # Expected content of every version that may appear: {ref: manifest}, and per attempt.
        self.expected: dict[str, dict[str, tuple[int, str]]] = {}
        self.attempts: list[dict[str, tuple[int, str]]] = []
        self.verified: set[str] = set()
        self.shared: dict[str, tuple[int, str]] | None = None
        self.pinned = {"ds:v1", "ds:v2", "big:v1"}  # made before the crash loop: read back every round

        ds = tmp_path / "ds"
        for i in range(3):
            write_parts(ds / f"part-{i}.bin", [self.pool[(i + k) % POOL_BLOCKS] for k in range(3)])
        self._commit(ds, "ds", "first export of the sample data set")
        write_parts(ds / "part-1.bin", [self.rng.randbytes(2 * MIB), self.pool[0]])
        write_parts(ds / "labels.csv", [b"id,label\n" + b"".join(b"%d,%d\n" % (i, i % 3) for i in range(50_000))])
        self._commit(ds, "ds", "relabel part 1 and add the label table")

        self.big = tmp_path / "big"
        (self.big / "shared" / "ds").mkdir(parents=True)
        for name in folder_manifest(ds):  # ds:v2's files again: deduplicated against the earlier version
            (self.big / "shared" / "ds" / name).write_bytes((ds / name).read_bytes())
        for i in range(SHARED_FILES):
            order = [self.rng.randrange(POOL_BLOCKS) for _ in range(SHARED_BLOCKS_PER_FILE)]
            write_parts(self.big / "shared" / f"pool-{i}.bin", [self.pool[k] for k in order])

    def _commit(self, folder: Path, name: str, message: str) -> None:
        with Repo.open(self.root) as repo:
            v = repo.add(folder, name=name, message=message)
        self.expected[v.ref] = folder_manifest(folder)

    def refresh_big(self) -> dict[str, tuple[int, str]]:
        """New random bytes in fresh/ (BLAKE3 output from a random key: fast and never seen before)."""
        if self.shared is None:
            self.shared = {f"shared/{k}": v for k, v in folder_manifest(self.big / "shared").items()}
        manifest = dict(self.shared)
        for i in range(FRESH_FILES):
            data = blake3.blake3(os.urandom(32)).digest(length=FRESH_MIB_PER_FILE * MIB)
            manifest[f"fresh/fresh-{i}.bin"] = write_parts(self.big / "fresh" / f"fresh-{i}.bin", [data])
        self.attempts.append(manifest)
        return manifest

    def add_args(self, attempt: int) -> list[str]:
        return [mlark_bin(), "--repo", str(self.root), "add", str(self.big), "--name", "big",
                "-m", f"nightly rebuild {attempt}: new fresh shards, shared shards unchanged"]


def _check_repository(scene: Scene, context: str, *, everything: bool = False) -> None:
    """fsck has no errors; every version in history is complete and byte-identical to what was added.

    The versions made before the crash loop and every version not seen before are read back in full
    each time; versions already read back in an earlier round are checked through their tree and
    the chunk index (fsck has just hashed every pack), unless ``everything`` is set.
    """
    assert_fsck_clean(scene.root, allow_unindexed=True)
    with Repo.open(scene.root) as repo:
        names = sorted(a.name for a in repo.artifacts())
        assert set(names) <= {"ds", "big"}, f"{context}: unexpected artifacts {names}"
        for art in repo.artifacts():
            history = repo.history(art.name)
            numbers = sorted(v.number for v in history)
            assert numbers == list(range(1, len(numbers) + 1)), f"{context}: {art.name} numbers {numbers}"
            assert art.version_count == len(history)
            latest = repo.resolve(art.name)
            assert latest.number == max(numbers), f"{context}: {art.name}@latest is v{latest.number}"
            for v in history:
                if not everything and v.ref in scene.verified and v.ref not in scene.pinned:
                    tree = repo.tree(v)
                    assert (tree.size, tree.file_count) == (v.size, v.file_count), f"{context}: {v.ref}"
                    located = repo.store.locate(tree.chunk_digests())
                    assert len(located) == len(tree.chunk_digests()), f"{context}: {v.ref} lost chunks"
                    continue
                got = version_manifest(repo, v.ref)
                assert sum(size for size, _ in got.values()) == v.size, f"{context}: {v.ref} size differs"
                assert len(got) == v.file_count
                if v.ref in scene.expected:
                    assert got == scene.expected[v.ref], f"{context}: {v.ref} does not read back identical"
                else:
                    # A version that appeared during the crash loop must be one complete attempt.
                    assert art.name == "big", f"{context}: unexpected new version {v.ref}"
                    assert any(a == got for a in scene.attempts), \
                        f"{context}: {v.ref} matches no attempted folder: a partial version"
                    scene.expected[v.ref] = got
                scene.verified.add(v.ref)
        assert sorted(v.ref for v in repo.history("ds")) == ["ds:v1", "ds:v2"], f"{context}: ds history changed"
    # One earlier version through the real `get` path as well: files on disk, byte-identical.
    out = scene.tmp / "readback"
    shutil.rmtree(out, ignore_errors=True)  # a fresh folder: get must really read the store
    with Repo.open(scene.root) as repo:
        report = repo.get_report("ds:v1", to=out)
    assert report.files_written == len(scene.expected["ds:v1"])
    assert folder_manifest(out) == scene.expected["ds:v1"], f"{context}: ds:v1 differs on disk"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_when(proc: subprocess.Popen[bytes], root: Path, phase: str, *, before_packs: set[str],
               before_tmp: set[str]) -> bool:
    """SIGKILL proc as soon as the phase is seen on disk; False if proc exited first."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if phase == "temp pack":
            seen = bool(set(os.listdir(root / ".mlark" / "tmp")) - before_tmp)
        else:
            seen = bool(pack_files(root) - before_packs)
        if seen:
            _kill(proc)
            return True
        time.sleep(0.002)
    _kill(proc)
    return False


def _crash_loop(tmp_path: Path, database: str | None, iterations: int) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    scene = Scene(tmp_path, database, seed)
    context = f"seed {seed}"

    # Measure one complete add (it also becomes an earlier version every later check reads back).
    manifest = scene.refresh_big()
    started = time.monotonic()
    done = subprocess.run(scene.add_args(0), capture_output=True, text=True, env=cli_env(), timeout=300)
    full = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    with Repo.open(scene.root) as repo:
        assert repo.resolve("big").number == 1
    scene.expected["big:v1"] = manifest
    _check_repository(scene, context)

    assert iterations > max(TARGETED)
    left_unindexed = 0
    completed = 0
    for attempt in range(1, iterations + 1):
        attempted = scene.refresh_big()
        with Repo.open(scene.root) as repo:
            before = len(repo.history("big"))
        before_packs, before_tmp = pack_files(scene.root), set(os.listdir(scene.root / ".mlark" / "tmp"))
        proc = subprocess.Popen(scene.add_args(attempt), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=cli_env())
        if attempt in TARGETED:
            # Deterministic moments first: a temp pack being filled, then sealed packs not yet indexed.
            phase = TARGETED[attempt]
            where = f"{context}, attempt {attempt}, kill at {phase}"
            hit = _kill_when(proc, scene.root, phase, before_packs=before_packs, before_tmp=before_tmp)
            assert hit, f"{where}: the add finished before that moment"
        else:
            # A little past the measured time, so some kills land after the commit or after the exit.
            delay = scene.rng.uniform(0, 1.1 * full)
            where = f"{context}, attempt {attempt}, kill after {delay:.2f}s of {full:.2f}s"
            time.sleep(delay)
            _kill(proc)
        _, stderr = proc.communicate(timeout=60)
        if proc.returncode == 0:
            completed += 1
        else:
            assert proc.returncode == -signal.SIGKILL, f"{where}: add failed on its own:\n{stderr.decode()}"
        with Repo.open(scene.root) as repo:
            history = repo.history("big")
            # All or nothing: no new version, or exactly one that is this attempt's folder, complete.
            assert len(history) in (before, before + 1), f"{where}: {before} -> {len(history)} versions"
            if proc.returncode == 0:
                assert len(history) == before + 1, f"{where}: the add finished but made no version"
            if len(history) == before + 1:
                newest = repo.resolve("big")
                assert newest.number == before + 1
                assert version_manifest(repo, newest.ref) == attempted, f"{where}: {newest.ref} is partial"
                scene.expected[newest.ref] = attempted
                scene.verified.add(newest.ref)
        _check_repository(scene, where)
        left_unindexed += bool(unindexed_pack_digests(scene.root))
        if attempt % GC_EVERY == 0 and attempt < iterations:
            # gc after crashes, midway too: removes the leftovers and keeps each fsck bounded.
            with Repo.open(scene.root) as repo:
                repo.gc()
            assert unindexed_pack_digests(scene.root) == set(), where  # the next round checks the rest

    print(f"{context}: full add {full:.2f}s, {iterations} kills, {completed} add(s) finished first, "
          f"{left_unindexed} kill(s) left unindexed packs")
    assert left_unindexed > 0, f"{context}: no kill landed while packs were being written; the loop tested little"

    # A clean add after all those crashes works and reads back.
    manifest = scene.refresh_big()
    done = run_cli("--repo", str(scene.root), "add", str(scene.big), "--name", "big", "-m",
                   "rebuild after the crashes: fresh shards regenerated")
    assert done.returncode == 0, done.stderr
    with Repo.open(scene.root) as repo:
        last = repo.resolve("big")
        assert version_manifest(repo, last.ref) == manifest
    scene.expected[last.ref] = manifest

    # gc removes every pack the killed adds left behind, and nothing that a version needs.
    leftovers = unindexed_pack_digests(scene.root)
    with Repo.open(scene.root) as repo:
        report = repo.gc()
    assert report.unindexed_packs_deleted == len(leftovers)
    assert unindexed_pack_digests(scene.root) == set()
    assert list((scene.root / ".mlark" / "tmp").iterdir()) == []
    assert_fsck_clean(scene.root)  # no warnings either
    _check_repository(scene, f"{context}, after gc", everything=True)


def test_sigkill_during_add_leaves_repository_consistent(database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("sqlite"):
        _crash_loop(tmp_path, None, iterations=15)  # the embedded default: .mlark/meta.db
    else:
        _crash_loop(tmp_path, database_url, iterations=4)
