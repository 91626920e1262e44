"""Inputs and outputs of runs on disk: the run cache of materialised versions, and tables written as Parquet."""

from __future__ import annotations

import fcntl
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from mlark.core.types import Version
from mlark.errors import InvalidInput, NotFound
from mlark.ops.progress import NoProgress

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

CACHE_DIR = ("cache", "versions")


def cache_root(repo: "Repo") -> Path:
    return repo.meta_dir.joinpath(*CACHE_DIR)


def model_cache(repo: "Repo") -> Path:
    """Where ``load_model`` keeps what flavors derive from a model's files (``.mlark/cache/models/``)."""
    return repo.meta_dir / "cache" / "models"


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def materialise(repo: "Repo", version: Version) -> Path:
    """The version's files in ``.mlark/cache/versions/<digest>/``, written once and verified on every call.

    Uses ``mlark get``'s code: files that already match (known by the stat
    cache, else re-hashed) are left alone, missing or changed ones are written
    again from verified chunks. One process at a time per version (a lock file
    beside the folder), so concurrent runs never see a half-written file.
    """
    from mlark.ops.get import get

    root = cache_root(repo)
    root.mkdir(parents=True, exist_ok=True)
    dest = root / version.digest
    with _flock(root / f"{version.digest}.lock"):
        get(repo, version, dest, NoProgress())
    return dest


def sub_path(repo: "Repo", version: Version, base: Path, path: str) -> Path:
    """``base / path`` after checking that ``path`` is a file, link or folder of the version."""
    tree = repo.tree(version)
    prefix = path + "/"
    if tree.get(path) is None and not any(e.path.startswith(prefix) for e in tree.entries):
        sample = ", ".join(e.path for e in tree.entries[:5])
        raise NotFound(
            f"{version.ref} has no file or folder {path!r}" + (f"; it holds e.g. {sample}" if sample else ""),
            ref=version.ref,
            path=path,
        )
    return base.joinpath(*path.split("/"))


# --------------------------------------------------------------------------- tables


def is_table(data: Any) -> bool:
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(data, pandas.DataFrame):
        return True
    pyarrow = sys.modules.get("pyarrow")
    return pyarrow is not None and isinstance(data, pyarrow.Table)


def write_parquet(data: Any, path: Path) -> dict[str, Any]:
    """Write a pandas DataFrame or a pyarrow Table to ``path`` as Parquet; returns metadata about it."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InvalidInput(
            "writing a table as Parquet needs pyarrow: pip install 'mlark[data]'", field="data"
        ) from exc
    if isinstance(data, pa.Table):
        table = data
    else:
        table = pa.Table.from_pandas(data)
    pq.write_table(table, path)
    return {"format": "parquet", "rows": table.num_rows, "columns": list(table.column_names)}
