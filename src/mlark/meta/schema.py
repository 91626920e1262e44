"""Tables of the metadata database (docs/format.md, section 6).

Ids that can leave the machine are UUIDv7 strings. Digests are 64 hex chars.
Times are timezone-aware UTC (``UTCDateTime`` normalises SQLite's naive values).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

ID = String(36)
DIGEST = String(64)
NAME = String(128)
#: params, metric and tag keys (mlark.tracking.keys)
KEY = String(256)


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware times")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("type", NAME, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("next_number", Integer, nullable=False, default=1),
)

versions = Table(
    "versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("artifact_id", ID, ForeignKey("artifacts.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("message", Text, nullable=False),
    Column("author", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("parent_id", ID, ForeignKey("versions.id"), nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("new_bytes", BigInteger, nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("removed_at", UTCDateTime, nullable=True),
    Column("removed_by", String(256), nullable=True),
    UniqueConstraint("artifact_id", "number"),
    Index(None, "artifact_id", "digest"),
    Index(None, "digest"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("artifact_id", ID, ForeignKey("artifacts.id"), primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("version_id", ID, ForeignKey("versions.id"), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "version_id"),
)

alias_log = Table(
    "alias_log",
    metadata,
    Column("id", ID, primary_key=True),
    Column("artifact_id", ID, ForeignKey("artifacts.id"), nullable=False),
    Column("alias", NAME, nullable=False),
    Column("from_version_id", ID, ForeignKey("versions.id"), nullable=True),
    Column("to_version_id", ID, ForeignKey("versions.id"), nullable=True),
    Column("author", String(256), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("message", Text, nullable=False),
    Index(None, "artifact_id", "alias", "at"),
)

packs = Table(
    "packs",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

chunks = Table(
    "chunks",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("pack", DIGEST, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("stored_len", Integer, nullable=False),
    Column("raw_len", Integer, nullable=False),
    Column("flags", SmallInteger, nullable=False),
    Index(None, "pack"),
)


# --------------------------------------------------------------------------- tracking (migration 0002)
# docs/design/tracking.md. Metric points are stored in batches of little-endian
# arrays, not one row per point; metric_summaries keeps what filters and ordering read.

runs = Table(
    "runs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project", NAME, nullable=False),
    Column("name", NAME, nullable=False),
    Column("status", String(16), nullable=False),  # running, finished, failed, killed, crashed
    Column("parent_id", ID, ForeignKey("runs.id"), nullable=True),
    Column("start_time", UTCDateTime, nullable=False),
    Column("end_time", UTCDateTime, nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("pid", Integer, nullable=True),
    Column("host", String(256), nullable=True),
    Column("user", String(256), nullable=True),
    Column("command", JSON, nullable=True),  # list of strings
    Column("git", JSON, nullable=True),  # commit, branch, remote, dirty, diff (blob digest), ...
    Column("environment", JSON, nullable=True),  # python, platform, packages
    Column("seeds", JSON, nullable=True),
    Column("summary", JSON, nullable=False),
    Column("error", Text, nullable=True),
    Index(None, "project", "start_time"),
    Index(None, "parent_id"),
    Index(None, "status"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", JSON, nullable=False),  # as given (non-finite floats as {"$float": "inf"})
    Column("text", Text, nullable=False),  # canonical string: the string itself, else canonical JSON
    Column("number", Double, nullable=True),  # float value when numeric (not bool); NULL for NaN
    Index(None, "key", "number"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

metric_batches = Table(
    "metric_batches",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("first_step", BigInteger, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("steps", LargeBinary, nullable=False),  # int64 little-endian
    Column("values", LargeBinary, nullable=False),  # float64 little-endian (NaN and +-inf exact)
    Column("times", LargeBinary, nullable=False),  # float64 little-endian, seconds since the epoch
)

metric_summaries = Table(
    "metric_summaries",
    metadata,
    Column("run_id", ID, ForeignKey("runs.id"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("last", Double, nullable=True),  # value at the highest step (latest logged on ties); NULL if NaN
    Column("last_step", BigInteger, nullable=False),
    Column("last_time", Double, nullable=False),  # seconds since the epoch
    Column("min", Double, nullable=True),  # over non-NaN values; NULL when there is none
    Column("max", Double, nullable=True),
    Column("last_is_nan", Boolean(create_constraint=False), nullable=False),
    Index(None, "key", "last"),
)

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(32), nullable=False),  # used: version -> run; produced: run -> version; registered_as,
    # version -> registered model version; derived_from: parent version -> derived version
    Column("src_type", String(32), nullable=False),  # "version" or "run"
    Column("src_id", ID, nullable=False),
    Column("dst_type", String(32), nullable=False),
    Column("dst_id", ID, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("message", Text, nullable=True),  # why (derived_from edges; migration 0004)
    Column("author", String(256), nullable=True),  # who declared it (derived_from edges; migration 0004)
    UniqueConstraint("kind", "src_id", "dst_id"),
    Index(None, "src_id"),
    Index(None, "dst_id"),
)


# --------------------------------------------------------------------------- model registry (migration 0003)
# docs/design/registry.md. A registered model is a task-level list of model versions with its own
# numbers, stages and aliases; every change is one row of registry_events (who, when, from, to, why).
# "rmv" = registered model version. Column names are short so that the convention's constraint
# names stay within PostgreSQL's 63 characters.

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("tags", JSON, nullable=False),  # {key: value}, both strings
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("next_number", Integer, nullable=False, default=1),
)

registered_model_versions = Table(
    "registered_model_versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model_id", ID, ForeignKey("registered_models.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("version_id", ID, ForeignKey("versions.id"), nullable=False),  # an artifact version of type model
    Column("stage", String(16), nullable=False),  # development, staging, production, archived
    Column("stage_changed_at", UTCDateTime, nullable=False),
    Column("description", Text, nullable=True),
    Column("tags", JSON, nullable=False),  # {key: value}, both strings
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("source_run_id", ID, ForeignKey("runs.id"), nullable=True),
    UniqueConstraint("model_id", "number"),
    UniqueConstraint("model_id", "version_id"),
    Index(None, "version_id"),
)

registered_model_aliases = Table(
    "registered_model_aliases",
    metadata,
    Column("model_id", ID, ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", NAME, primary_key=True),
    Column("rmv_id", ID, ForeignKey("registered_model_versions.id"), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "rmv_id"),
)

registry_events = Table(
    "registry_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("model_id", ID, ForeignKey("registered_models.id"), nullable=False),
    Column("rmv_id", ID, ForeignKey("registered_model_versions.id"), nullable=True),
    Column("kind", String(16), nullable=False),  # registered, stage, alias, description, tags
    Column("field", NAME, nullable=True),  # the stage entered, the alias, or the tag key
    Column("from_value", Text, nullable=True),  # stage, version number or text before (NULL: none)
    Column("to_value", Text, nullable=True),  # after (NULL: removed)
    Column("author", String(256), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("message", Text, nullable=False),
    Index(None, "model_id", "at"),
)
