"""Fixtures for the tracking tests: a repository on each metadata database, and one on SQLite only."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from mlark.ops.repo import Repo


@pytest.fixture
def repo(database_url: str, tmp_path: Path) -> Iterator[Repo]:
    r = Repo.init(tmp_path / "project", database=database_url, author="alice")
    yield r
    r.close()


@pytest.fixture
def sqlite_repo(tmp_path: Path) -> Iterator[Repo]:
    r = Repo.init(tmp_path / "project", author="alice")
    yield r
    r.close()
