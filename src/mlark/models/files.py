"""Model files on disk: list and hash them when saving, check them against the manifest when loading.

A model folder holds exactly the files its manifest lists, plus the manifest. Loading refuses a
missing file, a file of another size or digest, an extra file, and anything that is not a regular
file (a symlink could point anywhere), each with an error naming the file. Flavors then read
through :class:`ModelFiles`, which re-checks the digest of the bytes it hands out, so what is
deserialised is exactly what was checked.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mlark.core.digest import hasher
from mlark.core.names import validate_relpath
from mlark.errors import InvalidInput, InvalidPath
from mlark.models.errors import ModelIntegrityError
from mlark.models.manifest import MANIFEST_NAME, FileRecord, Manifest

BLOCK = 1 << 20


def hash_file(path: Path) -> tuple[int, str]:
    """Size and BLAKE3 digest of one file, read in 1 MiB blocks."""
    h = hasher()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(BLOCK):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def walk(folder: Path) -> tuple[list[str], list[str]]:
    """Relative paths of the regular files under ``folder`` and of anything else that is not a folder."""
    files: list[str] = []
    others: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        base = Path(dirpath)
        for name in dirnames:
            if (base / name).is_symlink():
                others.append((base / name).relative_to(folder).as_posix())
        for name in filenames:
            full = base / name
            rel = full.relative_to(folder).as_posix()
            mode = os.lstat(full).st_mode
            (files if stat.S_ISREG(mode) else others).append(rel)
    return sorted(files), sorted(others)


def describe(folder: Path) -> tuple[FileRecord, ...]:
    """The file records of a folder a flavor has just written (the manifest excluded)."""
    files, others = walk(folder)
    if others:
        raise InvalidInput(
            f"a model folder may hold only regular files; found {', '.join(others)}", field="path", value=others[0]
        )
    records = []
    for rel in files:
        if rel == MANIFEST_NAME:
            continue
        validate_relpath(rel)
        size, digest = hash_file(folder / rel)
        records.append(FileRecord(rel, size, digest))
    return tuple(records)


def verify(folder: Path, manifest: Manifest) -> None:
    """Check every file against the manifest; raise ModelIntegrityError naming the first problem."""
    files, others = walk(folder)
    listed = {f.path for f in manifest.files}
    if others:
        raise ModelIntegrityError(
            f"model folder {folder}: {others[0]!r} is not a regular file (symlinks and special files are refused)",
            file=others[0],
            problem="type",
        )
    for record in manifest.files:
        full = folder / record.path
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            raise ModelIntegrityError(
                f"model folder {folder} is missing the file {record.path!r} listed in {MANIFEST_NAME}",
                file=record.path,
                problem="missing",
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise ModelIntegrityError(
                f"model folder {folder}: {record.path!r} is not a regular file", file=record.path, problem="type"
            )
        if st.st_size != record.size:
            raise _tampered(folder, record, f"is {st.st_size} bytes, the manifest says {record.size}")
        _, digest = hash_file(full)
        if digest != record.digest:
            raise _tampered(folder, record, f"has digest {digest[:16]}..., the manifest says {record.digest[:16]}...")
    extra = [rel for rel in files if rel != MANIFEST_NAME and rel not in listed]
    if extra:
        raise ModelIntegrityError(
            f"model folder {folder} holds file(s) not listed in {MANIFEST_NAME}: {', '.join(extra)}",
            file=extra[0],
            problem="unlisted",
        )


def _tampered(folder: Path, record: FileRecord, what: str) -> ModelIntegrityError:
    return ModelIntegrityError(
        f"model file {record.path!r} in {folder} {what}: it was changed after saving (digest mismatch)",
        file=record.path,
        problem="digest",
        expected=record.digest,
    )


class ModelFiles:
    """Read access to a verified model folder, for flavors. Every byte handed out is re-hashed.

    ``cache`` is a folder where a flavor may keep what it derives from these files (None: nowhere).
    """

    def __init__(self, folder: Path, manifest: Manifest, cache: Path | None = None) -> None:
        self.folder = folder
        self.manifest = manifest
        self.cache = cache

    def record(self, rel: object, *, what: str = "file") -> FileRecord:
        """The manifest record for ``rel`` (a path from the flavor config), or ModelIntegrityError."""
        try:
            path = validate_relpath(rel)
        except InvalidPath as exc:
            raise ModelIntegrityError(f"{MANIFEST_NAME}: flavor_config names an invalid {what} path: {exc}") from exc
        found = self.manifest.file(path)
        if found is None:
            raise ModelIntegrityError(
                f"{MANIFEST_NAME}: flavor_config names {what} {path!r}, which is not among the model files",
                file=path,
            )
        return found

    def path(self, rel: str) -> Path:
        """The local path of a listed file (checked at load; for libraries that only read from paths)."""
        return self.folder / self.record(rel).path

    def read_bytes(self, rel: str) -> bytes:
        record = self.record(rel)
        data = (self.folder / record.path).read_bytes()
        h = hasher()
        h.update(data)
        if len(data) != record.size or h.hexdigest() != record.digest:
            raise _tampered(self.folder, record, "changed while loading")
        return data

    def read_head(self, rel: str, limit: int) -> tuple[bytes, int]:
        """The first ``limit`` bytes of a listed file (verified at load) and its size."""
        record = self.record(rel)
        with open(self.folder / record.path, "rb") as fh:
            return fh.read(limit), record.size

    def subfolder(self, rel: str) -> Path:
        """A folder inside the model whose files are all listed (for libraries that load a folder)."""
        path = validate_relpath(rel)
        prefix = path + "/"
        if not any(f.path.startswith(prefix) for f in self.manifest.files):
            raise ModelIntegrityError(
                f"{MANIFEST_NAME}: flavor_config names folder {path!r}, which holds none of the model files",
                file=path,
            )
        return self.folder / path
