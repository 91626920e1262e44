"""Experiment tracking: runs, params, run_tags, metric_batches, metric_summaries, lineage_edges.

Written by hand (docs/design/tracking.md, "Tables"); a frozen snapshot that never
imports ``mlark.meta.schema``. Names follow the naming convention of ``schema.metadata``.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(36)
NAME = sa.String(128)
KEY = sa.String(256)
PERSON = sa.String(256)
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("project", NAME, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("start_time", UTC, nullable=False),
        sa.Column("end_time", UTC, nullable=True),
        sa.Column("heartbeat_at", UTC, nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("host", PERSON, nullable=True),
        sa.Column("user", PERSON, nullable=True),
        sa.Column("command", sa.JSON(), nullable=True),
        sa.Column("git", sa.JSON(), nullable=True),
        sa.Column("environment", sa.JSON(), nullable=True),
        sa.Column("seeds", sa.JSON(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(["parent_id"], ["runs.id"], name="fk_runs_parent_id_runs"),
    )
    op.create_index("ix_runs_project_start_time", "runs", ["project", "start_time"])
    op.create_index("ix_runs_parent_id", "runs", ["parent_id"])
    op.create_index("ix_runs_status", "runs", ["status"])

    op.create_table(
        "params",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("number", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_params"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_params_run_id_runs"),
    )
    op.create_index("ix_params_key_number", "params", ["key", "number"])

    op.create_table(
        "run_tags",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_run_tags"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_tags_run_id_runs"),
    )

    op.create_table(
        "metric_batches",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("steps", sa.LargeBinary(), nullable=False),
        sa.Column("values", sa.LargeBinary(), nullable=False),
        sa.Column("times", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", "seq", name="pk_metric_batches"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_metric_batches_run_id_runs"),
    )

    op.create_table(
        "metric_summaries",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last", sa.Double(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("last_time", sa.Double(), nullable=False),
        sa.Column("min", sa.Double(), nullable=True),
        sa.Column("max", sa.Double(), nullable=True),
        sa.Column("last_is_nan", sa.Boolean(create_constraint=False), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", name="pk_metric_summaries"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_metric_summaries_run_id_runs"),
    )
    op.create_index("ix_metric_summaries_key_last", "metric_summaries", ["key", "last"])

    op.create_table(
        "lineage_edges",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("src_type", sa.String(32), nullable=False),
        sa.Column("src_id", ID, nullable=False),
        sa.Column("dst_type", sa.String(32), nullable=False),
        sa.Column("dst_id", ID, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lineage_edges"),
        sa.UniqueConstraint("kind", "src_id", "dst_id", name="uq_lineage_edges_kind_src_id_dst_id"),
    )
    op.create_index("ix_lineage_edges_src_id", "lineage_edges", ["src_id"])
    op.create_index("ix_lineage_edges_dst_id", "lineage_edges", ["dst_id"])


def downgrade() -> None:
    op.drop_index("ix_lineage_edges_dst_id", table_name="lineage_edges")
    op.drop_index("ix_lineage_edges_src_id", table_name="lineage_edges")
    op.drop_table("lineage_edges")
    op.drop_index("ix_metric_summaries_key_last", table_name="metric_summaries")
    op.drop_table("metric_summaries")
    op.drop_table("metric_batches")
    op.drop_table("run_tags")
    op.drop_index("ix_params_key_number", table_name="params")
    op.drop_table("params")
    op.drop_index("ix_runs_status", table_name="runs")
    op.drop_index("ix_runs_parent_id", table_name="runs")
    op.drop_index("ix_runs_project_start_time", table_name="runs")
    op.drop_table("runs")
