"""mlark.sklearn.autolog with the real scikit-learn: params, scores, the fitted model, outermost fits only."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skops")

import mlark  # noqa: E402
import mlark.sklearn  # noqa: E402
from mlark.ops.repo import Repo  # noqa: E402
from mlark.tracking.capture import Capture  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

QUIET = replace(Capture.none(), host=True)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    r = Repo.init(tmp_path / "project", author="alice")
    yield r
    r.close()


@pytest.fixture
def iris() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return tuple(train_test_split(X, y, test_size=0.3, random_state=0))  # type: ignore[return-value]


@pytest.fixture(autouse=True)
def _disable_autolog() -> Iterator[None]:
    yield
    mlark.sklearn.autolog(disable=True)


def _runs(repo: Repo, project: str) -> list[mlark.ops.runs.Run]:  # type: ignore[name-defined]
    return mlark.runs(project, repo=repo)


def test_fit_becomes_a_run_with_params_scores_and_the_model(repo: Repo, iris, tmp_path: Path) -> None:
    Xtr, Xva, ytr, yva = iris
    mlark.sklearn.autolog(project="iris", repo=repo, capture=QUIET, validation=(Xva, yva))

    clf = RandomForestClassifier(n_estimators=7, max_depth=3, random_state=0).fit(Xtr, ytr)

    (run,) = _runs(repo, "iris")
    assert run.status == "finished"
    assert run.params["n_estimators"] == 7
    assert run.params["max_depth"] == 3
    assert run.params["class_weight"] is None
    assert run.params["criterion"] == "gini"
    assert run.metrics["training_score"] == pytest.approx(clf.score(Xtr, ytr))
    assert run.metrics["validation_score"] == pytest.approx(clf.score(Xva, yva))
    assert run.metrics["fit_time_s"] > 0
    assert run.tags["estimator_class"] == "sklearn.ensemble.RandomForestClassifier"
    assert run.tags["mlark.autolog"] == "sklearn"

    (version,) = run.outputs()
    assert version.name == "iris-RandomForestClassifier"
    assert version.type == "model"
    assert "validation_score" in version.message
    folder = repo.get(f"{version.name}:v{version.number}", to=tmp_path / "restored")
    loaded = mlark.sklearn.load_model(folder)
    assert isinstance(loaded, RandomForestClassifier)
    np.testing.assert_array_equal(loaded.predict(Xva), clf.predict(Xva))
    # The folder is a model of mlark.models: it names the run that produced it.
    from mlark.models import load_model

    model = load_model(folder)
    assert model.run_id == run.id
    np.testing.assert_array_equal(model.predict(Xva), clf.predict(Xva))


def test_only_the_outermost_fit_is_logged(repo: Repo, iris) -> None:
    Xtr, Xva, ytr, yva = iris
    mlark.sklearn.autolog(project="nested", repo=repo, capture=QUIET, log_models=False)

    make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=300)).fit(Xtr, ytr)
    search = GridSearchCV(RandomForestClassifier(n_estimators=3, random_state=0), {"max_depth": [2, 3]}, cv=2)
    search.fit(Xtr, ytr)

    found = {r.tags["estimator_class"]: r for r in _runs(repo, "nested")}
    assert sorted(found) == ["sklearn.model_selection.GridSearchCV", "sklearn.pipeline.Pipeline"]
    pipe = found["sklearn.pipeline.Pipeline"]
    assert pipe.params["steps"] == [
        ["standardscaler", "StandardScaler()"],
        ["logisticregression", "LogisticRegression(C=0.5, max_iter=300)"],
    ]
    assert "training_score" in pipe.metrics
    grid = found["sklearn.model_selection.GridSearchCV"]
    assert grid.params["param_grid.max_depth"] == [2, 3]
    assert grid.params["cv"] == 2
    assert grid.params["estimator"] == "RandomForestClassifier(n_estimators=3, random_state=0)"
    assert grid.metrics["training_score"] == pytest.approx(search.score(Xtr, ytr))


def test_logs_into_the_active_run_and_leaves_it_running(repo: Repo, iris) -> None:
    Xtr, Xva, ytr, yva = iris
    mlark.sklearn.autolog(project="ignored", repo=repo, capture=QUIET, log_models=False)

    with mlark.start_run("churn", name="mine", repo=repo, capture=QUIET) as run:
        with mlark.sklearn.validation(Xva, yva):
            LogisticRegression(C=2.0, max_iter=300).fit(Xtr, ytr)
        assert run.is_live
        assert run.params["C"] == 2.0
        run.log({"extra": 1.0})

    assert _runs(repo, "ignored") == []
    (stored,) = _runs(repo, "churn")
    assert stored.id == run.id and stored.status == "finished"
    assert set(stored.metrics) == {"extra", "fit_time_s", "training_score", "validation_score"}


def test_a_failing_fit_fails_its_run_and_raises(repo: Repo) -> None:
    mlark.sklearn.autolog(project="bad", repo=repo, capture=QUIET)
    X = np.array([[0.0, np.nan], [1.0, 2.0]])
    with pytest.raises(ValueError, match="NaN"):
        LogisticRegression().fit(X, [0, 1])
    (run,) = _runs(repo, "bad")
    assert run.status == "failed"
    assert "NaN" in (run.error or "")
    assert run.params["C"] == 1.0  # recorded before fitting


def test_recording_problems_warn_and_never_break_fit(repo: Repo, iris) -> None:
    Xtr, _, ytr, _ = iris
    mlark.sklearn.autolog(project="conflict", repo=repo, capture=QUIET, log_models=False)
    with mlark.start_run("conflict", repo=repo, capture=QUIET, params={"n_estimators": 5}) as run:
        with pytest.warns(mlark.sklearn.AutologWarning, match="n_estimators"):
            clf = RandomForestClassifier(n_estimators=4, max_depth=2, random_state=0).fit(Xtr, ytr)
        assert hasattr(clf, "estimators_")
        # The other params and the scores are recorded; the write-once param keeps its value.
        assert run.params["n_estimators"] == 5
        assert run.params["max_depth"] == 2
        assert "training_score" in run.metrics


def _double(x: np.ndarray) -> np.ndarray:
    return x * 2


class TinyClassifier(ClassifierMixin, BaseEstimator):
    """A user-defined estimator, defined after sklearn was imported (patched when autolog runs)."""

    def __init__(self, weights: dict | None = None, scale: float = float("nan"), hook=_double) -> None:
        self.weights = weights
        self.scale = scale
        self.hook = hook

    def fit(self, X, y):  # noqa: ANN001
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):  # noqa: ANN001
        return np.full(len(X), self.classes_[0])


def test_params_that_are_not_json_are_flattened_or_named(repo: Repo, iris) -> None:
    Xtr, _, ytr, _ = iris
    mlark.sklearn.autolog(project="flat", repo=repo, capture=QUIET, log_models=False)
    TinyClassifier(weights={0: 1.0, "b": {"c": 2}}).fit(Xtr, ytr)
    FunctionTransformer(func=_double).fit(Xtr)
    runs = {r.tags["estimator_class"].rsplit(".", 1)[-1]: r for r in _runs(repo, "flat")}
    tiny = runs["TinyClassifier"].params
    assert tiny["weights.0"] == 1.0 and tiny["weights.b.c"] == 2
    assert np.isnan(tiny["scale"])
    assert tiny["hook"].endswith("._double")
    assert runs["FunctionTransformer"].params["func"].endswith("._double")
    assert "training_score" not in runs["FunctionTransformer"].metrics  # no score(): not scored


def test_disable_restores_every_fit(repo: Repo, iris) -> None:
    Xtr, _, ytr, _ = iris
    original_lr_fit = LogisticRegression.__dict__["fit"]
    original_tiny_fit = TinyClassifier.__dict__["fit"]
    assert "__init_subclass__" not in BaseEstimator.__dict__

    mlark.sklearn.autolog(project="off", repo=repo, capture=QUIET, log_models=False)
    assert LogisticRegression.__dict__["fit"] is not original_lr_fit

    class DefinedLater(TinyClassifier):
        def fit(self, X, y):  # noqa: ANN001
            return super().fit(X, y)

    DefinedLater().fit(Xtr, ytr)  # patched when it was defined; super().fit() is not logged again
    assert len(_runs(repo, "off")) == 1

    mlark.sklearn.autolog(disable=True)
    assert LogisticRegression.__dict__["fit"] is original_lr_fit
    assert TinyClassifier.__dict__["fit"] is original_tiny_fit
    assert "__init_subclass__" not in BaseEstimator.__dict__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RandomForestClassifier(n_estimators=2).fit(Xtr, ytr)
        DefinedLater().fit(Xtr, ytr)
    assert len(_runs(repo, "off")) == 1
