"""A machine-local cache of file digests keyed by stat data, so unchanged files are not re-read.

Lives in .mlark/cache/stat.sqlite (stdlib sqlite3): it describes this machine's files, so it never
goes into the shared metadata database. Losing it costs only time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from mlark.core.tree import ChunkRef
from mlark.ops.scan import PlannedFile

# A file whose timestamps are this close to the moment it was cached may have changed again within
# the same timestamp tick after it was read ("racily clean", as git calls it): re-read it.
RACY_NS = 50_000_000
#: Paths per query of get_many (SQLite allows 32766 parameters; stay far below).
GET_SLICE = 500


def _chunks_json(chunks: tuple[ChunkRef, ...] | None) -> str | None:
    """The chunk list as JSON, written directly: digests are hex and sizes integers, so nothing needs
    escaping, and json.dumps per file costs more than the rest of the row."""
    if chunks is None:
        return None
    return "[" + ",".join(f'["{c.digest}",{c.size}]' for c in chunks) + "]"


class StatCache:
    """Every method degrades to "no cache" on a database error: the cache may cost time, never an add."""

    def __init__(self, meta_dir: Path) -> None:
        folder = meta_dir / "cache"
        self._db: sqlite3.Connection | None = None
        try:
            folder.mkdir(exist_ok=True)
            # Used by one thread at a time, not always the one that opened it (add writes it from a
            # helper thread while the version is recorded).
            db = sqlite3.connect(folder / "stat.sqlite", timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout=30000")
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
                " ino INTEGER, ctime_ns INTEGER, digest TEXT, chunks TEXT, cached_ns INTEGER)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS workspaces (path TEXT PRIMARY KEY, artifact TEXT)")
            self._db = db
        except (sqlite3.Error, OSError):
            self._db = None

    def get(self, f: PlannedFile) -> tuple[str, tuple[ChunkRef, ...] | None] | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT digest, chunks, cached_ns FROM files"
                " WHERE path=? AND size=? AND mtime_ns=? AND ino=? AND ctime_ns=?",
                (f.abspath, f.size, f.mtime_ns, f.ino, f.ctime_ns),
            ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or max(f.mtime_ns, f.ctime_ns) >= row[2] - RACY_NS:
            return None
        chunks = None if row[1] is None else tuple(ChunkRef(d, n) for d, n in json.loads(row[1]))
        return row[0], chunks

    def get_many(self, files: list[PlannedFile]) -> dict[str, tuple[str, tuple[ChunkRef, ...] | None]]:
        """get() for many files at once (a few queries instead of one per file), by absolute path."""
        if self._db is None or not files:
            return {}
        by_path = {f.abspath: f for f in files}
        paths = list(by_path)
        found: dict[str, tuple[str, tuple[ChunkRef, ...] | None]] = {}
        try:
            for i in range(0, len(paths), GET_SLICE):
                part = paths[i : i + GET_SLICE]
                rows = self._db.execute(
                    "SELECT path, size, mtime_ns, ino, ctime_ns, digest, chunks, cached_ns FROM files"
                    f" WHERE path IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                for path, size, mtime_ns, ino, ctime_ns, digest, chunks, cached_ns in rows:
                    f = by_path[path]
                    if (size, mtime_ns, ino, ctime_ns) != (f.size, f.mtime_ns, f.ino, f.ctime_ns):
                        continue
                    if max(f.mtime_ns, f.ctime_ns) >= cached_ns - RACY_NS:
                        continue
                    refs = None if chunks is None else tuple(ChunkRef(d, n) for d, n in json.loads(chunks))
                    found[path] = (digest, refs)
        except sqlite3.Error:
            return {}
        return found

    def put_many(self, items: list[tuple[PlannedFile, str, tuple[ChunkRef, ...] | None]]) -> None:
        now = time.time_ns()
        rows = [
            (f.abspath, f.size, f.mtime_ns, f.ino, f.ctime_ns, digest, _chunks_json(chunks), now)
            for f, digest, chunks in items
        ]
        if not rows or self._db is None:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?)", rows)
            self._db.execute("COMMIT")
        except sqlite3.Error:
            self._db.execute("ROLLBACK") if self._db.in_transaction else None

    def remember_workspace(self, path: str, artifact: str) -> None:
        if self._db is None:
            return
        try:
            self._db.execute("INSERT OR REPLACE INTO workspaces VALUES (?, ?)", (os.path.abspath(path), artifact))
        except sqlite3.Error:
            pass

    def workspace_artifact(self, path: str) -> str | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT artifact FROM workspaces WHERE path=?", (os.path.abspath(path),)).fetchone()
        except sqlite3.Error:
            return None
        return None if row is None else str(row[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
