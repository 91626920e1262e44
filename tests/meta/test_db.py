"""Database: opening, pragmas, transactions, retries, concurrency, error translation."""

from __future__ import annotations

import multiprocessing
import socket
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from mlark.core.ids import new_id
from mlark.errors import InvalidInput, StorageError
from mlark.meta.db import BUSY_TIMEOUT_MS, Database, insert_ignore, is_transient, mask_url
from mlark.meta.schema import artifacts, packs

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture
def db(database_url: str) -> Any:
    database = Database.open(database_url, create=True)
    yield database
    database.close()


def _pack_row(n: int) -> dict[str, Any]:
    return {"digest": f"{n:064x}", "size": n, "chunk_count": 0, "created_at": NOW}


def _count(db: Database, table: Any) -> int:
    return db.run_read(lambda conn: conn.execute(select(func.count()).select_from(table)).scalar_one())


def _locked_error(message: str = "database is locked") -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError(message))


# --------------------------------------------------------------------------- SQLite settings


def test_sqlite_connections_use_wal_busy_timeout_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'meta.db'}", create=True)
    try:
        assert db.dialect_name == "sqlite"
        for transaction in (db.read, db.write):
            with transaction() as conn:
                pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
                assert pragma("journal_mode") == "wal"
                assert pragma("busy_timeout") == BUSY_TIMEOUT_MS == 30000
                assert pragma("synchronous") == 2  # FULL
                assert pragma("foreign_keys") == 1
        # a second, freshly opened connection gets the same settings
        with db.read() as first, db.read() as second:
            assert first.connection.dbapi_connection is not second.connection.dbapi_connection
            assert second.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            assert second.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.close()
    # WAL is persistent in the file
    raw = sqlite3.connect(tmp_path / "meta.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_sqlite_writers_take_the_write_lock_up_front(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    db = Database.open(f"sqlite:///{path}", create=True)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with db.write():
            # nothing executed yet, but BEGIN IMMEDIATE already holds the write lock
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        with db.read() as conn:
            conn.execute(select(func.count()).select_from(packs)).scalar_one()
            # a reader does not block a writer (deferred BEGIN, WAL)
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()
        db.close()


def test_sqlite_foreign_keys_are_enforced(tmp_path: Path) -> None:
    from mlark.meta.schema import aliases

    db = Database.open(f"sqlite:///{tmp_path / 'meta.db'}", create=True)
    try:
        with pytest.raises(IntegrityError):
            with db.write() as conn:
                conn.execute(
                    aliases.insert().values(artifact_id=new_id(), name="x", version_id=new_id(), updated_at=NOW)
                )
    finally:
        db.close()


def test_in_memory_sqlite_keeps_one_database() -> None:
    db = Database.open("sqlite://", create=True)
    try:
        db.run_write(lambda conn: conn.execute(packs.insert().values(_pack_row(1))))
        assert _count(db, packs) == 1
    finally:
        db.close()


# --------------------------------------------------------------------------- transactions


def test_write_commits(db: Database) -> None:
    with db.write() as conn:
        conn.execute(packs.insert().values(_pack_row(1)))
    assert _count(db, packs) == 1


def test_write_rolls_back_on_exception(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with db.write() as conn:
            conn.execute(packs.insert().values(_pack_row(1)))
            assert conn.execute(select(func.count()).select_from(packs)).scalar_one() == 1
            raise RuntimeError("boom")
    assert _count(db, packs) == 0


def test_run_write_rolls_back_on_exception(db: Database) -> None:
    def fn(conn: Any) -> None:
        conn.execute(packs.insert().values(_pack_row(1)))
        raise KeyError("nope")

    with pytest.raises(KeyError):
        db.run_write(fn)
    assert _count(db, packs) == 0


def test_read_sees_one_snapshot_and_returns_values(db: Database) -> None:
    db.run_write(lambda conn: conn.execute(packs.insert().values(_pack_row(1))))
    assert db.run_read(lambda conn: conn.execute(select(packs.c.size)).scalar_one()) == 1


@pytest.mark.postgres
def test_postgres_read_transactions_are_read_only(pg_cluster: Any) -> None:
    name = pg_cluster.create_database()
    db = Database.open(pg_cluster.url(name), create=True)
    try:
        with pytest.raises(Exception, match="read-only"):
            with db.read() as conn:
                conn.execute(packs.insert().values(_pack_row(1)))
        assert _count(db, packs) == 0
    finally:
        db.close()
        pg_cluster.drop_database(name)


# --------------------------------------------------------------------------- retries


def test_run_write_retries_transient_errors(db: Database) -> None:
    calls = []

    def fn(conn: Any) -> str:
        calls.append(1)
        conn.execute(packs.insert().values(_pack_row(len(calls))))
        if len(calls) < 3:
            raise _locked_error("database is locked" if len(calls) == 1 else "database is busy")
        return "done"

    assert db.run_write(fn) == "done"
    assert len(calls) == 3
    # the failed attempts were rolled back: only the third attempt's row is there
    assert db.run_read(lambda conn: conn.execute(select(packs.c.size)).scalars().all()) == [3]


def test_run_write_does_not_retry_other_errors(db: Database) -> None:
    calls = []

    def fn(conn: Any) -> None:
        calls.append(1)
        conn.execute(packs.insert().values(_pack_row(1)))
        conn.execute(packs.insert().values(_pack_row(1)))  # primary key violation

    with pytest.raises(IntegrityError):
        db.run_write(fn)
    assert len(calls) == 1


def test_run_write_gives_up_with_storage_error(db: Database) -> None:
    db.retry_seconds = 0.05

    def fn(conn: Any) -> None:
        raise _locked_error()

    with pytest.raises(StorageError, match="stayed busy") as info:
        db.run_write(fn)
    assert isinstance(info.value.__cause__, OperationalError)


def test_is_transient() -> None:
    class PgError(Exception):
        def __init__(self, sqlstate: str) -> None:
            super().__init__("could not serialize access")
            self.sqlstate = sqlstate

    assert is_transient(_locked_error())
    assert is_transient(_locked_error("database is busy"))
    assert is_transient(OperationalError("x", {}, PgError("40001")))
    assert is_transient(OperationalError("x", {}, PgError("40P01")))
    assert not is_transient(OperationalError("x", {}, PgError("23505")))
    assert not is_transient(OperationalError("x", {}, sqlite3.OperationalError("no such table: x")))
    assert not is_transient(RuntimeError("database is locked"))


# --------------------------------------------------------------------------- concurrency


def _concurrent_writer(url: str, artifact_id: str, count: int) -> int:
    """Child process: ``count`` read-modify-write transactions on one counter row."""
    db = Database.open(url)

    def step(conn: Any) -> None:
        number = conn.execute(select(artifacts.c.next_number).where(artifacts.c.id == artifact_id)).scalar_one()
        conn.execute(packs.insert().values(_pack_row(number)))
        conn.execute(artifacts.update().where(artifacts.c.id == artifact_id).values(next_number=number + 1))

    try:
        for _ in range(count):
            db.run_write(step)
    finally:
        db.close()
    return count


WRITER_PROCESSES = 6


@pytest.fixture(scope="module")
def process_pool() -> Any:
    """Spawned worker processes, shared by the concurrency tests (spawning costs seconds)."""
    with multiprocessing.get_context("spawn").Pool(WRITER_PROCESSES) as pool:
        yield pool


def test_concurrent_writers_from_several_processes(db: Database, process_pool: Any) -> None:
    processes, per_process = WRITER_PROCESSES, 100
    artifact_id = new_id()
    db.run_write(
        lambda conn: conn.execute(
            artifacts.insert().values(
                id=artifact_id, name="counter", type="dataset", created_at=NOW, created_by="t", next_number=1
            )
        )
    )
    results = process_pool.starmap(
        _concurrent_writer, [(db.url, artifact_id, per_process)] * processes, chunksize=1
    )
    assert results == [per_process] * processes
    total = processes * per_process
    # every increment happened exactly once: no lost update, no duplicate, no error
    sizes = db.run_read(lambda conn: conn.execute(select(packs.c.size).order_by(packs.c.size)).scalars().all())
    assert sizes == list(range(1, total + 1))
    next_number = db.run_read(lambda conn: conn.execute(select(artifacts.c.next_number)).scalar_one())
    assert next_number == total + 1


# --------------------------------------------------------------------------- insert_ignore


def test_insert_ignore_keeps_the_existing_row(db: Database) -> None:
    first = _pack_row(1)
    db.run_write(lambda conn: conn.execute(db.insert_ignore(packs, [first])))
    changed = dict(first, size=999)
    db.run_write(lambda conn: conn.execute(db.insert_ignore(packs, [changed, _pack_row(2)])))
    sizes = db.run_read(lambda conn: conn.execute(select(packs.c.size).order_by(packs.c.size)).scalars().all())
    assert sizes == [1, 2]
    # executemany form
    db.run_write(lambda conn: conn.execute(db.insert_ignore(packs), [changed, _pack_row(3)]))
    assert _count(db, packs) == 3


def test_insert_ignore_rejects_unknown_dialect_and_empty_rows() -> None:
    with pytest.raises(ValueError):
        insert_ignore(packs, dialect="mysql")
    with pytest.raises(ValueError):
        insert_ignore(packs, [], dialect="sqlite")


# --------------------------------------------------------------------------- opening and errors


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_a_storage_error_naming_the_url() -> None:
    port = _closed_port()
    url = f"postgresql+psycopg://mlark:s3cret@127.0.0.1:{port}/meta"
    with pytest.raises(StorageError) as info:
        Database.open(url)
    message = str(info.value)
    assert f"127.0.0.1:{port}/meta" in message
    assert "s3cret" not in message and "***" in message
    assert info.value.__cause__ is not None
    assert isinstance(info.value, OSError)


def test_sqlite_in_a_missing_folder_is_a_storage_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'meta.db'}"
    with pytest.raises(StorageError, match="cannot open the metadata database sqlite:///"):
        Database.open(url, create=True)


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    with pytest.raises(StorageError, match="does not exist"):
        Database.open(f"sqlite:///{path}")
    assert not path.exists()


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="not a database"):
        Database.open(f"sqlite:///{path}")


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url at all", "oracle://x"])
def test_unsupported_urls_are_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput):
        Database.open(url)


@pytest.mark.postgres
def test_plain_postgresql_scheme_uses_psycopg(pg_cluster: Any) -> None:
    name = pg_cluster.create_database()
    try:
        url = pg_cluster.url(name).replace("postgresql+psycopg://", "postgresql://")
        db = Database.open(url, create=True)
        try:
            assert db.dialect_name == "postgresql"
            assert db.engine.url.drivername == "postgresql+psycopg"
            assert db.url == url
        finally:
            db.close()
    finally:
        pg_cluster.drop_database(name)


def test_mask_url() -> None:
    assert mask_url("postgresql+psycopg://u:pw@h:5/db") == "postgresql+psycopg://u:***@h:5/db"
    assert mask_url("sqlite:////a/b.db") == "sqlite:////a/b.db"


def test_database_is_a_context_manager(database_url: str) -> None:
    with Database.open(database_url, create=True) as db:
        assert db.dialect_name in ("sqlite", "postgresql")
        assert repr(db).startswith("Database(")
        db.run_read(lambda conn: conn.execute(text("SELECT 1")).scalar_one())


def test_run_write_waits_for_a_writer_that_holds_the_lock(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real lock conflict: the second writer's lock wait times out, is retried, and succeeds."""
    import threading
    import time

    import mlark.meta.db as dbmod

    # short lock waits, so that the retry loop (not the database's own wait) does the work
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(dbmod, "PG_LOCK_TIMEOUT_MS", 50)
    holder = Database.open(database_url, create=True)
    waiter = Database.open(database_url)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.write() as conn:
            conn.execute(packs.insert().values(_pack_row(1)))
            locked.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(10)
        # while the lock is held, a writer with a short retry budget gives up cleanly
        waiter.retry_seconds = 0.2
        with pytest.raises(StorageError, match="stayed busy"):
            waiter.run_write(lambda conn: conn.execute(packs.insert().values(_pack_row(2))))
        # release it a little later: run_write keeps retrying and then succeeds
        waiter.retry_seconds = 30
        threading.Timer(0.3, release.set).start()
        started = time.monotonic()
        waiter.run_write(lambda conn: conn.execute(packs.insert().values(_pack_row(3))))
        assert time.monotonic() - started >= 0.2
    finally:
        release.set()
        thread.join(10)
        holder.close()
    assert _count(waiter, packs) == 2
    waiter.close()
