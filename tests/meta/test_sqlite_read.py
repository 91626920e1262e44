"""SqliteReader: the stdlib reads behind `get` answer exactly as the catalog does, or not at all."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from mlark.core.refs import parse_ref
from mlark.errors import InvalidRef, NotFound, UnsupportedFormat
from mlark.meta import catalog
from mlark.meta.chunkindex import SqlChunkIndex
from mlark.meta.sqlite_read import SqliteReader
from mlark.ops.repo import Repo


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Repo]:
    """An embedded repository with live, aliased, removed and many versions, metadata and tags."""
    repo = Repo.init(tmp_path / "project", author="alice")
    data = tmp_path / "data"
    data.mkdir()
    for n, text in enumerate(["first\n", "second\n", "third\n"], start=1):
        (data / "rows.csv").write_text(text * 1000)
        repo.add(data, name="churn-data", message=f"Export number {n} of the customers",
                 metadata={"source": "crm", "n": n, "nested": {"k": [1, 2.5, None]}}, tags=[f"t{n}", "export"],
                 aliases=["candidate"] if n == 2 else [])
    repo.alias_set("churn-data:v2", "best", message="best validation AUC")
    repo.rm("churn-data:v1", message="mislabelled rows")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(300_000))
    repo.add(model, name="churn-rf", type="model", message="Random forest on the second export")
    many = tmp_path / "many"
    many.mkdir()
    for n in range(3):
        (many / "x.txt").write_text(f"version {n}\n")
        repo.add(many, name="many", message=f"Generated version {n} for prefixes")
    yield repo
    repo.close()


def catalog_resolve(repo: Repo, ref: str):  # type: ignore[no-untyped-def]
    with repo.db.read() as conn:
        return catalog.resolve(conn, parse_ref(ref))


def reader_of(repo: Repo) -> SqliteReader:
    reader = SqliteReader.open(repo.meta_dir / "meta.db")
    assert reader is not None
    return reader


def test_every_live_reference_resolves_as_the_catalog_does(project: Repo) -> None:
    reader = reader_of(project)
    v2 = catalog_resolve(project, "churn-data:v2")
    many = project.history("many")
    refs = [
        "churn-data", "churn-data:v2", "churn-data:v3", "churn-data@latest", "churn-data@candidate",
        "churn-data@best", f"churn-data:{v2.digest[:8]}", f"churn-data:{v2.digest}", "churn-rf", "churn-rf:v1",
        "many", "many:v3", f"many:{many[1].digest[:12]}",
    ]
    try:
        for ref in refs:
            fast = reader.resolve(parse_ref(ref))
            assert fast is not None, ref
            assert fast == catalog_resolve(project, ref), ref
            assert fast.created_at.tzinfo is not None and fast.created_at.utcoffset().total_seconds() == 0
        got = reader.resolve(parse_ref("churn-data@best"))
        assert got is not None
        assert got.aliases == ("best", "candidate") and got.parent_number == 1 and got.tags == ("t2", "export")
        assert got.metadata == {"source": "crm", "n": 2, "nested": {"k": [1, 2.5, None]}}
    finally:
        reader.close()


def test_anything_but_a_live_version_is_left_to_the_catalog(project: Repo) -> None:
    # Make two versions share a digest prefix (as two of 65,536 versions would): the prefix is ambiguous.
    v1, v2 = (catalog_resolve(project, f"many:v{n}") for n in (1, 2))
    shared = v1.digest[:6]
    conn = sqlite3.connect(project.meta_dir / "meta.db")
    with conn:
        conn.execute("UPDATE versions SET digest = ? WHERE id = ?", (shared + v2.digest[6:], v2.id))
    conn.close()
    reader = reader_of(project)
    cases = {
        "nosuch": NotFound,  # no artifact
        "churn-data:v9": NotFound,  # no such number
        "churn-data@nosuch": NotFound,  # no such alias
        "churn-data:v1": NotFound,  # removed
        "churn-data:abcdef0123": NotFound,  # no digest with that prefix (almost surely)
        f"many:{shared}": InvalidRef,  # several versions match
    }
    try:
        for ref, error in cases.items():
            if ref == "churn-data:abcdef0123" and any(
                v.digest.startswith("abcdef0123") for v in project.history("churn-data", include_removed=True)
            ):
                continue
            assert reader.resolve(parse_ref(ref)) is None, ref
            with pytest.raises(error):
                project.resolve(ref)  # the catalog's error, with its message
    finally:
        reader.close()
    with pytest.raises(NotFound, match="was removed"):
        project.resolve("churn-data:v1")
    with pytest.raises(NotFound, match="has no alias 'nosuch'; its aliases: best, candidate, latest"):
        project.resolve("churn-data@nosuch")


def test_chunk_lookup_matches_the_sql_index(project: Repo) -> None:
    reader = reader_of(project)
    digests = []
    for ref in ("churn-data:v2", "churn-rf", "many"):
        for entry in project.tree(ref).files():
            digests.extend(c.digest for c in entry.chunks)
    missing = ["0" * 64, "f" * 64]
    try:
        fast = reader.lookup(digests + missing + digests[:3])
        assert fast == SqlChunkIndex(project.db).lookup(digests + missing)
        assert set(fast) == set(digests) and len(fast) > 3
        assert reader.lookup([]) == {}
    finally:
        reader.close()


def test_the_reader_refuses_databases_it_should_not_read(project: Repo, tmp_path: Path) -> None:
    assert SqliteReader.open(tmp_path / "absent.db") is None
    assert not (tmp_path / "absent.db").exists()  # never created
    (tmp_path / "empty.db").write_bytes(b"")
    assert SqliteReader.open(tmp_path / "empty.db") is None  # no schema
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    assert SqliteReader.open(tmp_path / "junk.db") is None
    path = project.meta_dir / "meta.db"
    project.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    assert SqliteReader.open(path) is None
    with pytest.raises(UnsupportedFormat, match="9999"):
        Repo.open(project.root)  # the full path reports it, as before


def test_getting_a_version_back_never_imports_sqlalchemy(project: Repo, tmp_path: Path) -> None:
    root = project.root
    project.close()
    code = (
        "import sys\n"
        "from mlark.ops.repo import Repo\n"
        f"repo = Repo.open({str(root)!r})\n"
        f"out = repo.get('churn-data@best', to={str(tmp_path / 'out')!r})\n"
        "v = repo.resolve('churn-rf')\n"
        "assert 'sqlalchemy' not in sys.modules, sorted(m for m in sys.modules if m.startswith('sqlalchemy'))[:5]\n"
        "print((out / 'rows.csv').read_text().count('second'))\n"
        "print([x.number for x in repo.history('churn-data')])\n"  # a catalog query: opens the database now
        "assert 'sqlalchemy' in sys.modules\n"
        "repo.close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["1000", "[3, 2]"]


def test_a_failing_reader_falls_back_to_the_full_path(project: Repo, tmp_path: Path) -> None:
    # Whatever goes wrong with the stdlib connection after opening, the answers (or the errors) come
    # from the SQLAlchemy path, never a raw sqlite3 error.
    root = project.root
    project.close()
    repo = Repo.open(root)
    try:
        assert repo._reader is not None  # type: ignore[attr-defined]
        repo._reader._conn.close()  # type: ignore[attr-defined]  # every further query raises sqlite3.Error
        version = repo.resolve("churn-data@best")
        assert version.number == 2
        got = repo.get("churn-data@best", to=tmp_path / "out")
        assert (got / "rows.csv").read_text().count("second") == 1000
        with pytest.raises(NotFound):
            repo.resolve("churn-data@nosuch")
    finally:
        repo.close()
