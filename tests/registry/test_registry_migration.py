"""Migration 0003 (the registry tables): created, named by the convention, constraints enforced, reversible."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from mlark.core.ids import new_id
from mlark.meta import migrations
from mlark.meta.db import HEAD_REVISION, KNOWN_REVISIONS, Database
from mlark.meta.schema import (
    artifacts,
    metadata,
    registered_model_versions,
    registered_models,
    versions,
)

REGISTRY_TABLES = {"registered_models", "registered_model_versions", "registered_model_aliases", "registry_events"}
NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


def test_the_registry_revision_follows_tracking() -> None:
    revisions = migrations.revisions()
    assert revisions.index("0003") == revisions.index("0002") + 1
    assert "0003" in KNOWN_REVISIONS


def test_registry_tables_and_their_names(database_url: str) -> None:
    db = Database.open(database_url, create=True)
    try:
        with db.engine.connect() as conn:
            insp = inspect(conn)
            assert REGISTRY_TABLES <= set(insp.get_table_names())
            assert {u["name"] for u in insp.get_unique_constraints("registered_model_versions")} == {
                "uq_registered_model_versions_model_id_number",
                "uq_registered_model_versions_model_id_version_id",
            }
            assert {i["name"] for i in insp.get_indexes("registry_events")} == {"ix_registry_events_model_id_at"}
            assert {f["referred_table"] for f in insp.get_foreign_keys("registered_model_versions")} == {
                "registered_models", "versions", "runs"}
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        db.close()


def _model_and_version(conn: object) -> tuple[str, str]:
    art, ver, model = new_id(), new_id(), new_id()
    conn.execute(artifacts.insert().values(id=art, name="m", type="model", created_at=NOW, created_by="a",  # type: ignore[attr-defined]
                                           next_number=2))
    conn.execute(versions.insert().values(id=ver, artifact_id=art, number=1, digest="0" * 64, message="m",  # type: ignore[attr-defined]
                                          author="a", created_at=NOW, metadata={}, tags=[], size=0, new_bytes=0,
                                          file_count=0))
    conn.execute(registered_models.insert().values(id=model, name="churn", tags={}, created_at=NOW,  # type: ignore[attr-defined]
                                                   created_by="a", next_number=1))
    return model, ver


def _rmv(model: str, version: str, number: int) -> dict[str, object]:
    return dict(id=new_id(), model_id=model, number=number, version_id=version, stage="development",
                stage_changed_at=NOW, tags={}, created_at=NOW, created_by="a")


def test_a_version_is_registered_in_a_model_once(database_url: str) -> None:
    db = Database.open(database_url, create=True)
    try:
        model, version = db.run_write(_model_and_version)
        db.run_write(lambda conn: conn.execute(registered_model_versions.insert().values(**_rmv(model, version, 1))))
        with pytest.raises(IntegrityError):
            db.run_write(lambda conn: conn.execute(registered_model_versions.insert().values(**_rmv(model, version, 2))))
    finally:
        db.close()


def test_downgrade_to_tracking_and_upgrade_again(database_url: str) -> None:
    db = Database.open(database_url, create=True)
    try:
        db.run_write(_model_and_version)
        with db.engine.begin() as conn:
            command.downgrade(migrations.config(conn), "0002")
        with db.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert not REGISTRY_TABLES & tables and {"runs", "lineage_edges", "versions"} <= tables
        assert db.revision() == "0002"
        db.close()
        db = Database.open(database_url)  # an older known revision is upgraded on open, data kept
        assert db.revision() == HEAD_REVISION
        with db.engine.connect() as conn:
            assert REGISTRY_TABLES <= set(inspect(conn).get_table_names())
            assert conn.execute(versions.select()).first() is not None
    finally:
        db.close()
