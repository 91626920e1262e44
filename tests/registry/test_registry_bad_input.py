"""Bad input: each a clear error, and nothing changed (registry state and history identical before and after)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from registry_testkit import COLUMNS, QUIET, Trained, churn_frame, state

import mlark
from mlark.errors import InvalidInput, InvalidName, InvalidRef, NotFound
from mlark.models.errors import ModelIntegrityError, UnknownFlavor
from mlark.ops import registry, run_start
from mlark.ops.repo import Repo


@pytest.fixture
def registered(repo: Repo, churn: Trained) -> Repo:
    registry.register(repo, "churn", "churn-rf:v1", "Depth 3 on the May export")
    registry.register(repo, "fraud", "churn-rf:v2", "Borrowed for the fraud task")
    registry.promote(repo, "churn", 1, "production", "Go live")
    registry.set_alias(repo, "churn", 1, "champion", "Only candidate")
    return repo


def test_unknown_flavor(registered: Repo, churn: Trained, tmp_path: Path) -> None:
    repo = registered
    folder = repo.get("churn-rf:v1", to=tmp_path / "m")
    manifest = json.loads((folder / "mlark-model.json").read_text())
    manifest["flavor"] = "tensorflow"
    (folder / "mlark-model.json").write_text(json.dumps(manifest))
    before = state(repo)
    with pytest.raises(UnknownFlavor, match="unknown flavor 'tensorflow'; known flavors: onnx, python, pytorch"):
        mlark.load_model(folder)
    # the same folder committed as a model version, registered, loaded by reference
    repo.add(folder, name="tf-model", type="model", message="A model of a flavor mlark does not know")
    registry.register(repo, "tf", "tf-model:v1", "Registered to show the error through the registry")
    before = state(repo)
    with pytest.raises(UnknownFlavor, match="unknown flavor 'tensorflow'"):
        mlark.load_model("models:/tf/1", repo=repo)
    assert state(repo) == before
    # logging with an unknown flavor writes nothing
    frame = churn_frame(4)
    artifacts = [a.name for a in repo.artifacts()]
    with run_start.start_run(repo, "churn", "bad-flavor", capture_options=QUIET) as run:
        from sklearn.tree import DecisionTreeClassifier

        model = DecisionTreeClassifier().fit(frame[COLUMNS], frame["churned"])
        with pytest.raises(UnknownFlavor, match="unknown flavor 'tensorflow'"):
            run.log_model(model, name="churn-tree", flavor="tensorflow")
    assert run.outputs() == [] and [a.name for a in repo.artifacts()] == artifacts
    assert not any((repo.meta_dir / "tmp").iterdir())


def test_tampered_or_missing_model_files(registered: Repo, churn: Trained, tmp_path: Path) -> None:
    repo = registered
    folder = repo.get("churn-rf:v1", to=tmp_path / "m")
    before = state(repo)
    weights = folder / "model.skops"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="model.skops.*digest mismatch") as info:
        mlark.load_model(folder)
    assert info.value.fields["file"] == "model.skops"
    weights.unlink()
    with pytest.raises(ModelIntegrityError, match="model.skops") as info:
        mlark.load_model(folder)
    assert info.value.fields["problem"] == "missing"
    (folder / "extra.py").write_text("print('not listed')\n")
    assert state(repo) == before

    # a tampered copy in the run cache is repaired from the verified chunks before loading
    holdout = churn.holdout
    expected = mlark.load_model("models:/churn@production", repo=repo).predict(holdout)
    cached = repo.meta_dir / "cache" / "versions" / churn.models[0].digest / "model.skops"
    cached.chmod(0o644)
    cached.write_bytes(b"tampered")
    np.testing.assert_array_equal(mlark.load_model("models:/churn@production", repo=repo).predict(holdout), expected)
    assert state(repo) == before


def test_unknown_model_references(registered: Repo) -> None:
    repo = registered
    before = state(repo)
    with pytest.raises(NotFound, match="no registered model named 'nope'; registered models: churn, fraud"):
        mlark.load_model("models:/nope@production", repo=repo)
    with pytest.raises(NotFound, match="no registered model named 'nope'"):
        registry.promote(repo, "nope", 1, "staging", "Should fail")
    with pytest.raises(NotFound, match="registered model churn has no alias 'best'"):
        registry.resolve(repo, "models:/churn@best")
    with pytest.raises(NotFound, match="no registered model named 'nope'"):
        registry.history(repo, "nope")
    with pytest.raises(InvalidRef, match="give a version number or an alias, not both"):
        registry.resolve(repo, "models:/churn/1@champion")
    with pytest.raises(NotFound, match="no artifact named 'nope'"):
        registry.register(repo, "churn", "nope:v1", "Does not exist")
    with pytest.raises(NotFound, match="churn-rf:v9 does not exist"):
        registry.register(repo, "churn", "churn-rf:v9", "Does not exist")
    assert state(repo) == before


def test_unknown_stage(registered: Repo) -> None:
    repo = registered
    before = state(repo)
    for stage in ("live", "Prod", "", "production "):
        if stage == "production ":
            continue  # surrounding spaces are tolerated
        with pytest.raises(InvalidInput, match="the stages are: development, staging, production, archived") as info:
            registry.promote(repo, "churn", 1, stage, "Should fail")
        assert info.value.fields["allowed"] == ["development", "staging", "production", "archived"]
    with pytest.raises(InvalidInput, match="unknown stage"):
        registry.promote(repo, "churn", 1, 3, "Should fail")  # type: ignore[arg-type]
    assert state(repo) == before


def test_version_of_another_registered_model(registered: Repo) -> None:
    repo = registered
    before = state(repo)
    with pytest.raises(InvalidInput, match="models:/fraud/1 names a version of registered model fraud, not of churn"):
        registry.promote(repo, "churn", "models:/fraud/1", "staging", "Wrong model")
    with pytest.raises(InvalidInput, match=r"churn-rf:v2 is registered in fraud \(version 1\), not in churn"):
        registry.promote(repo, "churn", "churn-rf:v2", "staging", "Wrong model")
    with pytest.raises(InvalidInput, match="models:/fraud@champion names a version of registered model fraud"):
        registry.set_alias(repo, "churn", "models:/fraud@champion", "best", "Wrong model")
    with pytest.raises(NotFound, match="registered model churn has no version 2; its versions: 1"):
        registry.promote(repo, "churn", 2, "staging", "Number of fraud's version, not churn's")
    with pytest.raises(InvalidInput, match="positive integer"):
        registry.promote(repo, "churn", 0, "staging", "Zero")
    with pytest.raises(InvalidInput, match="positive integer"):
        registry.promote(repo, "churn", True, "staging", "A bool")
    assert state(repo) == before


def test_registering_a_dataset_version(repo: Repo, churn: Trained) -> None:
    before = state(repo)
    with pytest.raises(InvalidInput, match="churn-data:v1 is a version of 'dataset' artifact churn-data, not of a model") as info:
        registry.register(repo, "churn", "churn-data:v1", "Oops, the data")
    assert info.value.fields["type"] == "dataset"
    with pytest.raises(InvalidRef, match="names a path inside a version"):
        registry.register(repo, "churn", "churn-rf:model.skops@latest", "A file of it")
    with pytest.raises(InvalidName, match="invalid registered model name"):
        registry.register(repo, "../churn", "churn-rf:v1", "Bad name")
    with pytest.raises(InvalidInput, match="tag 'x' must have a string value"):
        registry.register(repo, "churn", "churn-rf:v1", "Bad tag", tags={"x": 1})  # type: ignore[dict-item]
    assert state(repo) == before
    assert state(repo)["counts"]["registered_models"] == 0  # no model was created on the way
