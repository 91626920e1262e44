"""Fixtures of the registry tests: a repository on each metadata database, and the ``churn`` project
(two data versions, two forests logged by runs). Helpers are in ``registry_testkit``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skops")

from registry_testkit import COLUMNS, Trained, churn_frame, train  # noqa: E402

from mlark.ops.repo import Repo  # noqa: E402


@pytest.fixture
def repo(database_url: str, tmp_path: Path) -> Iterator[Repo]:
    r = Repo.init(tmp_path / "project", database=database_url, author="alice")
    yield r
    r.close()


@pytest.fixture
def churn(repo: Repo, tmp_path: Path) -> Trained:
    """churn-data v1 and v2 (two exports), and churn-rf v1 (depth 3, on v1) and v2 (depth 6, on v2, @best)."""
    out = tmp_path / "export"
    out.mkdir()
    churn_frame(0).to_csv(out / "train.csv", index=False)
    data1 = repo.add(out, name="churn-data", type="dataset", message="May export of customers")
    churn_frame(1).to_csv(out / "train.csv", index=False)
    repo.add(out, name="churn-data", message="June export: 240 more customers")
    trained = Trained(data=data1, holdout=churn_frame(7, rows=40)[COLUMNS])
    for data_ref, depth, aliases in (("churn-data:v1", 3, ()), ("churn-data:v2", 6, ("best",))):
        run, version = train(repo, data_ref, depth, aliases=aliases)
        trained.runs.append(run)
        trained.models.append(version)
    return trained
