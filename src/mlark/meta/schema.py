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
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
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
