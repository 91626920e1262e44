"""Initial schema: artifacts, versions, aliases, alias_log, packs, chunks.

Written by hand, not generated: a revision is a frozen snapshot and never
imports ``mlark.meta.schema`` (which only describes the *current* head).
Constraint and index names follow the naming convention of ``schema.metadata``.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(36)
DIGEST = sa.String(64)
NAME = sa.String(128)
PERSON = sa.String(256)
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("type", NAME, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", PERSON, nullable=False),
        sa.Column("next_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artifacts"),
        sa.UniqueConstraint("name", name="uq_artifacts_name"),
    )

    op.create_table(
        "versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("artifact_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("author", PERSON, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("new_bytes", sa.BigInteger(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("removed_at", UTC, nullable=True),
        sa.Column("removed_by", PERSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_versions"),
        sa.UniqueConstraint("artifact_id", "number", name="uq_versions_artifact_id_number"),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"], name="fk_versions_artifact_id_artifacts"),
        sa.ForeignKeyConstraint(["parent_id"], ["versions.id"], name="fk_versions_parent_id_versions"),
    )
    op.create_index("ix_versions_artifact_id_digest", "versions", ["artifact_id", "digest"])
    op.create_index("ix_versions_digest", "versions", ["digest"])

    op.create_table(
        "aliases",
        sa.Column("artifact_id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("version_id", ID, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("artifact_id", "name", name="pk_aliases"),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"], name="fk_aliases_artifact_id_artifacts"),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name="fk_aliases_version_id_versions"),
    )
    op.create_index("ix_aliases_version_id", "aliases", ["version_id"])

    op.create_table(
        "alias_log",
        sa.Column("id", ID, nullable=False),
        sa.Column("artifact_id", ID, nullable=False),
        sa.Column("alias", NAME, nullable=False),
        sa.Column("from_version_id", ID, nullable=True),
        sa.Column("to_version_id", ID, nullable=True),
        sa.Column("author", PERSON, nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alias_log"),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"], name="fk_alias_log_artifact_id_artifacts"),
        sa.ForeignKeyConstraint(
            ["from_version_id"], ["versions.id"], name="fk_alias_log_from_version_id_versions"
        ),
        sa.ForeignKeyConstraint(["to_version_id"], ["versions.id"], name="fk_alias_log_to_version_id_versions"),
    )
    op.create_index("ix_alias_log_artifact_id_alias_at", "alias_log", ["artifact_id", "alias", "at"])

    op.create_table(
        "packs",
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_packs"),
    )

    op.create_table(
        "chunks",
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("pack", DIGEST, nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("stored_len", sa.Integer(), nullable=False),
        sa.Column("raw_len", sa.Integer(), nullable=False),
        sa.Column("flags", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_chunks"),
    )
    op.create_index("ix_chunks_pack", "chunks", ["pack"])


def downgrade() -> None:
    op.drop_index("ix_chunks_pack", table_name="chunks")
    op.drop_table("chunks")
    op.drop_table("packs")
    op.drop_index("ix_alias_log_artifact_id_alias_at", table_name="alias_log")
    op.drop_table("alias_log")
    op.drop_index("ix_aliases_version_id", table_name="aliases")
    op.drop_table("aliases")
    op.drop_index("ix_versions_digest", table_name="versions")
    op.drop_index("ix_versions_artifact_id_digest", table_name="versions")
    op.drop_table("versions")
    op.drop_table("artifacts")
