"""Fixtures for the lineage tests: real repositories on each metadata database, holding the pipeline
of :mod:`lineage_testkit` (real runs, real registry).

``churn`` (module-scoped, read-only): built once per database for the tests that only read.
``fresh_churn`` (per test): for tests that change the graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from lineage_testkit import Churn, build_churn
from mlark.lineage import index as lineage_index
from mlark.ops.repo import Repo


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def module_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like ``database_url``, but one database per test module (for fixtures built once and only read)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'meta.db'}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


@pytest.fixture(scope="module")
def churn(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Churn]:
    root = tmp_path_factory.mktemp("churn")
    repo = Repo.init(root / "project", database=module_database_url, author="alice")
    try:
        yield build_churn(repo, root)
    finally:
        repo.close()
        lineage_index.forget()


@pytest.fixture
def repo(database_url: str, tmp_path: Path) -> Iterator[Repo]:
    r = Repo.init(tmp_path / "project", database=database_url, author="alice")
    yield r
    r.close()
    lineage_index.forget()


@pytest.fixture
def fresh_churn(repo: Repo, tmp_path: Path) -> Churn:
    return build_churn(repo, tmp_path)
