"""Fixtures for the object store tests: a real metadata database (SQLite and PostgreSQL) and a store on it."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from mlark.meta.chunkindex import SqlChunkIndex
from mlark.meta.db import Database
from mlark.objectstore.chunker import ChunkParams
from mlark.objectstore.store import ObjectStore
from mlark.storage import LocalBackend


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database.open(database_url, create=True)
    yield database
    database.close()


@pytest.fixture
def store(db: Database, tmp_path: Path) -> Iterator[ObjectStore]:
    backend = LocalBackend(str(tmp_path / "store"), tmp_dir=str(tmp_path / "tmp"))
    yield ObjectStore(backend, SqlChunkIndex(db), str(tmp_path / "tmp"), ChunkParams())
    backend.close()
