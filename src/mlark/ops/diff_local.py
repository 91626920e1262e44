"""Local, verified copies of the few files a semantic diff reads, and relabelling what the engines say.

The diff engines (:mod:`mlark.diff`) read local paths. :class:`LocalFiles` gives them one: the
version's copy in the run cache (``.mlark/cache/versions/<digest>/``, written by ``run.use``) when
it is there and still matches the tree (size, then the stat cache or a re-hash), otherwise a copy
streamed from verified chunks into a temporary folder under ``.mlark/tmp/`` that is removed at the
end. Only the files asked for are written, never the whole version. A shared repository lock is
held meanwhile, so ``gc`` (which empties ``tmp/`` under the exclusive lock) waits.

The engines name the files they read; :func:`relabel` and :func:`relabelled_errors` replace those
local paths with ``name:v3/path`` in results and error messages.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat as st
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from mlark.core.tree import Entry, Tree
from mlark.core.types import Version
from mlark.errors import MlarkError, NotFound, StorageError
from mlark.objectstore.files import iter_file, iter_file_blocks, write_all
from mlark.ops.lock import repo_lock

if TYPE_CHECKING:
    from mlark.ops.repo import Repo


def entries_under(tree: Tree, path: str) -> list[Entry]:
    """The files at ``path``: the file itself, or every file inside the folder ``path``."""
    found = tree.get(path)
    if found is not None and found.type == "file":
        return [found]
    prefix = path.rstrip("/") + "/"
    return [e for e in tree.files() if e.path.startswith(prefix)]


def read_small(repo: "Repo", entry: Entry) -> bytes:
    """A small file's bytes (a manifest), verified chunk by chunk."""
    return b"".join(iter_file(repo.store, entry.chunks, entry.digest, entry.path))


class LocalFiles:
    """Use as a context manager; :meth:`path` returns a local path holding a version's file or folder."""

    def __init__(self, repo: "Repo") -> None:
        self.repo = repo
        self._stack = ExitStack()
        self._tmp: Path | None = None
        self._count = 0
        self._locked = False

    def __enter__(self) -> "LocalFiles":
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
        finally:
            self._stack.close()

    def path(self, version: Version, tree: Tree, path: str) -> Path:
        entries = entries_under(tree, path)
        if not entries:
            raise NotFound(f"{version.ref} has no file or folder {path!r}", ref=version.ref, path=path)
        if not self._locked:  # taken on first use: a files-only diff needs no lock (and works read-only)
            self._stack.enter_context(repo_lock(self.repo.meta_dir, exclusive=False))
            self._locked = True
        cached = self.repo.meta_dir / "cache" / "versions" / version.digest
        if self._cached(cached, path, entries):
            return cached.joinpath(*path.split("/"))
        if self._tmp is None:
            root = self.repo.meta_dir / "tmp"
            root.mkdir(exist_ok=True)
            self._tmp = Path(tempfile.mkdtemp(prefix="diff-", dir=root))
        self._count += 1
        base = self._tmp / str(self._count)
        for entry in entries:
            self._write(entry, base.joinpath(*entry.path.split("/")))
        return base.joinpath(*path.split("/"))

    def _cached(self, cached: Path, path: str, entries: list[Entry]) -> bool:
        """The run cache's copy holds exactly these files, each matching the tree (a folder with a file
        more, which a table diff would read, is not used)."""
        local = cached.joinpath(*path.split("/"))
        if not cached.is_dir() or not all(self._matches(e, cached.joinpath(*e.path.split("/"))) for e in entries):
            return False
        if len(entries) == 1 and entries[0].path == path:
            return True
        found = set()
        for folder, dirs, names in os.walk(local):
            links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
            for name in names + links:
                found.add(os.path.relpath(os.path.join(folder, name), cached).replace(os.sep, "/"))
        return found == {e.path for e in entries}

    def _matches(self, entry: Entry, local: Path) -> bool:
        from mlark.ops.get import file_digest
        from mlark.ops.scan import PlannedFile

        try:
            s = os.lstat(local)
        except OSError:
            return False
        if not st.S_ISREG(s.st_mode) or s.st_size != entry.size:
            return False
        planned = PlannedFile(str(local), str(local), s.st_size, st.S_IMODE(s.st_mode), s.st_mtime_ns, s.st_ino,
                              s.st_ctime_ns)
        try:
            hit = self.repo.stat_cache.get(planned)
        except Exception:  # the stat cache is an optimisation: a broken one only costs a re-hash
            hit = None
        try:
            digest = hit[0] if hit is not None else file_digest(str(local))
        except OSError:
            return False
        return bool(digest == entry.digest)

    def _write(self, entry: Entry, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb", buffering=0) as fh:
                for block in iter_file_blocks(self.repo.store, entry.chunks, entry.path):
                    write_all(fh.fileno(), block)
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror}", path=str(target)) from exc


# --------------------------------------------------------------------------- labels


def _swap(text: str, labels: Mapping[str, str]) -> str:
    for local in sorted(labels, key=len, reverse=True):  # longest first: a folder's path prefixes its files'
        text = text.replace(local, labels[local])
    return text


def _swap_any(value: Any, labels: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _swap(value, labels)
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return tuple(_swap(v, labels) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and hasattr(value, "path"):
        return dataclasses.replace(value, path=_swap(value.path, labels))  # a table's TableInfo
    return value


def relabel(result: Any, labels: Mapping[str, str]) -> Any:
    """``result`` (a frozen engine result) with local paths replaced by labels in ``a``, ``b`` and ``notes``."""
    if not dataclasses.is_dataclass(result) or isinstance(result, type):
        return result
    names = {f.name for f in dataclasses.fields(result)}
    changes = {n: _swap_any(getattr(result, n), labels) for n in ("a", "b", "notes") if n in names}
    return dataclasses.replace(result, **changes)


@contextmanager
def relabelled_errors(labels: Mapping[str, str]) -> Iterator[None]:
    """Errors raised inside name ``name:v3/path`` instead of a temporary or cached local path."""
    try:
        yield
    except MlarkError as exc:
        exc.message = _swap(exc.message, labels)
        exc.args = (exc.message, *exc.args[1:])
        exc.fields = {k: _swap_any(v, labels) if isinstance(v, str) else v for k, v in exc.fields.items()}
        raise
