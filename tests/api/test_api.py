"""mlark.start_run, mlark.runs, mlark.get_run, mlark.active_run, mlark.seed_everything: the Python API adapter."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

import mlark
from mlark import api
from mlark.errors import InvalidInput, NotARepository, NotFound
from mlark.ops.repo import Repo


@pytest.fixture
def repo(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Repo]:
    r = Repo.init(tmp_path / "project", database=database_url, author="alice")
    for name in ("MLARK_REPO", "MLARK_AUTHOR", "MLARK_CAPTURE", "MLARK_CAPTURE_GIT", "MLARK_CAPTURE_PACKAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLARK_CAPTURE_GIT", "0")
    monkeypatch.setenv("MLARK_CAPTURE_PACKAGES", "0")
    monkeypatch.setenv("MLARK_REPO", str(r.root))
    yield r
    api._forget_repos()
    r.close()


def test_the_tour(repo: Repo, tmp_path: Path) -> None:
    data = tmp_path / "raw"
    data.mkdir()
    (data / "train.csv").write_text("x,y\n1,0\n")
    repo.add(data, name="churn-data", message="May export")
    out = tmp_path / "features"
    out.mkdir()
    (out / "f.csv").write_text("f\n1\n")
    with mlark.start_run(project="churn", name="rf-depth-8", params={"n_estimators": 200, "max_depth": 8}) as run:
        train_dir = run.use("churn-data:train.csv@latest")
        assert train_dir.read_text() == "x,y\n1,0\n"
        best = 0.0
        for epoch in range(100):
            auc = 0.5 + epoch / 250
            best = max(best, auc)
            run.log({"loss": 1 / (epoch + 1), "val_auc": auc}, step=epoch)
        run.log_artifact(out, name="churn-features", type="dataset", message="Tenure buckets added")
        run.summary["best_val_auc"] = best
    found = mlark.get_run(run.id)
    assert isinstance(found, mlark.Run)
    assert found.status == "finished" and found.params == {"max_depth": 8, "n_estimators": 200}
    assert found.summary["best_val_auc"] == best
    assert found.metrics["val_auc"] == 0.5 + 99 / 250
    assert found.history("loss").steps.tolist() == list(range(100))
    assert [v.ref for v in found.inputs()] == ["churn-data:v1"]
    assert [v.ref for v in found.outputs()] == ["churn-features:v1"]


def test_runs_filter_order_and_limit(repo: Repo) -> None:
    for depth, auc in [(4, 0.80), (8, 0.91), (12, 0.95), (16, 0.89)]:
        with mlark.start_run("churn", name=f"rf-{depth}", params={"max_depth": depth}, tags={"algo": "rf"}) as run:
            run.log({"val_auc": auc})
    with mlark.start_run("other", name="x") as other:
        other.log({"val_auc": 0.99})
    found = mlark.runs("churn", filter="params.max_depth >= 8 and metrics.val_auc > 0.9",
                       order_by="metrics.val_auc desc", limit=10)
    assert [r.name for r in found] == ["rf-12", "rf-8"]
    assert [r.metrics["val_auc"] for r in found] == [0.95, 0.91]
    assert found[0].params == {"max_depth": 12} and found[0].tags == {"algo": "rf"}
    assert [r.name for r in mlark.runs("churn", limit=2)] == ["rf-16", "rf-12"]  # newest first
    assert len(mlark.runs()) == 5
    with pytest.raises(InvalidInput):
        mlark.runs("churn", filter="params.max_depth >=")


def test_runs_as_a_data_frame(repo: Repo) -> None:
    import pandas as pd

    for depth in (4, 8):
        with mlark.start_run("churn", name=f"rf-{depth}", params={"max_depth": depth, "crit": "gini"},
                             tags={"algo": "rf"}) as run:
            run.log({"val_auc": depth / 10, "weird": math.nan})
    frame = mlark.runs("churn", order_by="params.max_depth asc", as_frame=True)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["id", "name", "project", "status", "start_time", "end_time", "params.crit",
                                   "params.max_depth", "metrics.val_auc", "metrics.weird", "tags.algo"]
    assert frame["name"].tolist() == ["rf-4", "rf-8"]
    assert frame["params.max_depth"].tolist() == [4, 8]
    assert frame["metrics.val_auc"].tolist() == [0.4, 0.8]
    assert frame["metrics.weird"].isna().all()
    assert str(frame["start_time"].dtype).startswith("datetime64")
    empty = mlark.runs("nothing", as_frame=True)
    assert len(empty) == 0 and list(empty.columns)[:4] == ["id", "name", "project", "status"]


def test_get_run_by_prefix_and_unknown(repo: Repo) -> None:
    with mlark.start_run("churn") as run:
        pass
    assert mlark.get_run(run.id[:8]).id == run.id
    with pytest.raises(NotFound):
        mlark.get_run("01234567-0000-7000-8000-000000000000")


def test_active_run_and_seeds(repo: Repo) -> None:
    assert mlark.active_run() is None
    with mlark.start_run("churn") as run:
        assert mlark.active_run() is run
        seeds = mlark.seed_everything(7)
        assert seeds["random"] == 7
    assert mlark.active_run() is None
    assert mlark.get_run(run.id).seeds == seeds
    assert mlark.seed_everything(8)["random"] == 8  # without a run: just returned


def test_resume_and_parent_through_the_api(repo: Repo) -> None:
    with mlark.start_run("churn", name="parent") as parent:
        with mlark.start_run("churn", name="child", parent=parent) as child:
            child.log({"a": 1.0})
    assert child.parent_id == parent.id
    with mlark.start_run(resume=child.id) as again:
        again.log({"a": 2.0})
    assert mlark.get_run(child.id).history("a").steps.tolist() == [0, 1]
    with pytest.raises(InvalidInput, match="project"):
        mlark.start_run()


def test_the_repository_is_found_by_walking_up(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLARK_REPO")
    inside = repo.root / "src" / "deep"
    inside.mkdir(parents=True)
    monkeypatch.chdir(inside)
    with mlark.start_run("churn") as run:
        pass
    assert mlark.get_run(run.id, repo=repo).status == "finished"
    monkeypatch.chdir(repo.root.parent)
    with pytest.raises(NotARepository):
        mlark.start_run("churn")


def test_author_and_capture_come_from_the_environment(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLARK_AUTHOR", "carol")
    with mlark.start_run("churn") as run:
        pass
    stored = mlark.get_run(run.id)
    assert stored.user == "carol" and stored.git is None
    assert stored.environment is not None and "packages" not in stored.environment
    monkeypatch.setenv("MLARK_CAPTURE", "0")
    with mlark.start_run("churn") as bare:
        pass
    assert mlark.get_run(bare.id).environment is None and mlark.get_run(bare.id).host is None
    with mlark.start_run("churn", capture=mlark.Capture(git=False)) as explicit:  # an argument wins
        pass
    assert mlark.get_run(explicit.id).environment is not None


def test_importing_mlark_stays_light() -> None:
    code = (
        "import sys, mlark\n"
        "heavy = [m for m in ('numpy', 'pandas', 'pyarrow', 'sqlalchemy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "mlark.start_run, mlark.runs, mlark.get_run, mlark.seed_everything, mlark.Run\n"
        "heavy = [m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_whole_run_does_not_import_numpy_or_pandas(repo: Repo, tmp_path: Path) -> None:
    code = (
        "import sys, mlark\n"
        "with mlark.start_run('churn') as run:\n"
        "    run.log({'loss': 0.5})\n"
        "heavy = [m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**__import__("os").environ, "MLARK_REPO": str(repo.root), "MLARK_CAPTURE_GIT": "0"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr


def test_public_names() -> None:
    for name in ("start_run", "runs", "get_run", "seed_everything", "active_run", "Run", "Capture"):
        assert name in mlark.__all__ and getattr(mlark, name) is not None
