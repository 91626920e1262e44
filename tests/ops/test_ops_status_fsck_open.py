"""status, fsck (and --rebuild-index), opening and refusing repositories."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest
from sqlalchemy import delete, func, select

from mlark.errors import IntegrityError, InvalidInput, NotARepository, UnsupportedFormat
from mlark.meta.schema import chunks as chunks_table
from mlark.ops.repo import Repo


def _settle() -> None:
    """Let files age past the stat cache's racy window, so their cached digests can be trusted."""
    time.sleep(0.12)


def test_status_reports_each_kind_of_change(repo: Repo, make_sample, tmp_path: Path) -> None:
    data = make_sample(tmp_path / "data")
    repo.add(data, name="ds", message="first export")
    report = repo.status(data)
    assert report.clean and report.version.ref == "ds:v1"
    assert report.unchanged == 6
    (data / "new.txt").write_bytes(b"added")
    (data / "empty.txt").unlink()
    (data / "a.txt").write_bytes(b"HELLO\n")  # same size, other bytes
    (data / "sub" / "table.csv").write_bytes(b"id,value\n")  # other size
    os.chmod(data / "secret.key", 0o640)
    report = repo.status(data)
    assert not report.clean
    assert report.added == ["new.txt"]
    assert report.removed == ["empty.txt"]
    assert sorted(report.modified) == ["a.txt", "sub/table.csv"]
    assert report.mode_changed == ["secret.key"]
    assert report.unchanged == 2
    d = report.to_dict()
    assert d["ref"] == "ds:v1" and d["clean"] is False and d["added"] == ["new.txt"]


def test_status_does_not_reread_unchanged_files(repo: Repo, make_sample, tmp_path: Path) -> None:
    data = make_sample(tmp_path / "data")
    repo.add(data, name="ds", message="first export")
    out = tmp_path / "out"
    repo.get("ds", out)
    _settle()
    first = repo.status(out)
    assert first.clean and first.unchanged == 6
    second = repo.status(out)
    assert second.clean and second.unchanged == 6
    assert second.files_read == 0
    # A touched file is read again (and found unchanged); the others still are not.
    _settle()
    os.utime(out / "a.txt")
    third = repo.status(out)
    assert third.clean and third.files_read == 1


def test_status_with_an_explicit_ref_and_without_one(repo: Repo, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_bytes(b"one")
    repo.add(data, name="ds", message="first export")
    (data / "x.txt").write_bytes(b"two")
    repo.add(data, name="ds", message="second export")
    assert repo.status(data).clean
    assert repo.status(data, "ds:v1").modified == ["x.txt"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(InvalidInput, match="give one with --ref NAME"):
        repo.status(elsewhere)
    report = repo.status(elsewhere, "ds")
    assert report.removed == ["x.txt"]


def test_fsck_is_clean_on_a_healthy_repository(repo: Repo, make_sample, tmp_path: Path) -> None:
    data = make_sample(tmp_path / "data")
    repo.add(data, name="ds", message="first export")
    (data / "a.txt").write_bytes(b"changed")
    repo.add(data, name="ds", message="second export, a.txt changed")
    report = repo.fsck()
    assert report.ok and report.errors == [] and report.warnings == []
    assert report.versions_checked == 2
    packs = list((repo.meta_dir / "packs").rglob("*.pack"))
    assert report.packs_checked == len(packs) == 2
    assert report.bytes_checked == sum(p.stat().st_size for p in packs)
    assert report.chunks_checked == repo.index.count()
    assert report.to_dict()["ok"] is True


def test_rebuild_index_after_the_chunks_table_was_emptied(repo: Repo, make_sample, snapshot: Callable,
                                                          tmp_path: Path) -> None:
    data = make_sample(tmp_path / "data")
    repo.add(data, name="ds", message="first export")
    expected = snapshot(data)
    rows = repo.index.count()
    repo.db.run_write(lambda conn: conn.execute(delete(chunks_table)))
    assert repo.index.count() == 0
    with pytest.raises(IntegrityError, match="not in the chunk index"):
        repo.get("ds", tmp_path / "broken")
    broken = repo.fsck()
    assert not broken.ok
    assert any("ds:v1" in e and "not in the chunk index" in e and "--rebuild-index" in e for e in broken.errors)
    fixed = repo.fsck(rebuild_index=True)
    assert fixed.ok and fixed.index_rebuilt, fixed.errors
    assert repo.index.count() == rows
    out = tmp_path / "out"
    repo.get("ds", out)
    assert snapshot(out) == expected
    assert repo.fsck().ok


def test_fsck_finds_a_damaged_pack_and_get_refuses_it(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(50_000))
    v = repo.add(f, name="ds", message="first export")
    chunk = repo.tree(v).get("f.bin").chunks[0].digest  # type: ignore[union-attr]
    loc = repo.store.locate([chunk])[chunk]
    pack = next((repo.meta_dir / "packs").rglob(f"{loc.pack}.pack"))
    raw = bytearray(pack.read_bytes())
    raw[loc.offset + 100] ^= 0xFF
    pack.write_bytes(bytes(raw))
    report = repo.fsck()
    assert not report.ok
    assert any(loc.pack in e for e in report.errors)
    with pytest.raises(IntegrityError) as err:
        repo.get("ds", tmp_path / "out")
    assert chunk in str(err.value) and loc.pack in str(err.value)
    assert not (tmp_path / "out" / "f.bin").exists()


def test_fsck_finds_a_missing_pack(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"x")
    repo.add(f, name="ds", message="first export")
    pack = next((repo.meta_dir / "packs").rglob("*.pack"))
    pack.unlink()
    report = repo.fsck()
    assert not report.ok
    assert any("missing from .mlark/packs" in e for e in report.errors)
    assert any("ds:v1" in e for e in report.errors)


def test_open_walks_up_from_a_subfolder(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"x")
    repo.add(f, name="ds", message="first export")
    deep = repo.root / "a" / "b" / "c"
    deep.mkdir(parents=True)
    with Repo.open(deep, author="carol") as found:
        assert found.root == repo.root
        assert found.author == "carol"
        assert found.resolve("ds").number == 1
        assert found.config.id == repo.config.id


def test_open_outside_a_repository(tmp_path: Path) -> None:
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    with pytest.raises(NotARepository, match="mlark init") as err:
        Repo.open(lonely)
    assert isinstance(err.value, FileNotFoundError)


def test_repo_json_describes_the_repository(repo: Repo, database_url: str) -> None:
    doc = json.loads((repo.meta_dir / "repo.json").read_text())
    assert doc["format"] == 1
    assert uuid.UUID(doc["id"]).version == 7
    assert doc["database"] == database_url
    assert doc["chunking"] == {"algorithm": "fastcdc2020", "min": 16384, "avg": 49152, "max": 262144,
                               "small_file": 131072}
    assert (repo.meta_dir / "packs").is_dir() and (repo.meta_dir / "tmp").is_dir()
    assert not list(repo.root.glob(".mlark-init-*"))


def test_default_repository_keeps_sqlite_inside_mlark(tmp_path: Path) -> None:
    with Repo.init(tmp_path / "p", author="dave") as r:
        doc = json.loads((r.meta_dir / "repo.json").read_text())
        assert "database" not in doc
        assert (r.meta_dir / "meta.db").is_file()
        assert r.db.dialect_name == "sqlite"


def test_init_twice_is_refused(repo: Repo) -> None:
    before = (repo.meta_dir / "repo.json").read_bytes()
    with pytest.raises(InvalidInput, match="already holds an mlark repository"):
        Repo.init(repo.root)
    assert (repo.meta_dir / "repo.json").read_bytes() == before


def test_unknown_format_version_is_refused(repo: Repo, subtests) -> None:
    path = repo.meta_dir / "repo.json"
    original = path.read_text()
    for found in (99, 2, 0, "1", None):
        with subtests.test(found=found):
            doc = json.loads(original)
            doc["format"] = found
            path.write_text(json.dumps(doc))
            with pytest.raises(UnsupportedFormat) as err:
                Repo.open(repo.root)
            message = str(err.value)
            assert f"format version {found!r}" in message
            assert "understands format 1" in message
            assert err.value.fields["found"] == found and err.value.fields["supported"] == [1]
            if found == 99:
                assert "99" in message and "upgrade mlark" in message
    path.write_text(original)
    Repo.open(repo.root).close()


def test_unreadable_repo_json_is_refused(repo: Repo, subtests) -> None:
    path = repo.meta_dir / "repo.json"
    for content in ("", "not json", "[]", '{"format": 1}', '{"format": 1, "id": "x", "created": "y"}'):
        with subtests.test(content=content):
            path.write_text(content)
            with pytest.raises(UnsupportedFormat, match="repo.json"):
                Repo.open(repo.root)


def test_a_repository_survives_reopening(repo: Repo, make_sample, snapshot: Callable, tmp_path: Path) -> None:
    data = make_sample(tmp_path / "data")
    v = repo.add(data, name="ds", message="first export", metadata={"k": 1}, tags=["t"])
    repo.close()
    with Repo.open(repo.root) as again:
        got = again.resolve("ds:v1")
        assert got.to_dict() == v.to_dict()
        again.get("ds", tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(data)


def test_chunks_table_count_matches_pack_footers(repo: Repo, make_sample, tmp_path: Path) -> None:
    data = make_sample(tmp_path / "data")
    repo.add(data, name="ds", message="first export")
    with repo.db.read() as conn:
        rows = conn.execute(select(func.count()).select_from(chunks_table)).scalar_one()
    footers = sum(len(repo.store.scan_pack(d).entries) for d, _ in repo.store.pack_keys())
    assert rows == footers > 0


def test_status_reports_retargeted_links_and_type_changes_as_modified(repo: Repo, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a").write_bytes(b"a")
    (data / "b").write_bytes(b"b")
    os.symlink("a", data / "link")
    (data / "was-file").write_bytes(b"file")
    os.symlink("a", data / "was-link")
    repo.add(data, name="ds", message="first export")
    os.unlink(data / "link")
    os.symlink("b", data / "link")
    os.unlink(data / "was-file")
    os.symlink("a", data / "was-file")
    os.unlink(data / "was-link")
    (data / "was-link").write_bytes(b"now a file")
    os.symlink("b", data / "new-link")
    report = repo.status(data)
    assert report.added == ["new-link"]
    assert report.removed == []
    assert sorted(report.modified) == ["link", "was-file", "was-link"]
    assert report.unchanged == 2
