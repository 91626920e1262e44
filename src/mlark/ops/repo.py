"""Repo: one repository, joining the object store and the metadata database. The public entry point.

On the embedded SQLite database a repository opens without SQLAlchemy: resolving references and
locating chunks go through :mod:`mlark.meta.sqlite_read`, and :attr:`Repo.db` (SQLAlchemy, every
other query and every write) is opened on first use. On PostgreSQL it is opened at once.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from mlark.core.refs import parse_ref
from mlark.core.tree import Tree
from mlark.core.types import AliasMove, Artifact, Version
from mlark.errors import IntegrityError, InvalidInput
from mlark.meta.sqlite_read import ReaderFirstIndex, SqliteReader
from mlark.objectstore.store import ObjectStore
from mlark.ops import config as cfg
from mlark.ops.progress import NoProgress, Progress
from mlark.storage.local import LocalBackend

if TYPE_CHECKING:
    from mlark.meta.chunkindex import SqlChunkIndex
    from mlark.meta.db import Database
    from mlark.ops.add import AddOutcome
    from mlark.ops.fsck import FsckReport
    from mlark.ops.gc import GcReport
    from mlark.ops.get import GetReport
    from mlark.ops.runs import Run
    from mlark.ops.status import StatusReport


def default_author() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class Repo:
    """A repository: ``Repo.init(path)`` creates one, ``Repo.open()`` finds one by walking up."""

    def __init__(self, root: Path, config: cfg.RepoConfig, db: "Database | None", *, author: str | None = None,
                 reader: SqliteReader | None = None) -> None:
        """db: the opened database, or None to open it on first use (then reader, if given, answers the
        reads it can meanwhile; see mlark.meta.sqlite_read)."""
        self.root = root
        self.meta_dir = root / cfg.DIRNAME
        self.config = config
        self._db = db
        self._reader = reader
        self._full_index: "SqlChunkIndex | None" = None
        self._open_lock = threading.Lock()
        self.author = author or default_author()
        self.index = ReaderFirstIndex(reader, self._sql_index)
        self.backend = LocalBackend(str(self.meta_dir), tmp_dir=str(self.meta_dir / "tmp"))
        self.store = ObjectStore(self.backend, self.index, str(self.meta_dir / "tmp"), config.chunking)
        self._stat_cache: Any = None

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def init(cls, path: str | os.PathLike[str] = ".", *, database: str | None = None,
             author: str | None = None) -> "Repo":
        root = Path(path).resolve()
        meta_dir = root / cfg.DIRNAME
        if (meta_dir / cfg.CONFIG_NAME).exists():
            raise InvalidInput(f"{meta_dir} already holds an mlark repository", path=str(meta_dir))
        root.mkdir(parents=True, exist_ok=True)
        config = cfg.new_config(database)
        staging = root / f".mlark-init-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "packs").mkdir(parents=True)
        (staging / "tmp").mkdir()
        (staging / "cache").mkdir()
        from mlark.meta.db import Database

        try:
            url = database or _sqlite_url(meta_dir)
            db_url = database or _sqlite_url(staging)
            Database.open(db_url, create=True).close()
            cfg.write_config(staging, config)
            os.replace(staging, meta_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls(root, config, Database.open(url), author=author,
                   reader=SqliteReader.open(file) if (file := _sqlite_file(database, meta_dir)) else None)

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *, author: str | None = None) -> "Repo":
        root = cfg.find_root(path)
        config = cfg.read_config(root / cfg.DIRNAME)
        file = _sqlite_file(config.database, root / cfg.DIRNAME)
        if file is not None:
            # A SQLite file at the current schema revision: no SQLAlchemy until a query needs it.
            reader = SqliteReader.open(file)
            if reader is not None:
                return cls(root, config, None, author=author, reader=reader)
        from mlark.meta.db import Database

        # Anything else is opened in full now: a missing file, an older schema (upgraded) or a newer
        # one (refused) is reported by Repo.open, as always.
        db = Database.open(config.database or _sqlite_url(root / cfg.DIRNAME))
        return cls(root, config, db, author=author)

    @property
    def db(self) -> "Database":
        """The metadata database (SQLAlchemy), opened on first use."""
        if self._db is None:
            with self._open_lock:
                if self._db is None:
                    from mlark.meta.db import Database

                    self._db = Database.open(self.config.database or _sqlite_url(self.meta_dir))
        return self._db

    def _sql_index(self) -> "SqlChunkIndex":
        if self._full_index is None:
            from mlark.meta.chunkindex import SqlChunkIndex

            self._full_index = SqlChunkIndex(self.db)
        return self._full_index

    def close(self) -> None:
        self.backend.close()
        if self._stat_cache is not None:
            self._stat_cache.close()
            self._stat_cache = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
            self.index = ReaderFirstIndex(None, self._sql_index)
            self.store.index = self.index
        if self._db is not None:
            self._db.close()

    def __enter__(self) -> "Repo":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stat_cache(self) -> Any:
        if self._stat_cache is None:
            from mlark.ops.statcache import StatCache

            self._stat_cache = StatCache(self.meta_dir)
        return self._stat_cache

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    # -- verbs ---------------------------------------------------------------------------------

    def add(self, path: str | os.PathLike[str], *, name: str, message: str, type: str | None = None,
            metadata: dict[str, Any] | None = None, tags: Sequence[str] = (), aliases: Sequence[str] = (),
            progress: Progress | None = None) -> Version:
        """Commit the file or folder at path as a new version of artifact name (or return the identical one)."""
        return self.add_outcome(path, name=name, message=message, type=type, metadata=metadata, tags=tags,
                                aliases=aliases, progress=progress).version

    def add_outcome(self, path: str | os.PathLike[str], *, name: str, message: str, type: str | None = None,
                    metadata: dict[str, Any] | None = None, tags: Sequence[str] = (),
                    aliases: Sequence[str] = (), progress: Progress | None = None) -> "AddOutcome":
        from mlark.ops.add import add

        return add(self, path, name=name, message=message, type=type, metadata=metadata, tags=tags,
                   aliases=aliases, progress=progress or NoProgress())

    def get(self, ref: str, to: str | os.PathLike[str] | None = None, *,
            progress: Progress | None = None) -> Path:
        """Write the version's files into folder ``to`` (default: ./<name>); returns the folder."""
        return self.get_report(ref, to, progress=progress).path

    def get_report(self, ref: str, to: str | os.PathLike[str] | None = None, *,
                   progress: Progress | None = None) -> "GetReport":
        from mlark.ops.get import get

        version = self.resolve(ref)
        dest = Path(to) if to is not None else Path.cwd() / version.name
        return get(self, version, dest, progress or NoProgress())

    def read_file(self, ref: str, path: str | None = None) -> Iterable[bytes]:
        """Stream one file of a version (the only file when path is None), verified."""
        from mlark.ops.get import stream_file

        return stream_file(self, self.resolve(ref), path)

    def resolve(self, ref: str) -> Version:
        parsed = parse_ref(ref)
        if self._reader is not None:
            found = self._reader.resolve(parsed)
            if found is not None:
                return found
        from mlark.meta import catalog  # every other case, and every error, comes from the catalog

        with self.db.read() as conn:
            return catalog.resolve(conn, parsed)

    def tree(self, version: Version | str) -> Tree:
        v = self.resolve(version) if isinstance(version, str) else version
        data = self.store.read_chunk(v.digest)
        tree = Tree.decode(data)
        if tree.digest != v.digest:
            raise IntegrityError(f"tree of {v.ref} does not match its digest", ref=v.ref)
        return tree

    def history(self, name: str, *, include_removed: bool = False, limit: int | None = None) -> list[Version]:
        from mlark.core.names import validate_name
        from mlark.meta import catalog

        with self.db.read() as conn:
            return catalog.history(conn, validate_name(name), include_removed=include_removed, limit=limit)

    def artifacts(self) -> list[Artifact]:
        from mlark.meta import catalog

        with self.db.read() as conn:
            return catalog.list_artifacts(conn)

    def alias_set(self, ref: str, alias: str, *, message: str = "") -> AliasMove | None:
        from mlark.ops.alias import set_alias

        return set_alias(self, ref, alias, message)

    def alias_remove(self, name: str, alias: str, *, message: str = "") -> AliasMove | None:
        from mlark.ops.alias import remove_alias

        return remove_alias(self, name, alias, message)

    def alias_undo(self, ref: str, *, message: str = "") -> AliasMove:
        from mlark.ops.alias import undo_alias

        return undo_alias(self, ref, message)

    def alias_log(self, name: str, alias: str | None = None) -> list[AliasMove]:
        from mlark.core.names import validate_name
        from mlark.meta import catalog

        with self.db.read() as conn:
            return catalog.alias_moves(conn, validate_name(name), alias)

    def aliases(self, name: str) -> dict[str, int]:
        from mlark.core.names import validate_name
        from mlark.meta import catalog

        with self.db.read() as conn:
            art = catalog.get_artifact(conn, validate_name(name))
            return catalog.alias_targets(conn, art.id)

    def status(self, path: str | os.PathLike[str], ref: str | None = None) -> "StatusReport":
        from mlark.ops.status import status

        return status(self, path, ref)

    def rm(self, ref: str, *, force: bool = False, message: str = "") -> Version:
        from mlark.ops.rm import rm

        return rm(self, ref, force=force, message=message)

    def gc(self, *, progress: Progress | None = None) -> "GcReport":
        from mlark.ops.gc import gc

        return gc(self, progress or NoProgress())

    def runs_using(self, ref: str | Version) -> list["Run"]:
        """The runs that used a version (``churn-data:v3``), oldest first."""
        from mlark.ops.run_search import runs_using

        return runs_using(self, ref)

    def producer_of(self, ref: str | Version) -> "Run | None":
        """The run that produced a version, or None."""
        from mlark.ops.run_search import producer_of

        return producer_of(self, ref)

    def fsck(self, *, rebuild_index: bool = False, progress: Progress | None = None) -> "FsckReport":
        from mlark.ops.fsck import fsck

        return fsck(self, rebuild_index=rebuild_index, progress=progress or NoProgress())


def _sqlite_url(meta_dir: Path) -> str:
    return f"sqlite:///{meta_dir / 'meta.db'}"


def _sqlite_file(database: str | None, meta_dir: Path) -> str | None:
    """The SQLite file a repository's database URL names, when it is a plain one (``sqlite:///PATH``,
    no query string); None for anything else, which only mlark.meta.db reads."""
    if database is None:
        return str(meta_dir / "meta.db")
    prefix = "sqlite:///"
    if not database.startswith(prefix) or "?" in database:
        return None
    path = database[len(prefix):]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path
