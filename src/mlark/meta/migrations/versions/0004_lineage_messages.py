"""Lineage: ``message`` and ``author`` on lineage_edges (why and by whom a ``derived_from`` edge was declared).

Written by hand (docs/design/lineage.md); a frozen snapshot that never imports
``mlark.meta.schema``. Both columns are NULL for edges recorded by runs and the
registry (their why lives in the run and the registry's audit record).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lineage_edges") as batch:
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))
        batch.add_column(sa.Column("author", sa.String(256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lineage_edges") as batch:
        batch.drop_column("author")
        batch.drop_column("message")
