"""Bulk reads through the DB-API cursor of a SQLAlchemy connection.

Lineage reads tens of thousands of narrow rows (ids, names, numbers). Building
a SQLAlchemy ``Row`` per row costs about three times the query itself on
SQLite, so these reads use the driver's cursor directly, inside the
transaction the caller holds. Statements are written with ``?`` placeholders
and rewritten for drivers that use ``%s`` (psycopg). Nothing here takes user
text as SQL: only ids are ever bound, as parameters.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence, TypeVar

from sqlalchemy import Connection

#: Ids bound per ``IN (...)`` list (well below SQLite's and PostgreSQL's parameter limits).
IN_CHUNK = 500
#: Above this many ids, scanning the whole (narrow) table and filtering in Python beats chunked IN lists.
SCAN_ABOVE = 4000

T = TypeVar("T")


def rows(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Every row of ``sql`` (``?`` placeholders) as plain tuples, in the caller's transaction."""
    if conn.dialect.paramstyle not in ("qmark", "numeric"):
        sql = sql.replace("?", "%s")
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return cursor.fetchall()
    finally:
        cursor.close()


def chunks(ids: Sequence[str], size: int = IN_CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def rows_for(conn: Connection, select_sql: str, key_column: str, ids: Iterable[str],
             *, where: str | None = None) -> list[tuple[Any, ...]]:
    """Rows of ``select_sql`` whose ``key_column`` is one of ``ids`` (given once each).

    Few ids: ``WHERE key_column IN (?, ...)`` in chunks (index look-ups). Many ids: one scan of
    the whole statement, filtered here (the first column of each row must be the key).
    ``where`` is an extra fixed condition (no parameters).
    """
    wanted = ids if isinstance(ids, (list, tuple)) else list(ids)
    if not wanted:
        return []
    extra = f" AND ({where})" if where else ""
    if len(wanted) > SCAN_ABOVE:
        keep = set(wanted)
        clause = f" WHERE {where}" if where else ""
        return [r for r in rows(conn, select_sql + clause) if r[0] in keep]
    out: list[tuple[Any, ...]] = []
    for part in chunks(wanted):
        marks = ", ".join("?" * len(part))
        out.extend(rows(conn, f"{select_sql} WHERE {key_column} IN ({marks}){extra}", part))
    return out


def grouped(pairs: Iterable[tuple[str, T]]) -> dict[str, list[T]]:
    out: dict[str, list[T]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out
