"""Model registry: registered_models, registered_model_versions, registered_model_aliases, registry_events.

Written by hand (docs/design/registry.md, "Tables"); a frozen snapshot that never
imports ``mlark.meta.schema``. Names follow the naming convention of ``schema.metadata``.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(36)
NAME = sa.String(128)
PERSON = sa.String(256)
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", PERSON, nullable=False),
        sa.Column("next_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registered_models"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )

    op.create_table(
        "registered_model_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("version_id", ID, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("stage_changed_at", UTC, nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", PERSON, nullable=False),
        sa.Column("source_run_id", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_registered_model_versions"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["registered_models.id"], name="fk_registered_model_versions_model_id_registered_models"
        ),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name="fk_registered_model_versions_version_id_versions"),
        sa.ForeignKeyConstraint(["source_run_id"], ["runs.id"], name="fk_registered_model_versions_source_run_id_runs"),
        sa.UniqueConstraint("model_id", "number", name="uq_registered_model_versions_model_id_number"),
        sa.UniqueConstraint("model_id", "version_id", name="uq_registered_model_versions_model_id_version_id"),
    )
    op.create_index("ix_registered_model_versions_version_id", "registered_model_versions", ["version_id"])

    op.create_table(
        "registered_model_aliases",
        sa.Column("model_id", ID, nullable=False),
        sa.Column("alias", NAME, nullable=False),
        sa.Column("rmv_id", ID, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_registered_model_aliases"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["registered_models.id"], name="fk_registered_model_aliases_model_id_registered_models"
        ),
        sa.ForeignKeyConstraint(
            ["rmv_id"], ["registered_model_versions.id"],
            name="fk_registered_model_aliases_rmv_id_registered_model_versions",
        ),
    )
    op.create_index("ix_registered_model_aliases_rmv_id", "registered_model_aliases", ["rmv_id"])

    op.create_table(
        "registry_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("rmv_id", ID, nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("field", NAME, nullable=True),
        sa.Column("from_value", sa.Text(), nullable=True),
        sa.Column("to_value", sa.Text(), nullable=True),
        sa.Column("author", PERSON, nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registry_events"),
        sa.ForeignKeyConstraint(["model_id"], ["registered_models.id"], name="fk_registry_events_model_id_registered_models"),
        sa.ForeignKeyConstraint(
            ["rmv_id"], ["registered_model_versions.id"], name="fk_registry_events_rmv_id_registered_model_versions"
        ),
    )
    op.create_index("ix_registry_events_model_id_at", "registry_events", ["model_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_registry_events_model_id_at", table_name="registry_events")
    op.drop_table("registry_events")
    op.drop_index("ix_registered_model_aliases_rmv_id", table_name="registered_model_aliases")
    op.drop_table("registered_model_aliases")
    op.drop_index("ix_registered_model_versions_version_id", table_name="registered_model_versions")
    op.drop_table("registered_model_versions")
    op.drop_table("registered_models")
