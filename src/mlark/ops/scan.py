"""Walking a working folder into a plan of entries, refusing what cannot be stored faithfully."""

from __future__ import annotations

import os
import stat as st
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from mlark.core.names import validate_relpath
from mlark.core.tree import check_link_target
from mlark.errors import InvalidInput, InvalidPath, NotFound

SKIP_DIRS = frozenset({".mlark"})


class PlannedFile(NamedTuple):
    """One regular file to add (a named tuple: a folder of 10,000 files makes 10,000 of these, and a
    frozen dataclass costs several times more to build)."""

    path: str  # relative, '/'-separated
    abspath: str
    size: int
    mode: int
    mtime_ns: int
    ino: int
    ctime_ns: int


@dataclass(frozen=True, slots=True)
class PlannedOther:
    path: str
    type: str  # "dir" or "symlink"
    mode: int = 0o755
    target: str = ""


@dataclass
class Plan:
    root: str
    single_file: bool
    files: list[PlannedFile]
    others: list[PlannedOther]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def _rel(parts: list[str]) -> str:
    for part in parts:
        try:
            part.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidPath(
                f"file name {part.encode('utf-8', 'surrogateescape')!r} is not valid UTF-8; rename it to store it",
                field="path",
            ) from None
    return validate_relpath("/".join(parts))


def _planned_file(rel: str, path: str, s: os.stat_result) -> PlannedFile:
    return PlannedFile(rel, path, s.st_size, st.S_IMODE(s.st_mode), s.st_mtime_ns, s.st_ino, s.st_ctime_ns)


def scan(path: str | os.PathLike[str]) -> Plan:
    root = os.path.abspath(os.fspath(path))
    try:
        top = os.lstat(root)
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist", path=str(path)) from None
    if st.S_ISREG(top.st_mode):
        name = _rel([os.path.basename(root)])
        return Plan(os.path.dirname(root), True, [_planned_file(name, root, top)], [])
    if st.S_ISLNK(top.st_mode):
        raise InvalidInput(f"{path} is a symbolic link; add the file or folder it points to", path=str(path))
    if not st.S_ISDIR(top.st_mode):
        raise InvalidInput(f"{path} is neither a file nor a folder", path=str(path))
    files: list[PlannedFile] = []
    others: list[PlannedOther] = []
    _walk(root, [], files, others)
    return Plan(root, False, files, others)


def _walk(folder: str, parts: list[str], files: list[PlannedFile], others: list[PlannedOther]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except PermissionError as exc:
        raise InvalidInput(f"cannot read folder {folder}: permission denied", path=folder) from exc
    if not entries and parts:
        others.append(PlannedOther(_rel(parts), "dir", st.S_IMODE(os.stat(folder).st_mode)))
        return
    for entry in entries:
        if not parts and entry.name in SKIP_DIRS:
            continue
        sub = parts + [entry.name]
        s = entry.stat(follow_symlinks=False)
        if st.S_ISLNK(s.st_mode):
            rel = _rel(sub)
            target = os.readlink(entry.path)
            check_link_target(rel, target)
            others.append(PlannedOther(rel, "symlink", 0o777, target))
        elif st.S_ISDIR(s.st_mode):
            _walk(entry.path, sub, files, others)
        elif st.S_ISREG(s.st_mode):
            files.append(_planned_file(_rel(sub), entry.path, s))
        else:
            raise InvalidInput(
                f"{entry.path} is a special file (device, socket or pipe); only files, folders and links are stored",
                path=entry.path,
            )


def file_key(path: str) -> str:
    return str(Path(path).resolve())
