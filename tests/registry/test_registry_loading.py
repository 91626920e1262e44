"""mlark.load_model through every kind of reference and from a folder: the same predictions; run.log_model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from registry_testkit import COLUMNS, QUIET, Trained

import mlark
from mlark.errors import InvalidInput, InvalidRef, NotFound
from mlark.models.errors import ModelNotFound
from mlark.ops import registry, run_start
from mlark.ops.repo import Repo


def test_every_reference_and_a_folder_give_the_same_predictions(repo: Repo, churn: Trained, tmp_path: Path) -> None:
    registry.register(repo, "churn", "churn-rf:v2", "Depth 6 on the June export")
    registry.promote(repo, "churn", 1, "production", "Best offline AUC")
    registry.set_alias(repo, "churn", 1, "champion", "Best offline AUC")
    folder = repo.get("churn-rf:v2", to=tmp_path / "checkout")
    holdout = churn.holdout
    assert holdout is not None
    expected = mlark.load_model(folder).predict(holdout)  # a folder: no repository needed
    refs = ["models:/churn@production", "models:/churn@champion", "models:/churn/1", "models:/churn",
            "churn-rf@best", "churn-rf:v2", "churn-rf", f"churn-rf:{churn.models[1].digest[:10]}"]
    for ref in refs:
        model = mlark.load_model(ref, repo=repo)
        np.testing.assert_array_equal(model.predict(holdout), expected, err_msg=ref)
        assert model.flavor == "sklearn" and model.run_id == churn.runs[1].id
    assert mlark.load_model(str(folder)).predict(holdout).tolist() == expected.tolist()
    # the versions are materialised in the run cache, verified
    assert (repo.meta_dir / "cache" / "versions" / churn.models[1].digest / "mlark-model.json").is_file()
    # and the first model is another model
    first = mlark.load_model("churn-rf:v1", repo=repo).predict(holdout)
    assert mlark.load_model("churn-rf:v1", repo=repo).raw.max_depth == 3
    assert first.shape == expected.shape


def test_load_model_opens_the_repository_from_the_environment(repo: Repo, churn: Trained,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from mlark import api

    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    monkeypatch.setenv("MLARK_REPO", str(repo.root))
    monkeypatch.chdir("/")
    api._forget_repos()
    try:
        model = mlark.load_model("models:/churn/1")
        assert model.raw.max_depth == 3
        assert mlark.registry.resolve("models:/churn/1").version == "churn-rf:v1"
        assert mlark.registry.register("churn", "churn-rf:v2", "Second candidate") == 2
        assert [v.number for v in mlark.registry.show("churn").versions] == [1, 2]
    finally:
        api._forget_repos()


def test_a_path_inside_a_version_loads_the_model_folder_there(repo: Repo, churn: Trained, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    repo.get("churn-rf:v1", to=bundle / "rf")
    (bundle / "README.txt").write_text("two things\n")
    repo.add(bundle, name="churn-bundle", type="model", message="The forest and its notes")
    model = mlark.load_model("churn-bundle:rf@latest", repo=repo)
    assert model.raw.max_depth == 3


def test_refused_references(repo: Repo, churn: Trained, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no registered model named 'nope'"):
        mlark.load_model("models:/nope@production", repo=repo)
    registry.register(repo, "churn", "churn-rf:v1", "First candidate")
    with pytest.raises(NotFound, match="no version of registered model churn is in production; "
                                       "versions by stage: development: 1"):
        mlark.load_model("models:/churn@production", repo=repo)
    with pytest.raises(NotFound, match="registered model churn has no version 9; its versions: 1"):
        mlark.load_model("models:/churn/9", repo=repo)
    with pytest.raises(NotFound, match="no artifact named 'nope'"):
        mlark.load_model("nope:v1", repo=repo)
    with pytest.raises(InvalidInput, match="churn-data:v1 is a version of 'dataset' artifact churn-data, not a model"):
        mlark.load_model("churn-data:v1", repo=repo)
    with pytest.raises(InvalidRef, match="is not a version number"):
        mlark.load_model("models:/churn/Production", repo=repo)
    with pytest.raises(ModelNotFound, match="no model folder"):
        mlark.load_model(tmp_path / "missing")
    with pytest.raises(ModelNotFound, match="no model folder"):
        mlark.load_model(str(tmp_path / "missing" / "x"), repo=repo)
    with pytest.raises(InvalidInput, match="trust must say what it trusts|trust="):
        mlark.load_model("models:/churn/1", trust=True, repo=repo)


def test_log_model_with_options_and_aliases(repo: Repo, churn: Trained) -> None:
    from sklearn.linear_model import LogisticRegression

    from registry_testkit import churn_frame

    frame = churn_frame(5)
    X, y = frame[COLUMNS], frame["churned"]
    with run_start.start_run(repo, "churn", "logreg", capture_options=QUIET) as run:
        clf = LogisticRegression(max_iter=500).fit(X, y)
        version = run.log_model(clf, name="churn-logreg", input_example=X.head(3), aliases=["candidate"],
                                method="predict_proba", metadata={"holdout_auc": 0.81}, message="Linear baseline")
    assert version.type == "model" and version.aliases == ("candidate", "latest")
    assert version.message == "Linear baseline"
    assert version.metadata["metadata"] == {"holdout_auc": 0.81}
    assert version.metadata["signature"]["inputs"]["columns"][0] == {"name": "tenure", "dtype": "int64"}
    assert [v.ref for v in run.outputs()] == ["churn-logreg:v1"]
    probabilities = mlark.load_model("churn-logreg@candidate", repo=repo).predict(X.head(4))
    assert probabilities.shape == (4, 2)
    assert not any(p.name.startswith("model-") for p in (repo.meta_dir / "tmp").iterdir())


def test_log_model_with_pytorch(repo: Repo, torch_class_module: None) -> None:
    torch = pytest.importorskip("torch")
    from models_testkit_torch_like import TinyNet  # type: ignore[import-not-found]

    net = TinyNet(4, 3)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    with run_start.start_run(repo, "vision", "tiny", capture_options=QUIET) as run:
        version = run.log_model(net, name="tiny-net", input_example=x, init_args={"n_in": 4, "n_out": 3})
    assert version.metadata["flavor"] == "pytorch"
    registry.register(repo, "tiny", version.ref, "A tiny network")
    loaded = mlark.load_model("models:/tiny/1", repo=repo)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-6)


@pytest.fixture
def torch_class_module(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module a saved torch model can name by class path (classes in __main__ or tests are fine too)."""
    folder = tmp_path_factory.mktemp("torchmod")
    (folder / "models_testkit_torch_like.py").write_text(
        "import torch\n\n"
        "class TinyNet(torch.nn.Module):\n"
        "    def __init__(self, n_in: int, n_out: int) -> None:\n"
        "        super().__init__()\n"
        "        self.fc = torch.nn.Linear(n_in, n_out)\n\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n"
    )
    monkeypatch.syspath_prepend(str(folder))
