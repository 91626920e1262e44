"""The Alembic revisions build exactly schema.metadata, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from mlark.errors import UnsupportedFormat
from mlark.meta import migrations
from mlark.meta.db import HEAD_REVISION, KNOWN_REVISIONS, Database
from mlark.meta.schema import metadata

TABLES = {"artifacts", "versions", "aliases", "alias_log", "packs", "chunks",
          "runs", "params", "run_tags", "metric_batches", "metric_summaries", "lineage_edges"}


def test_revision_constants_match_the_scripts() -> None:
    assert migrations.heads() == [HEAD_REVISION]
    assert migrations.revisions() == list(KNOWN_REVISIONS)
    assert KNOWN_REVISIONS[-1] == HEAD_REVISION


def test_migrated_schema_matches_metadata(database_url: str) -> None:
    db = Database.open(database_url, create=True)
    try:
        with db.engine.connect() as conn:
            assert TABLES <= set(inspect(conn).get_table_names())
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
        assert db.revision() == HEAD_REVISION
    finally:
        db.close()


def test_index_and_constraint_names_follow_the_convention(database_url: str) -> None:
    db = Database.open(database_url, create=True)
    try:
        with db.engine.connect() as conn:
            insp = inspect(conn)
            assert {i["name"] for i in insp.get_indexes("versions") if not i.get("duplicates_constraint")} == {
                "ix_versions_artifact_id_digest",
                "ix_versions_digest",
            }
            assert {i["name"] for i in insp.get_indexes("chunks")} == {"ix_chunks_pack"}
            assert {u["name"] for u in insp.get_unique_constraints("artifacts")} == {"uq_artifacts_name"}
            assert {f["name"] for f in insp.get_foreign_keys("aliases")} == {
                "fk_aliases_artifact_id_artifacts",
                "fk_aliases_version_id_versions",
            }
    finally:
        db.close()


def test_create_twice_is_a_no_op(database_url: str) -> None:
    Database.open(database_url, create=True).close()
    db = Database.open(database_url, create=True)
    try:
        assert db.revision() == HEAD_REVISION
    finally:
        db.close()


def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    db = Database.open(database_url, create=True)
    try:
        with db.engine.begin() as conn:
            command.downgrade(migrations.config(conn), "base")
        with db.engine.connect() as conn:
            assert not TABLES & set(inspect(conn).get_table_names())
        assert db.revision() is None
        db.run_write(lambda conn: migrations.upgrade(conn))
        assert db.revision() == HEAD_REVISION
    finally:
        db.close()


def test_uninitialised_database_is_refused(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        # an existing, empty file (a missing file is a StorageError, see test_db)
        path = database_url.removeprefix("sqlite:///")
        open(path, "wb").close()
    with pytest.raises(UnsupportedFormat, match="not initialised"):
        Database.open(database_url)


@pytest.mark.parametrize("create", [False, True])
def test_unknown_revision_is_refused(database_url: str, create: bool) -> None:
    db = Database.open(database_url, create=True)
    db.run_write(lambda conn: conn.execute(text("UPDATE alembic_version SET version_num = '9999'")))
    db.close()
    with pytest.raises(UnsupportedFormat) as info:
        Database.open(database_url, create=create)
    message = str(info.value)
    assert "9999" in message and "0001" in message
    assert info.value.fields["found"] == ["9999"]
    assert info.value.fields["understood"] == list(KNOWN_REVISIONS)
    # refused, not "repaired": the stored revision is untouched
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["9999"]
    finally:
        engine.dispose()


def test_older_known_revision_is_upgraded_on_open(database_url: str) -> None:
    # A database left at the first revision (what an older mlark wrote) is
    # upgraded to head when opened, keeping its data.
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            migrations.upgrade(conn, KNOWN_REVISIONS[0])
            conn.execute(text(
                "INSERT INTO artifacts (id, name, type, created_at, created_by, next_number) "
                "VALUES ('a1', 'old-data', 'dataset', '2024-01-01 00:00:00+00:00', 'alice', 1)"
            ))
    finally:
        engine.dispose()
    db = Database.open(database_url)
    try:
        assert db.revision() == HEAD_REVISION
        with db.engine.connect() as conn:
            assert {"runs", "params", "metric_batches", "lineage_edges"} <= set(inspect(conn).get_table_names())
            assert conn.execute(text("SELECT name FROM artifacts")).scalars().all() == ["old-data"]
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        db.close()


def test_a_newer_head_runs_the_migration_path(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend the code's head moved on: open() runs the upgrade for a known-but-older stored revision.
    import mlark.meta.db as dbmod

    Database.open(database_url, create=True).close()
    calls: list[str] = []
    monkeypatch.setattr(dbmod, "HEAD_REVISION", "9998")
    monkeypatch.setattr(dbmod, "KNOWN_REVISIONS", (*KNOWN_REVISIONS, "9998"))
    monkeypatch.setattr(migrations, "upgrade", lambda conn, revision="head": calls.append(revision))
    Database.open(database_url).close()
    assert calls == ["9998"]


def test_opening_does_not_import_alembic(database_url: str) -> None:
    Database.open(database_url, create=True).close()
    code = (
        "import sys\n"
        "import mlark.meta.db as m\n"
        "assert 'alembic' not in sys.modules, 'import mlark.meta.db imported alembic'\n"
        f"db = m.Database.open({database_url!r})\n"
        "assert db.revision() == m.HEAD_REVISION\n"
        "db.close()\n"
        "assert 'alembic' not in sys.modules, 'opening a database at head imported alembic'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
