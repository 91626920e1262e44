"""The reads behind getting a version back, on the embedded SQLite database, with stdlib sqlite3 alone.

Opening the metadata database through SQLAlchemy starts with importing it: 0.12 to 0.19 s on the
benchmark machine, a fifth of the time `mlark get` takes to write back a whole GiB. Getting a version
back needs three reads: the schema revision, the version a reference names, and where its chunks
are. This module asks SQLite for them directly, so `get`, `show` and `predict` on the embedded
database never import SQLAlchemy. Everything else still goes through :mod:`mlark.meta.db`.

One rule keeps the two paths from ever disagreeing: this module answers only the plain case.

- :meth:`SqliteReader.open` returns None unless the file exists and its schema revision is exactly
  :data:`HEAD_REVISION`; the caller then opens :class:`mlark.meta.db.Database`, which upgrades an
  older schema or refuses a newer one with its message.
- :meth:`SqliteReader.resolve` returns the version only when the reference names a live one. For
  anything else (no such artifact, version, alias or digest prefix; a prefix matching several
  versions; a removed version; a value it cannot read) it returns None and the caller asks
  :func:`mlark.meta.catalog.resolve`, which raises the error. The rows are read with the same joins,
  and values are converted as SQLAlchemy's types convert them; a test compares both paths on every
  kind of reference.
- :meth:`SqliteReader.lookup` is the query :class:`mlark.meta.chunkindex.SqlChunkIndex` sends
  straight to the driver.

Each call is one read transaction (a consistent WAL snapshot; readers never block the writer).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Sequence
from urllib.parse import quote

from mlark.core.refs import VersionRef
from mlark.core.types import Version
from mlark.meta.revision import BUSY_TIMEOUT_MS, HEAD_REVISION, VERSION_TABLE
from mlark.objectstore.index import ChunkLocation, PackInfo

#: Digests per ``IN (...)`` list (SQLite builds before 3.32 allow 999 parameters).
LOOKUP_SLICE = 900

_LOOKUP_SQL = 'SELECT digest, pack, "offset", stored_len, raw_len, flags FROM chunks WHERE digest IN'
_VERSION_SQL = (
    "SELECT v.id, v.artifact_id, a.name, a.type, v.number, v.digest, v.message, v.author, v.created_at,"
    " v.size, v.new_bytes, v.file_count, v.metadata, v.tags, p.number, v.removed_at"
    " FROM versions AS v JOIN artifacts AS a ON a.id = v.artifact_id"
    " LEFT OUTER JOIN versions AS p ON p.id = v.parent_id WHERE a.name = ? AND "
)
_BY_NUMBER = _VERSION_SQL + "v.number = ?"
# LIKE, as the catalog's query (ASCII case-insensitive in SQLite; prefixes are hex, so no wildcards).
_BY_PREFIX = _VERSION_SQL + "v.digest LIKE ? LIMIT 2"
_BY_ALIAS = _VERSION_SQL + "v.id = (SELECT al.version_id FROM aliases AS al WHERE al.artifact_id = a.id AND al.name = ?)"
_ALIASES_SQL = "SELECT name FROM aliases WHERE version_id = ? ORDER BY name"


def _slices(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _utc(value: object) -> datetime:
    """A stored time as :class:`mlark.meta.schema.UTCDateTime` returns it: aware, in UTC."""
    if not isinstance(value, str):
        raise ValueError(f"not a stored time: {value!r}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


class SqliteReader:
    """Read-only queries on one SQLite metadata database. Thread-safe (one connection, one lock)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "SqliteReader | None":
        """A reader of the database file at path, or None when this module should not read it: the file
        is missing or unreadable, or its schema revision is not exactly the one this code writes."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            return None
        try:
            # mode=rw: never create a missing file (opening through mlark.meta.db reports that).
            conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=rw", uri=True,
                                   timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error:
            return None
        reader = cls(conn)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            revisions = reader._read(lambda c: sorted(r[0] for r in c.execute(f"SELECT version_num FROM {VERSION_TABLE}")))
        except sqlite3.Error:
            revisions = None
        if revisions != [HEAD_REVISION]:
            reader.close()
            return None
        return reader

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")  # a read transaction: nothing to keep or undo

    # ----------------------------------------------------------------- versions

    def resolve(self, ref: VersionRef) -> Version | None:
        """The live version ref names, or None (ask mlark.meta.catalog: it raises the error)."""
        if ref.number is not None:
            sql, arg = _BY_NUMBER, ref.number
        elif ref.digest_prefix is not None:
            sql, arg = _BY_PREFIX, ref.digest_prefix + "%"
        else:
            sql, arg = _BY_ALIAS, ref.effective_alias

        def query(conn: sqlite3.Connection) -> Version | None:
            rows = conn.execute(sql, (ref.name, arg)).fetchall()
            if len(rows) != 1 or rows[0][15] is not None:
                return None
            names = tuple(r[0] for r in conn.execute(_ALIASES_SQL, (rows[0][0],)))
            return _version(rows[0], names)

        try:
            return self._read(query)  # type: ignore[no-any-return]
        except (sqlite3.Error, ValueError, TypeError):
            return None

    # ----------------------------------------------------------------- chunks

    def lookup(self, digests: Iterable[str]) -> dict[str, ChunkLocation]:
        """Locations of those digests that are indexed; missing digests are absent from the result."""
        wanted = list(dict.fromkeys(digests))
        if not wanted:
            return {}

        def query(conn: sqlite3.Connection) -> dict[str, ChunkLocation]:
            found: dict[str, ChunkLocation] = {}
            for part in _slices(wanted, LOOKUP_SLICE):
                sql = f"{_LOOKUP_SQL} ({', '.join('?' * len(part))})"
                for row in conn.execute(sql, tuple(part)):
                    found[row[0]] = ChunkLocation(row[0], row[1], int(row[2]), int(row[3]), int(row[4]), int(row[5]))
            return found

        return self._read(query)  # type: ignore[no-any-return]


def _version(r: Sequence[Any], aliases: tuple[str, ...]) -> Version:
    metadata = json.loads(r[12]) if r[12] is not None else None
    tags = json.loads(r[13]) if r[13] is not None else None
    return Version(
        id=r[0],
        artifact_id=r[1],
        name=r[2],
        type=r[3],
        number=r[4],
        digest=r[5],
        message=r[6],
        author=r[7],
        created_at=_utc(r[8]),
        size=r[9],
        new_bytes=r[10],
        file_count=r[11],
        metadata=dict(metadata or {}),
        tags=tuple(tags or ()),
        parent_number=r[14],
        aliases=aliases,
        removed_at=None,
    )


class ReaderFirstIndex:
    """The repository's chunk index: lookups through a :class:`SqliteReader` when there is one, and
    everything else (writes, scans, lookups on PostgreSQL) through the full index, made on first use."""

    def __init__(self, reader: SqliteReader | None, full: Callable[[], Any]) -> None:
        self._reader = reader
        self._full = full  # -> mlark.meta.chunkindex.SqlChunkIndex

    def lookup(self, digests: Iterable[str]) -> dict[str, ChunkLocation]:
        if self._reader is not None:
            wanted = list(digests)
            try:
                return self._reader.lookup(wanted)
            except sqlite3.Error:
                return self._full().lookup(wanted)  # type: ignore[no-any-return]  # it reports the error
        return self._full().lookup(digests)  # type: ignore[no-any-return]

    def lookup_in(self, conn: Any, digests: Iterable[str]) -> dict[str, ChunkLocation]:
        return self._full().lookup_in(conn, digests)  # type: ignore[no-any-return]

    def add_packs(self, packs: Iterable[PackInfo]) -> None:
        self._full().add_packs(packs)

    def add_packs_in(self, conn: Any, packs: Iterable[PackInfo]) -> None:
        self._full().add_packs_in(conn, packs)

    def remove_packs(self, pack_digests: Iterable[str]) -> None:
        self._full().remove_packs(pack_digests)

    def remove_packs_in(self, conn: Any, pack_digests: Iterable[str]) -> None:
        self._full().remove_packs_in(conn, pack_digests)

    def replace_all(self, packs: Iterable[PackInfo]) -> None:
        self._full().replace_all(packs)

    def pack_digests(self) -> set[str]:
        return self._full().pack_digests()  # type: ignore[no-any-return]

    def iter_chunks(self) -> Iterator[ChunkLocation]:
        return self._full().iter_chunks()  # type: ignore[no-any-return]

    def count(self) -> int:
        return self._full().count()  # type: ignore[no-any-return]

