"""Fixtures for the repository tests: a real repository on each metadata database, and sample folders."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Callable, Iterator

import pytest

from mlark.ops.repo import Repo

Snapshot = dict[str, tuple[object, ...]]


def _snapshot(root: Path) -> Snapshot:
    """Everything mlark promises to restore: file bytes and modes, empty folders and their modes, symlinks."""
    out: Snapshot = {}
    for folder, dirs, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        for name in sorted(dirs + files):
            path = os.path.join(folder, name)
            rel = name if rel_folder == "." else f"{rel_folder}/{name}"
            st = os.lstat(path)
            if os.path.islink(path):
                out[rel] = ("symlink", os.readlink(path))
            elif os.path.isdir(path):
                if not os.listdir(path):
                    out[rel] = ("dir", st.st_mode & 0o7777)
            else:
                out[rel] = ("file", st.st_mode & 0o7777, Path(path).read_bytes())
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
    return out


@pytest.fixture
def snapshot() -> Callable[[Path], Snapshot]:
    return _snapshot


@pytest.fixture
def repo(database_url: str, tmp_path: Path) -> Iterator[Repo]:
    r = Repo.init(tmp_path / "project", database=database_url, author="alice")
    yield r
    r.close()


@pytest.fixture
def make_sample() -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        rng = random.Random(42)
        root.mkdir(parents=True)
        (root / "a.txt").write_bytes(b"hello\n")
        (root / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
        os.chmod(root / "run.sh", 0o755)
        (root / "secret.key").write_bytes(b"k" * 32)
        os.chmod(root / "secret.key", 0o600)
        (root / "empty.txt").write_bytes(b"")
        (root / "sub" / "deeper").mkdir(parents=True)
        (root / "sub" / "deeper" / "big.bin").write_bytes(rng.randbytes(400_000))
        (root / "sub" / "table.csv").write_bytes(b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(5000)))
        (root / "emptydir").mkdir()
        os.chmod(root / "emptydir", 0o750)
        os.symlink("a.txt", root / "link")
        os.symlink("../a.txt", root / "sub" / "up")
        return root

    return make
