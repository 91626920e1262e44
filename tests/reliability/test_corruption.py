"""Damaged packs and a lost chunk index: detected by reads and by fsck, never wrong bytes.

Each test builds a small repository, damages it the way a disk, a person or a bad copy would, and
checks the library (IntegrityError naming the chunk and/or pack; the target file is not written
with wrong content) and the command (`mlark fsck` exits INTEGRITY with a clear message).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import blake3
import pytest
from sqlalchemy import create_engine, text

from mlark.cli.exit import ExitStatus
from mlark.errors import IntegrityError
from mlark.objectstore.index import FLAG_RAW, FLAG_ZSTD, ChunkLocation
from mlark.objectstore.pack import ENTRY_SIZE, TRAILER_SIZE
from mlark.ops.repo import Repo
from rel_support import (
    MIB,
    folder_manifest,
    no_traceback,
    pack_files,
    run_cli,
    version_manifest,
    write_parts,
)


@dataclass
class Built:
    root: Path
    data: Path
    manifest: dict[str, tuple[int, str]]
    other_manifest: dict[str, tuple[int, str]]
    database: str | None

    def pack_path(self, digest: str) -> Path:
        return self.root / ".mlark" / "packs" / digest[:2] / f"{digest}.pack"

    def locate(self, path: str, kind: int) -> ChunkLocation:
        """The location of one chunk of ds:v1's file ``path`` stored with flags ``kind``."""
        with Repo.open(self.root) as repo:
            entry = repo.tree("ds:v1").get(path)
            assert entry is not None
            located = repo.store.locate(c.digest for c in entry.chunks)
        wanted = [located[c.digest] for c in entry.chunks if located[c.digest].flags == kind]
        assert wanted, f"no chunk of {path} is stored with flags {kind}"
        return wanted[len(wanted) // 2]


def _build(tmp_path: Path, database: str | None = None) -> Built:
    root = tmp_path / "proj"
    Repo.init(root, database=database).close()
    data = tmp_path / "data"
    write_parts(data / "weights.bin", [blake3.blake3(b"weights").digest(length=3 * MIB)])  # stored raw
    rows = b"".join(b"%d,%d,customer-%d,%s\n" % (i, i * 7 % 13, i, b"ok" if i % 5 else b"churned")
                    for i in range(60_000))
    write_parts(data / "table.csv", [rows])  # compressible: zstd blobs
    write_parts(data / "README.txt", [b"sample export for the corruption tests\n"])
    other = tmp_path / "other"
    write_parts(other / "model.bin", [blake3.blake3(b"other").digest(length=MIB)])
    with Repo.open(root) as repo:
        repo.add(data, name="ds", message="export of the churn sample")
    with Repo.open(root) as repo:
        # A second artifact in its own pack: damage to ds's pack must not reach it.
        repo.add(other, name="other", message="an unrelated model in a pack of its own")
    built = Built(root, data, folder_manifest(data), folder_manifest(other), database)
    with Repo.open(root) as repo:
        assert repo.fsck().ok
    return built


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x40]))


def _ds_pack(built: Built) -> str:
    with Repo.open(built.root) as repo:
        tree = repo.tree("ds:v1")
        packs = {loc.pack for loc in repo.store.locate(tree.chunk_digests()).values()}
    assert len(packs) == 1
    return packs.pop()


def _assert_get_refused(built: Built, tmp_path: Path, *, names: list[str]) -> IntegrityError:
    """repo.get raises IntegrityError naming what is damaged; no file is left with wrong bytes."""
    fresh = tmp_path / "out-fresh"
    with Repo.open(built.root) as repo:
        with pytest.raises(IntegrityError) as caught:
            repo.get("ds:v1", to=fresh)
    message = str(caught.value)
    for name in names:
        assert name in message, f"{name} not named in: {message}"
    _assert_nothing_wrong_written(fresh, built.manifest)

    # A destination that already holds other bytes keeps them: never replaced by damaged content.
    stale = tmp_path / "out-stale"
    stale.mkdir()
    for path in built.manifest:
        write_parts(stale / path, [b"older local copy of " + path.encode()])
    before = folder_manifest(stale)
    with Repo.open(built.root) as repo:
        with pytest.raises(IntegrityError):
            repo.get("ds:v1", to=stale)
    after = folder_manifest(stale)
    for path, value in after.items():
        assert value in (before[path], built.manifest[path]), f"{path} holds bytes of neither version"
    assert set(after) == set(before)
    return caught.value


def _assert_nothing_wrong_written(folder: Path, manifest: dict[str, tuple[int, str]]) -> None:
    if not folder.exists():
        return
    got = folder_manifest(folder)
    for path, value in got.items():
        assert path in manifest, f"stray file {path} left in {folder}"
        assert value == manifest[path], f"{path} was written with wrong bytes"


def _assert_fsck_reports(built: Built, pack: str, *, also: str | None = None) -> None:
    with Repo.open(built.root) as repo:
        report = repo.fsck()
    assert not report.ok
    assert any(pack in e for e in report.errors), report.errors
    if also:
        assert any(also in e for e in report.errors), report.errors
    done = run_cli("--repo", str(built.root), "fsck")
    assert done.returncode == ExitStatus.INTEGRITY, (done.returncode, done.stdout, done.stderr)
    assert f"error: pack {pack}" in done.stderr or pack in done.stderr, done.stderr
    assert "problem" in done.stdout, done.stdout
    no_traceback(done.stderr)
    done = run_cli("--repo", str(built.root), "fsck", "--json")
    assert done.returncode == ExitStatus.INTEGRITY
    doc = json.loads(done.stdout)
    assert doc["ok"] is False and any(pack in e for e in doc["errors"])


def _assert_other_intact(built: Built) -> None:
    with Repo.open(built.root) as repo:
        assert version_manifest(repo, "other:v1") == built.other_manifest


@pytest.mark.parametrize("kind", [FLAG_RAW, FLAG_ZSTD], ids=["raw-blob", "zstd-blob"])
def test_flipped_byte_in_a_blob(tmp_path: Path, kind: int) -> None:
    built = _build(tmp_path)
    path = "weights.bin" if kind == FLAG_RAW else "table.csv"
    loc = built.locate(path, kind)
    _flip(built.pack_path(loc.pack), loc.offset + loc.stored_len // 2)

    err = _assert_get_refused(built, tmp_path, names=[loc.digest, loc.pack])
    assert err.fields.get("chunk") == loc.digest and err.fields.get("pack") == loc.pack
    # Streaming stops at the damaged chunk: what it yielded before is a correct prefix.
    with Repo.open(built.root) as repo:
        received = bytearray()
        with pytest.raises(IntegrityError):
            for data in repo.read_file("ds:v1", path):
                received += data
    assert (built.data / path).read_bytes().startswith(bytes(received))
    # Other files of the same version, in intact blobs, still read.
    with Repo.open(built.root) as repo:
        assert b"".join(repo.read_file("ds:v1", "README.txt")) == (built.data / "README.txt").read_bytes()
    _assert_other_intact(built)
    _assert_fsck_reports(built, loc.pack)
    done = run_cli("--repo", str(built.root), "get", "ds:v1", "--to", str(tmp_path / "cli-out"))
    assert done.returncode == ExitStatus.INTEGRITY and loc.digest in done.stderr, done.stderr
    no_traceback(done.stderr)
    _assert_nothing_wrong_written(tmp_path / "cli-out", built.manifest)


def test_flipped_byte_in_a_pack_footer(tmp_path: Path) -> None:
    built = _build(tmp_path)
    pack = _ds_pack(built)
    file = built.pack_path(pack)
    with Repo.open(built.root) as repo:
        count = len(repo.store.scan_pack(pack).entries)
    footer_start = file.stat().st_size - TRAILER_SIZE - count * ENTRY_SIZE
    _flip(file, footer_start + (count // 2) * ENTRY_SIZE + 3)  # inside one entry's chunk digest

    # Reads locate chunks through the index, not the footer, and verify every chunk: the bytes they
    # return are still right. The damage is reported by fsck, which reads the footer.
    with Repo.open(built.root) as repo:
        repo.get("ds:v1", to=tmp_path / "out")
        with pytest.raises(IntegrityError) as caught:
            repo.store.scan_pack(pack)
    assert folder_manifest(tmp_path / "out") == built.manifest
    assert pack in str(caught.value) and "footer" in str(caught.value)
    _assert_other_intact(built)
    _assert_fsck_reports(built, pack)


def test_truncated_pack(tmp_path: Path) -> None:
    built = _build(tmp_path)
    pack = _ds_pack(built)
    file = built.pack_path(pack)
    os.truncate(file, file.stat().st_size // 2)

    _assert_get_refused(built, tmp_path, names=[pack])
    with Repo.open(built.root) as repo:
        with pytest.raises(IntegrityError) as caught:
            for _ in repo.read_file("ds:v1", "table.csv"):
                pass
    assert pack in str(caught.value)
    _assert_other_intact(built)
    _assert_fsck_reports(built, pack)


def test_deleted_pack(tmp_path: Path) -> None:
    built = _build(tmp_path)
    pack = _ds_pack(built)
    built.pack_path(pack).unlink()

    err = _assert_get_refused(built, tmp_path, names=[pack, "missing"])
    assert err.fields.get("pack") == pack
    _assert_other_intact(built)
    _assert_fsck_reports(built, pack, also="missing")


def _empty_index(built: Built) -> None:
    url = built.database or f"sqlite:///{built.root / '.mlark' / 'meta.db'}"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM chunks"))
            conn.execute(text("DELETE FROM packs"))
    finally:
        engine.dispose()


def test_emptied_chunk_index_is_detected_and_rebuilt(database_url: str, tmp_path: Path) -> None:
    embedded = database_url.startswith("sqlite")
    built = _build(tmp_path, None if embedded else database_url)
    pack = _ds_pack(built)
    with Repo.open(built.root) as repo:
        tree_digest = repo.resolve("ds:v1").digest
    _empty_index(built)

    err = _assert_get_refused(built, tmp_path, names=[tree_digest, "fsck --rebuild-index"])
    assert err.fields.get("chunk") == tree_digest
    with Repo.open(built.root) as repo:
        report = repo.fsck()
    assert not report.ok
    assert any(tree_digest in e for e in report.errors), report.errors
    assert any(pack in e for e in report.errors), f"no error names the pack holding the chunk: {report.errors}"
    assert any("rebuild-index" in e for e in report.errors), report.errors
    done = run_cli("--repo", str(built.root), "fsck")
    assert done.returncode == ExitStatus.INTEGRITY, done.stderr
    assert "rebuild-index" in done.stderr
    no_traceback(done.stderr)

    # The packs are not garbage: fsck must not send the user to gc, and gc must not delete them.
    assert not any("gc" in w for w in report.warnings), report.warnings
    packs_before = pack_files(built.root)
    done = run_cli("--repo", str(built.root), "gc")
    assert done.returncode == ExitStatus.INTEGRITY, done.stdout + done.stderr
    no_traceback(done.stderr)
    assert pack_files(built.root) == packs_before

    done = run_cli("--repo", str(built.root), "fsck", "--rebuild-index")
    assert done.returncode == ExitStatus.OK, done.stdout + done.stderr
    assert "rebuilt" in done.stdout
    no_traceback(done.stderr)

    done = run_cli("--repo", str(built.root), "fsck", "--json")
    assert done.returncode == ExitStatus.OK, done.stdout
    doc = json.loads(done.stdout)
    assert doc["ok"] and doc["errors"] == [] and doc["warnings"] == []
    with Repo.open(built.root) as repo:
        repo.get("ds:v1", to=tmp_path / "restored")
        assert version_manifest(repo, "other:v1") == built.other_manifest
    assert folder_manifest(tmp_path / "restored") == built.manifest


def test_gc_keeps_a_pack_whose_index_rows_were_lost(tmp_path: Path) -> None:
    """Partial index loss: the trees still read, but one pack of file chunks lost its rows.

    That pack looks like garbage left by a killed add; deleting it would destroy ds:v1 for good.
    fsck must point at --rebuild-index (not at gc), and gc must refuse and delete nothing.
    """
    root = tmp_path / "proj"
    Repo.init(root).close()
    data = tmp_path / "data"
    write_parts(data / "weights.bin", [blake3.blake3(b"big weights").digest(length=40 * MIB)])  # > 1 pack
    with Repo.open(root) as repo:
        v = repo.add(data, name="ds", message="forty MiB of weights: two packs")
        tree = repo.tree(v)
        located = repo.store.locate(tree.chunk_digests() | {v.digest})
    packs = {loc.pack for loc in located.values()}
    assert len(packs) >= 2
    victim = sorted(packs - {located[v.digest].pack})[0]  # a pack without the tree
    engine = create_engine(f"sqlite:///{root / '.mlark' / 'meta.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM chunks WHERE pack = :p"), {"p": victim})
            conn.execute(text("DELETE FROM packs WHERE digest = :p"), {"p": victim})
    finally:
        engine.dispose()

    with Repo.open(root) as repo:
        report = repo.fsck()
    assert not report.ok
    assert any(victim in e and "rebuild-index" in e for e in report.errors), report.errors
    assert not any("gc" in w for w in report.warnings), report.warnings
    before = pack_files(root)
    with Repo.open(root) as repo:
        with pytest.raises(IntegrityError) as caught:
            repo.gc()
    assert victim in str(caught.value) and "rebuild-index" in str(caught.value)
    assert pack_files(root) == before

    done = run_cli("--repo", str(root), "fsck", "--rebuild-index")
    assert done.returncode == ExitStatus.OK, done.stdout + done.stderr
    with Repo.open(root) as repo:
        repo.gc()
        repo.get("ds:v1", to=tmp_path / "out")
    assert folder_manifest(tmp_path / "out") == folder_manifest(data)


def test_rebuild_index_keeps_intact_chunks_of_a_partly_damaged_pack(tmp_path: Path) -> None:
    built = _build(tmp_path)
    loc = built.locate("weights.bin", FLAG_RAW)
    _flip(built.pack_path(loc.pack), loc.offset + loc.stored_len // 2)
    done = run_cli("--repo", str(built.root), "fsck", "--rebuild-index")
    assert done.returncode == ExitStatus.INTEGRITY  # the damaged blob is still reported
    with Repo.open(built.root) as repo:
        # Intact chunks of the damaged pack still read (each read is verified anyway) ...
        assert b"".join(repo.read_file("ds:v1", "README.txt")) == (built.data / "README.txt").read_bytes()
        # ... and the damaged one is still named as damaged, not as "missing from the index".
        with pytest.raises(IntegrityError) as caught:
            b"".join(repo.read_file("ds:v1", "weights.bin"))
    assert loc.digest in str(caught.value) and "corrupt" in str(caught.value)
