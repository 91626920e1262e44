"""Schema revision constants of the metadata database, importable without SQLAlchemy."""

from __future__ import annotations

#: The Alembic revision this code writes (mlark/meta/migrations/versions).
HEAD_REVISION = "0004"
#: Every revision this code can read or upgrade from, oldest first.
KNOWN_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004")

VERSION_TABLE = "alembic_version"

#: SQLite waits this long for a lock inside one statement before reporting "database is locked".
BUSY_TIMEOUT_MS = 30_000
