"""Lineage through the registry: from models:/churn@production to the run that trained it, its params and
metrics, and the exact data versions it used, in one call."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_testkit import COLUMNS, QUIET, Trained, churn_frame

import mlark
from mlark.models import save_model
from mlark.ops import registry, run_start
from mlark.ops.repo import Repo


def test_lineage_from_a_stage_reaches_run_params_metrics_and_data(repo: Repo, churn: Trained) -> None:
    registry.register(repo, "churn", "churn-rf:v1", "Depth 3 on the May export")
    registry.register(repo, "churn", "churn-rf:v2", "Depth 6 on the June export")
    registry.promote(repo, "churn", 2, "production", "Best offline AUC")
    registry.set_alias(repo, "churn", 2, "champion", "Best offline AUC")

    lin = mlark.registry.lineage("models:/churn@production", repo=repo)
    assert lin.ref == "models:/churn@production"
    assert (lin.model_version.number, lin.model_version.stage, lin.model_version.aliases) == (2, "production",
                                                                                              ("champion",))
    assert lin.version.ref == "churn-rf:v2" and lin.version.digest == churn.models[1].digest
    assert lin.version.metadata["flavor"] == "sklearn"
    assert lin.run_source == "lineage"
    run = churn.runs[1]
    assert lin.run is not None
    assert (lin.run.id, lin.run.name, lin.run.status) == (run.id, "rf-depth-6", "finished")
    assert lin.run.params == {"max_depth": 6, "n_estimators": 12}
    assert set(lin.run.metrics) == {"train_accuracy", "val_auc"} and lin.run.metrics["val_auc"] == pytest.approx(0.86)
    june = repo.resolve("churn-data:v2")
    assert [(v.ref, v.digest, v.type) for v in lin.inputs] == [(june.ref, june.digest, "dataset")]
    # the same through a number, an alias, and the short form
    for ref in ("models:/churn/2", "models:/churn@champion", "churn@champion", "churn/2"):
        assert registry.lineage(repo, ref).version.ref == "churn-rf:v2"
    assert registry.lineage(repo, "models:/churn/1").inputs[0].ref == "churn-data:v1"
    doc = lin.to_dict()
    assert doc["run"]["params"]["max_depth"] == 6 and doc["inputs"][0]["ref"] == "churn-data:v2"

    # show: every version with its source run and training data
    shown = registry.show(repo, "churn")
    assert [(v.number, v.source_run_id, v.inputs) for v in shown.versions] == [
        (1, churn.runs[0].id, ("churn-data:v1",)), (2, churn.runs[1].id, ("churn-data:v2",))]


def test_lineage_falls_back_to_the_manifest_run(repo: Repo, churn: Trained, tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    frame = churn_frame(2)
    with run_start.start_run(repo, "churn", "notebook", {"max_depth": 2}, capture_options=QUIET) as run:
        run.use("churn-data:v1")
        model = DecisionTreeClassifier(max_depth=2).fit(frame[COLUMNS], frame["churned"])
    # saved by hand, added outside the run: no produced edge, but the manifest names the run
    save_model(model, tmp_path / "tree", run_id=run.id)
    repo.add(tmp_path / "tree", name="churn-tree", type="model", message="Tree from the notebook run")
    registry.register(repo, "churn", "churn-tree:v1", "From a notebook")
    lin = registry.lineage(repo, "models:/churn/1")
    assert lin.run_source == "manifest" and lin.run is not None and lin.run.id == run.id
    assert lin.run.params == {"max_depth": 2}
    assert [v.ref for v in lin.inputs] == ["churn-data:v1"]
    assert registry.show(repo, "churn").versions[0].source_run_id == run.id


def test_lineage_of_a_model_without_a_run(repo: Repo, churn: Trained, tmp_path: Path) -> None:
    from sklearn.dummy import DummyClassifier

    save_model(DummyClassifier().fit([[0], [1]], [0, 1]), tmp_path / "dummy")
    repo.add(tmp_path / "dummy", name="dummy", type="model", message="Baseline that predicts the prior")
    registry.register(repo, "baseline", "dummy:v1", "Prior baseline")
    lin = registry.lineage(repo, "models:/baseline/1")
    assert lin.run is None and lin.run_source is None and lin.inputs == ()
    assert lin.to_dict()["run"] is None
