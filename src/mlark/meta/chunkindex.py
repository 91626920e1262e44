"""The chunk index (docs/format.md, sections 1 and 6) on the metadata database.

Implements the :class:`mlark.objectstore.index.ChunkIndex` protocol on the
``packs`` and ``chunks`` tables. The index is derived data: every row can be
rebuilt from the pack footers (:meth:`SqlChunkIndex.replace_all`).

Rules:

- A chunk already indexed keeps its location: adding a pack that repeats a
  chunk does not move it (``INSERT ... ON CONFLICT DO NOTHING``). Within one
  call the first pack listing a chunk wins.
- Adding the same pack twice is a no-op.
- ``add_packs_in`` / ``remove_packs_in`` work inside a transaction the caller
  already holds, so the ops layer can index new packs and record a version in
  one transaction (write order, section 7), and ``gc`` can switch a rewritten
  pack in one transaction.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.engine import Connection

from mlark.meta.db import Database, insert_ignore
from mlark.meta.schema import chunks as chunks_table
from mlark.meta.schema import packs as packs_table
from mlark.objectstore.index import ChunkLocation, PackInfo

#: Digests per ``IN (...)`` list: well under every backend's bound-parameter limit.
LOOKUP_SLICE = 500
#: Rows per executemany batch when inserting chunk rows.
INSERT_BATCH = 5_000
#: Rows per page of :meth:`SqlChunkIndex.iter_chunks`.
ITER_PAGE = 10_000

_COLUMNS = (
    chunks_table.c.digest,
    chunks_table.c.pack,
    chunks_table.c.offset,
    chunks_table.c.stored_len,
    chunks_table.c.raw_len,
    chunks_table.c.flags,
)
_LOOKUP_SQL = 'SELECT digest, pack, "offset", stored_len, raw_len, flags FROM chunks WHERE digest IN'
_PAGE_FIRST = select(*_COLUMNS).order_by(chunks_table.c.digest).limit(bindparam("limit"))
_PAGE_NEXT = (
    select(*_COLUMNS)
    .where(chunks_table.c.digest > bindparam("after"))
    .order_by(chunks_table.c.digest)
    .limit(bindparam("limit"))
)


def _slices(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _location(row: Any) -> ChunkLocation:
    return ChunkLocation(row[0], row[1], int(row[2]), int(row[3]), int(row[4]), int(row[5]))


class SqlChunkIndex:
    """Chunk digest -> location, stored in the metadata database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def database(self) -> Database:
        return self._db

    # ----------------------------------------------------------------- reads

    def lookup(self, digests: Iterable[str]) -> dict[str, ChunkLocation]:
        """Locations of those digests that are indexed; missing digests are absent from the result."""
        wanted = list(dict.fromkeys(digests))
        if not wanted:
            return {}
        return self._db.run_read(lambda conn: self.lookup_in(conn, wanted))

    def lookup_in(self, conn: Connection, digests: Iterable[str]) -> dict[str, ChunkLocation]:
        """:meth:`lookup` inside a transaction the caller holds."""
        wanted = list(dict.fromkeys(digests))
        found: dict[str, ChunkLocation] = {}
        # Thousands of digests per get: straight to the driver, rows fetched in one call per slice
        # (SQLAlchemy's per-row result processing costs more than the query).
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        for part in _slices(wanted, LOOKUP_SLICE):
            sql = f"{_LOOKUP_SQL} ({', '.join([mark] * len(part))})"
            for row in conn.exec_driver_sql(sql, tuple(part)).fetchall():
                found[row[0]] = _location(row)
        return found

    def pack_digests(self) -> set[str]:
        """Digests of every indexed pack."""
        return self._db.run_read(
            lambda conn: {row[0] for row in conn.execute(select(packs_table.c.digest))}
        )

    def iter_chunks(self) -> Iterator[ChunkLocation]:
        """Every indexed chunk, in digest order.

        Reads in pages of :data:`ITER_PAGE` rows, each in its own short read
        transaction, so a slow consumer never holds the database open; chunks
        added or removed while iterating may or may not be seen.
        """
        after: str | None = None
        while True:
            if after is None:
                rows = self._db.run_read(
                    lambda conn: list(conn.execute(_PAGE_FIRST, {"limit": ITER_PAGE}))
                )
            else:
                key = after
                rows = self._db.run_read(
                    lambda conn: list(conn.execute(_PAGE_NEXT, {"after": key, "limit": ITER_PAGE}))
                )
            for row in rows:
                yield _location(row)
            if len(rows) < ITER_PAGE:
                return
            after = rows[-1][0]

    def count(self) -> int:
        """Number of indexed chunks."""
        return self._db.run_read(
            lambda conn: int(conn.execute(select(func.count()).select_from(chunks_table)).scalar_one())
        )

    # ----------------------------------------------------------------- writes

    def add_packs(self, packs: Iterable[PackInfo]) -> None:
        """Index every entry of these packs in one write transaction (retried on conflicts)."""
        packs = list(packs)
        if not packs:
            return
        self._db.run_write(lambda conn: self.add_packs_in(conn, packs))

    def add_packs_in(self, conn: Connection, packs: Iterable[PackInfo]) -> None:
        """:meth:`add_packs` inside a write transaction the caller already holds."""
        now = datetime.now(timezone.utc)
        pack_rows: list[dict[str, Any]] = []
        chunk_rows: list[tuple[str, str, int, int, int, int]] = []  # digest, pack, offset, stored_len, raw_len, flags
        seen: set[str] = set()
        for pack in packs:
            pack_rows.append(
                {"digest": pack.digest, "size": pack.size, "chunk_count": len(pack.entries), "created_at": now}
            )
            for entry in pack.entries:
                if entry.pack != pack.digest:
                    raise ValueError(
                        f"chunk {entry.digest} is listed in pack {pack.digest} but says it lives in {entry.pack}"
                    )
                if entry.digest in seen:
                    continue
                seen.add(entry.digest)
                chunk_rows.append(
                    (entry.digest, pack.digest, entry.offset, entry.stored_len, entry.raw_len, entry.flags)
                )
        if not pack_rows:
            return
        dialect = conn.dialect.name
        conn.execute(insert_ignore(packs_table, dialect=dialect), pack_rows)
        if chunk_rows:
            # The chunk index takes thousands of rows per add: go straight to the driver's executemany
            # (SQLAlchemy's per-row parameter processing costs more than the inserts themselves).
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            sql = (
                'INSERT INTO chunks (digest, pack, "offset", stored_len, raw_len, flags) '
                f"VALUES ({', '.join([mark] * 6)}) ON CONFLICT (digest) DO NOTHING"
            )
            for batch in _slices(chunk_rows, INSERT_BATCH):
                conn.exec_driver_sql(sql, list(batch))

    def remove_packs(self, pack_digests: Iterable[str]) -> None:
        """Forget these packs and every chunk located in them, in one write transaction."""
        digests = list(dict.fromkeys(pack_digests))
        if not digests:
            return
        self._db.run_write(lambda conn: self.remove_packs_in(conn, digests))

    def remove_packs_in(self, conn: Connection, pack_digests: Iterable[str]) -> None:
        """:meth:`remove_packs` inside a write transaction the caller already holds."""
        digests = list(dict.fromkeys(pack_digests))
        for part in _slices(digests, LOOKUP_SLICE):
            conn.execute(delete(chunks_table).where(chunks_table.c.pack.in_(list(part))))
            conn.execute(delete(packs_table).where(packs_table.c.digest.in_(list(part))))

    def replace_all(self, packs: Iterable[PackInfo]) -> None:
        """Drop the whole index and index exactly these packs, in one write transaction."""
        packs = list(packs)

        def fn(conn: Connection) -> None:
            conn.execute(delete(chunks_table))
            conn.execute(delete(packs_table))
            self.add_packs_in(conn, packs)

        self._db.run_write(fn)


__all__ = ["SqlChunkIndex"]
