"""get: write a version's exact bytes back, verified; skip files that already match."""

from __future__ import annotations

import os
import stat as st
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import blake3

from mlark.core.names import validate_relpath
from mlark.core.tree import ChunkRef, Entry
from mlark.core.types import Version
from mlark.errors import InvalidInput, NotFound, StorageError
from mlark.objectstore.files import iter_file
from mlark.objectstore.restore import Restorer
from mlark.core.gcpause import gc_paused
from mlark.ops.progress import Progress
from mlark.ops.scan import PlannedFile

if TYPE_CHECKING:
    from mlark.ops.repo import Repo


@dataclass
class GetReport:
    version: Version
    path: Path
    files_written: int
    files_unchanged: int
    bytes_written: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.version.ref,
            "digest": self.version.digest,
            "path": str(self.path),
            "files_written": self.files_written,
            "files_unchanged": self.files_unchanged,
            "bytes_written": self.bytes_written,
        }


def _planned(path: str, s: os.stat_result) -> PlannedFile:
    return PlannedFile(path, path, s.st_size, st.S_IMODE(s.st_mode), s.st_mtime_ns, s.st_ino, s.st_ctime_ns)


def file_digest(path: str) -> str:
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    h.update_mmap(path)
    return h.hexdigest()


def _matches(repo: "Repo", entry: Entry, path: str, known: list[tuple[PlannedFile, str, tuple[ChunkRef, ...]]]) -> bool:
    try:
        s = os.lstat(path)
    except FileNotFoundError:
        return False
    if not st.S_ISREG(s.st_mode) or s.st_size != entry.size:
        return False
    planned = _planned(path, s)
    hit = repo.stat_cache.get(planned)
    digest = hit[0] if hit is not None else file_digest(path)
    if digest != entry.digest:
        return False
    if hit is None:
        known.append((planned, digest, entry.chunks))
    if st.S_IMODE(s.st_mode) != entry.mode:
        os.chmod(path, entry.mode)
    return True


def _check_inside(dest: Path, target: Path) -> None:
    # Refuse to write through a symlink that leads out of the destination folder.
    real_dest = os.path.realpath(dest)
    real = os.path.realpath(target.parent)
    if real != real_dest and not real.startswith(real_dest + os.sep):
        raise InvalidInput(f"{target} lies outside {dest} through a symbolic link; refusing to write there",
                           path=str(target))


def get(repo: "Repo", version: Version, dest: Path, progress: Progress) -> GetReport:
    with gc_paused():  # a tree of many entries and chunks: many small objects, no cycles
        return _get(repo, version, dest, progress)


def _get(repo: "Repo", version: Version, dest: Path, progress: Progress) -> GetReport:
    tree = repo.tree(version)
    dest = dest.resolve()
    if dest.exists() and not dest.is_dir():
        raise InvalidInput(f"{dest} exists and is not a folder; give a folder to write {version.ref} into",
                           path=str(dest))
    dest.mkdir(parents=True, exist_ok=True)
    written = unchanged = nbytes = 0
    known: list[tuple[PlannedFile, str, tuple[ChunkRef, ...]]] = []
    files = list(tree.files())
    progress.start(f"getting {version.ref}", sum(e.size for e in files), len(files))

    def advance(n: int) -> None:
        progress.advance(n, 0)

    restorer = Restorer(repo.store)
    try:
        if len(files) > 1:  # many files: locate all their chunks in a few queries (one file: as it goes)
            restorer.preload(tree.chunk_digests())
        for entry in tree.entries:
            target = dest.joinpath(*entry.path.split("/"))
            _check_inside(dest, target)  # before creating anything: never mkdir through a link out of dest
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if entry.type == "dir":
                    target.mkdir(exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                raise InvalidInput(
                    f"{exc.filename or target.parent} is in the way: {version.ref} has a folder there; "
                    "move it away or get into another folder",
                    path=str(exc.filename or target.parent),
                ) from exc
            if entry.type == "dir":
                os.chmod(target, entry.mode)  # the tree records the empty folder's mode: restore it
                continue
            if entry.type == "symlink":
                if target.is_symlink() and os.readlink(target) == entry.target:
                    continue
                if target.is_symlink() or target.is_file():
                    target.unlink()
                os.symlink(entry.target, target)
                continue
            if _matches(repo, entry, str(target), known):
                unchanged += 1
                progress.advance(entry.size, 0)
                continue
            tmp = target.with_name(f".{target.name}.mlark-{os.getpid()}.tmp")
            try:
                with open(tmp, "wb", buffering=0) as fh:
                    restorer.write_file(entry.chunks, fh.fileno(), entry.path, advance)
                os.chmod(tmp, entry.mode)
                if target.is_dir() and not target.is_symlink():
                    raise InvalidInput(f"{target} is a folder where {version.ref} has a file", path=str(target))
                os.replace(tmp, target)
            except OSError as exc:
                raise StorageError(f"cannot write {target}: {exc.strerror}", path=str(target)) from exc
            finally:
                if tmp.exists():
                    tmp.unlink()
            written += 1
            nbytes += entry.size
            known.append((_planned(str(target), os.stat(target)), entry.digest, entry.chunks))
    finally:
        restorer.close()
        progress.finish()
    try:
        repo.stat_cache.put_many(known)
        repo.stat_cache.remember_workspace(str(dest), version.name)
    except Exception:
        pass
    return GetReport(version, dest, written, unchanged, nbytes)


def stream_file(repo: "Repo", version: Version, path: str | None) -> Iterator[bytes]:
    tree = repo.tree(version)
    files = list(tree.files())
    if path is None:
        if len(files) != 1:
            raise InvalidInput(
                f"{version.ref} holds {len(files)} files; name one of them (e.g. {files[0].path if files else '...'})",
                ref=version.ref,
            )
        entry = files[0]
    else:
        found = tree.get(validate_relpath(path))  # '..', absolute, NUL, backslash: InvalidPath
        if found is None or found.type != "file":
            raise NotFound(f"{version.ref} has no file {path!r}", ref=version.ref, path=path)
        entry = found
    return iter_file(repo.store, entry.chunks, entry.digest, entry.path)
