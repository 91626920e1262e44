"""The metadata database: engines, transactions, retries and the schema revision check.

One :class:`Database` wraps one SQLAlchemy engine, on SQLite (the embedded
default, ``sqlite:////abs/path/meta.db``) or PostgreSQL
(``postgresql+psycopg://user@host/db``), with the same calling code:

- ``db.read()`` / ``db.write()``: a ``Connection`` inside one transaction,
  committed when the block ends normally, rolled back when it raises.
- ``db.run_write(fn)``: ``fn(conn)`` in a write transaction, re-run from the
  start when the database reports a transient conflict (SQLite busy/locked,
  PostgreSQL serialization failure, deadlock or lock timeout), for up to ``retry_seconds``.
  ``fn`` must therefore have no side effects outside the database.

Transactions (docs/format.md, section 6):

- SQLite: pysqlite's own transaction handling is switched off and the ``begin``
  event emits ``BEGIN IMMEDIATE`` for writers (they queue on the write lock
  up front, so two writers never deadlock on a lock upgrade) and a plain
  deferred ``BEGIN`` for readers (a consistent WAL snapshot; readers never
  block writers).
- PostgreSQL: the same model. Every write transaction first takes one
  transaction-level advisory lock (:data:`PG_WRITE_LOCK`), so writers run one
  at a time exactly as on SQLite, and runs ``READ COMMITTED`` so that each
  statement after the lock sees everything committed before it. Readers run
  ``REPEATABLE READ, READ ONLY`` (one snapshot; writers never block them).
  Code tested on SQLite is therefore correct on PostgreSQL: a read-modify-write
  inside one write block can neither lose an update nor trip over a concurrent
  unique insert. (``SERIALIZABLE`` alone is not enough: PostgreSQL reports a
  concurrent duplicate key as a unique violation, not as a retryable
  serialization failure, unless the transaction read that very key first.)
  Metadata write transactions are short, so one writer at a time is ample
  for a team server; the cost is one extra statement per write transaction.

Opening is cheap: the stored Alembic revision is compared with
:data:`HEAD_REVISION` with one query; Alembic is imported only when a
migration must actually run. The only third-party import here is SQLAlchemy.
"""

from __future__ import annotations

import os
import random
import time
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

from sqlalchemy import Table, create_engine, event, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

from mlark.errors import InvalidInput, StorageError, UnsupportedFormat
from mlark.meta.revision import BUSY_TIMEOUT_MS, HEAD_REVISION, KNOWN_REVISIONS, VERSION_TABLE

T = TypeVar("T")

#: ``run_write`` gives up after this many seconds of transient conflicts.
RETRY_SECONDS = 60.0

SUPPORTED_BACKENDS = ("sqlite", "postgresql")

#: Key of the transaction-level advisory lock every PostgreSQL writer holds ("mlark" in ASCII).
PG_WRITE_LOCK = 0x6D6C61726B
#: PostgreSQL gives up waiting for a lock (the write lock included) after this long; run_write retries.
PG_LOCK_TIMEOUT_MS = BUSY_TIMEOUT_MS

_SQLITE_TRANSIENT_MESSAGES = (
    "database is locked",
    "database is busy",
    "database table is locked",
    "database schema is locked",
)
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# serialization_failure, deadlock_detected, lock_not_available (lock_timeout expired)
_PG_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})

_WRITE_OPTION = "mlark_write"


# --------------------------------------------------------------------------- helpers


def mask_url(url: str | URL) -> str:
    """``url`` with its password replaced by ``***``, safe to print."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def is_transient(exc: BaseException) -> bool:
    """True if ``exc`` means "run the whole transaction again": busy/locked, serialization, deadlock, lock timeout."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate in _PG_TRANSIENT_SQLSTATES:
        return True
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return True
    message = str(orig).lower()
    return any(m in message for m in _SQLITE_TRANSIENT_MESSAGES)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).strip().splitlines() if line.strip()]
    return "; ".join(lines) or type(orig).__name__


def insert_ignore(table: Table, rows: Iterable[Mapping[str, Any]] | None = None, *, dialect: str) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for ``dialect`` ("sqlite" or "postgresql").

    With ``rows`` the statement carries them as a multi-row VALUES clause; for
    large batches leave ``rows`` out and pass them to ``conn.execute(stmt, rows)``
    (executemany), which batches efficiently on both backends.
    """
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        raise ValueError(f"insert_ignore: unsupported dialect {dialect!r}")
    stmt = dialect_insert(table)
    if rows is not None:
        rows = list(rows)
        if not rows:
            raise ValueError("insert_ignore: rows is empty; skip the statement instead")
        stmt = stmt.values(rows)
    return stmt.on_conflict_do_nothing()


# --------------------------------------------------------------------------- engines


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite must not issue BEGIN/COMMIT on its own: the "begin" event below does.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        # busy_timeout first, so that switching to WAL also waits for other processes.
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # WAL: readers never block the writer and the writer never blocks readers.
        # The mode is stored in the file; setting it again is a no-op.
        cur.execute("PRAGMA journal_mode = WAL")
        cur.fetchall()
        # Durability: in WAL mode synchronous=NORMAL never corrupts the database,
        # but a transaction committed shortly before a power loss or OS crash may
        # be rolled back on recovery (the WAL is fsynced only at checkpoints).
        # FULL fsyncs the WAL at every commit, so a version whose commit
        # returned survives kill -9 *and* power loss. One fsync per commit is
        # cheap next to the pack writes that precede every version record.
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
    finally:
        cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(_WRITE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def _postgresql_on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(_WRITE_OPTION):
        # The first statement of the transaction: wait (at most lock_timeout) for the
        # single-writer lock. lock_timeout is set per transaction, not in the startup
        # packet, so that connection poolers such as PgBouncer accept it; set_config
        # runs before the lock function in the same select list (one round trip).
        conn.exec_driver_sql(
            f"SELECT set_config('lock_timeout', '{int(PG_LOCK_TIMEOUT_MS)}', true), "
            f"pg_advisory_xact_lock({int(PG_WRITE_LOCK)})"
        )


def _parse_url(url: str | URL) -> URL:
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError as exc:
        raise InvalidInput(
            f"not a database URL: {mask_url(str(url))!s}; expected sqlite:////abs/path/meta.db "
            "or postgresql+psycopg://user@host/dbname",
            field="database",
            allowed=list(SUPPORTED_BACKENDS),
        ) from exc
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise InvalidInput(
            f"unsupported database {mask_url(parsed)}: mlark stores metadata in SQLite or PostgreSQL",
            field="database",
            value=backend,
            allowed=list(SUPPORTED_BACKENDS),
        )
    if parsed.drivername == "postgresql":
        # SQLAlchemy's default PostgreSQL driver is psycopg2; mlark depends on psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_path(url: URL) -> str | None:
    """File path of a SQLite URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):
        return None  # URI filename: leave it to SQLite
    return database


def _make_engine(url: URL) -> Engine:
    backend = url.get_backend_name()
    safe = mask_url(url)
    try:
        if backend == "sqlite":
            kwargs: dict[str, Any] = {
                "connect_args": {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            }
            if _sqlite_path(url) is None:
                # One shared connection, or every checkout would see a new empty database.
                kwargs["poolclass"] = StaticPool
            engine = create_engine(url, **kwargs)
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
        else:
            engine = create_engine(url, pool_pre_ping=True)
            event.listen(engine, "begin", _postgresql_on_begin)
    except (NoSuchModuleError, ImportError) as exc:
        hint = " (install it with: pip install 'mlark[postgres]')" if backend == "postgresql" else ""
        raise StorageError(
            f"cannot open the metadata database {safe}: its driver is not installed{hint}",
            url=safe,
        ) from exc
    except ArgumentError as exc:
        raise InvalidInput(f"bad database URL {safe}: {exc}", field="database", value=safe) from exc
    return engine


# --------------------------------------------------------------------------- Database


class Database:
    """The metadata database. Create with :meth:`open`; close with :meth:`close`.

    Thread-safe (the engine pools connections). Not fork-safe: a child
    process must open its own ``Database``.
    """

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self.url = url  # as given; may contain a password: print safe_url instead
        self.safe_url = mask_url(engine.url)
        self.dialect_name: str = engine.dialect.name
        self.retry_seconds = RETRY_SECONDS
        if self.dialect_name == "postgresql":
            self._write_options: dict[str, Any] = {_WRITE_OPTION: True, "isolation_level": "READ COMMITTED"}
            self._read_options: dict[str, Any] = {
                "isolation_level": "REPEATABLE READ",
                "postgresql_readonly": True,
            }
        else:
            self._write_options = {_WRITE_OPTION: True}
            self._read_options = {}

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, url: str | URL, *, create: bool = False) -> Database:
        """Open the database at ``url``.

        ``create=True`` creates the schema (runs every migration) if the
        database is empty. Otherwise the database must already be initialised;
        an older known schema revision is upgraded automatically and an unknown
        one (written by a newer mlark) is refused with :class:`UnsupportedFormat`.
        """
        parsed = _parse_url(url)
        if parsed.get_backend_name() == "sqlite" and not create:
            path = _sqlite_path(parsed)
            if path is not None and not os.path.exists(path):
                safe = mask_url(parsed)
                raise StorageError(
                    f"cannot open the metadata database {safe}: the file {path} does not exist",
                    url=safe,
                    path=path,
                )
        given = url if isinstance(url, str) else url.render_as_string(hide_password=False)
        db = cls(_make_engine(parsed), given)
        try:
            db._check_schema(create)
        except BaseException:
            db.close()
            raise
        return db

    def _check_schema(self, create: bool) -> None:
        found = self.run_read(_stored_revisions)
        if found == [HEAD_REVISION]:
            return
        if found:
            self._refuse_unknown(found)
        elif not create:
            raise UnsupportedFormat(
                f"the metadata database {self.safe_url} is not initialised (it has no mlark schema); "
                "create the repository with `mlark init` first",
                url=self.safe_url,
                found=None,
                understood=list(KNOWN_REVISIONS),
            )
        self.run_write(self._migrate)

    def _refuse_unknown(self, found: list[str]) -> None:
        unknown = [r for r in found if r not in KNOWN_REVISIONS]
        if unknown or len(found) > 1:
            raise UnsupportedFormat(
                f"the metadata database {self.safe_url} is at schema revision {', '.join(found)}, "
                f"which this version of mlark does not understand (it understands "
                f"{', '.join(KNOWN_REVISIONS)}); it was probably written by a newer mlark: upgrade mlark",
                url=self.safe_url,
                found=found,
                understood=list(KNOWN_REVISIONS),
            )

    def _migrate(self, conn: Connection) -> None:
        # Re-read under the write lock: two processes initialising or upgrading at
        # once run one after the other, and the second finds the schema at head.
        found = _stored_revisions(conn)
        if found == [HEAD_REVISION]:
            return
        if found:
            self._refuse_unknown(found)
        from mlark.meta import migrations  # imports alembic: only when a migration runs

        migrations.upgrade(conn, HEAD_REVISION)

    # ----------------------------------------------------------------- transactions

    def _connect(self, options: Mapping[str, Any]) -> Connection:
        try:
            conn = self._engine.connect()
        except DBAPIError as exc:
            if is_transient(exc):
                raise
            raise StorageError(
                f"cannot open the metadata database {self.safe_url}: {_reason(exc)}",
                url=self.safe_url,
            ) from exc
        if options:
            try:
                conn.execution_options(**options)
            except BaseException:
                conn.close()
                raise
        return conn

    @contextmanager
    def _transaction(self, options: Mapping[str, Any]) -> Iterator[Connection]:
        conn = self._connect(options)
        try:
            with conn.begin():
                yield conn
        finally:
            conn.close()

    def write(self) -> AbstractContextManager[Connection]:
        """Context manager: a ``Connection`` in a write transaction (one attempt, no retry).

        SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the advisory write lock. Commits when
        the block ends normally, rolls back when it raises. Prefer
        :meth:`run_write`, which retries transient conflicts.
        """
        return self._transaction(self._write_options)

    def read(self) -> AbstractContextManager[Connection]:
        """Context manager: a ``Connection`` in a read transaction (one consistent snapshot)."""
        return self._transaction(self._read_options)

    def run_write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in a write transaction and commit; return its result.

        On a transient conflict (SQLite busy/locked, PostgreSQL serialization
        failure, deadlock or lock timeout) the transaction is rolled back and ``fn`` runs
        again from the start, with a short randomised backoff, for up to
        ``retry_seconds``; then :class:`StorageError`. Other errors propagate
        after the rollback.
        """
        return self._retry(fn, self._write_options)

    def run_read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in a read transaction, retrying transient errors like :meth:`run_write`."""
        return self._retry(fn, self._read_options)

    def _retry(self, fn: Callable[[Connection], T], options: Mapping[str, Any]) -> T:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.002
        attempts = 0
        while True:
            attempts += 1
            try:
                with self._transaction(options) as conn:
                    return fn(conn)
            except DBAPIError as exc:
                if not is_transient(exc):
                    raise
                pause = delay * random.uniform(0.5, 1.5)
                if time.monotonic() + pause > deadline:
                    raise StorageError(
                        f"the metadata database {self.safe_url} stayed busy for "
                        f"{self.retry_seconds:.0f} s ({attempts} attempts): {_reason(exc)}",
                        url=self.safe_url,
                        attempts=attempts,
                    ) from exc
                time.sleep(pause)
                delay = min(delay * 2, 0.25)

    # ----------------------------------------------------------------- misc

    def insert_ignore(self, table: Table, rows: Iterable[Mapping[str, Any]] | None = None) -> Insert:
        """``INSERT ... ON CONFLICT DO NOTHING`` for this database (see module function :func:`insert_ignore`)."""
        return insert_ignore(table, rows, dialect=self.dialect_name)

    @property
    def engine(self) -> Engine:
        return self._engine

    def revision(self) -> str | None:
        """The schema revision stored in the database (None if not initialised)."""
        found = self.run_read(_stored_revisions)
        return found[0] if found else None

    def close(self) -> None:
        """Close every pooled connection. The object can still be used (connections reopen)."""
        self._engine.dispose()

    dispose = close

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.safe_url!r})"


def _stored_revisions(conn: Connection) -> list[str]:
    """Revisions in alembic_version; empty when the table is missing or empty."""
    if not sa_inspect(conn).has_table(VERSION_TABLE):
        return []
    return sorted(row[0] for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")))


__all__ = [
    "BUSY_TIMEOUT_MS",
    "Database",
    "HEAD_REVISION",
    "KNOWN_REVISIONS",
    "PG_WRITE_LOCK",
    "RETRY_SECONDS",
    "insert_ignore",
    "is_transient",
    "mask_url",
]
