"""The accelerated forest predict computes exactly what scikit-learn computes, or stands aside."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("sklearn")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)

from mlark.pipelines.forest import BLOCK_ROWS, accelerate  # noqa: E402


def _data(seed: int, n: int, classes: int = 2, nan: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    x[:, 2] = rng.integers(0, 5, n)  # a discrete feature: many rows sit exactly on thresholds
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + rng.normal(scale=0.8, size=n))
    labels = np.digitize(y, np.quantile(y, np.linspace(0, 1, classes + 1)[1:-1]))
    if nan:
        x[rng.random(x.shape) < 0.05] = np.nan
    return x, labels


def _queries(seed: int, n: int, nan: bool = False) -> np.ndarray:
    x, _ = _data(seed + 1000, n, nan=nan)
    x[: n // 10] = np.round(x[: n // 10], 1)  # repeated values, ties in votes
    return x


def _equal(a: Any, b: Any) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


CLASSIFIERS = [
    lambda: RandomForestClassifier(n_estimators=25, random_state=0),
    lambda: RandomForestClassifier(n_estimators=50, random_state=1, min_samples_leaf=3),  # impure leaves
    lambda: RandomForestClassifier(n_estimators=7, max_depth=4, random_state=2),
    lambda: ExtraTreesClassifier(n_estimators=30, random_state=3),
    lambda: RandomForestClassifier(n_estimators=40, random_state=4, class_weight="balanced", max_features=None),
]


@pytest.mark.parametrize("make", CLASSIFIERS)
@pytest.mark.parametrize("classes", [2, 3, 5])
@pytest.mark.parametrize("frame", [False, True])
def test_classifiers_exactly(make: Any, classes: int, frame: bool) -> None:
    x, y = _data(0, 2000, classes)
    q = _queries(0, 3 * BLOCK_ROWS + 17)
    if frame:
        names = [f"f{i}" for i in range(x.shape[1])]
        x, q = pd.DataFrame(x, columns=names), pd.DataFrame(q, columns=names)
    model = make().fit(x, y)
    for method in ("predict", "predict_proba"):
        fast = accelerate(model, method)
        assert fast is not None, method
        assert _equal(fast(q), getattr(model, method)(q)), method
        threaded = accelerate(model, method, threads=3)
        assert threaded is not None and _equal(threaded(q), getattr(model, method)(q)), method
        assert _equal(fast(q[:1] if frame else q[:1]), getattr(model, method)(q[:1]))


def test_string_labels_and_missing_values() -> None:
    x, y = _data(1, 1500, 3, nan=True)
    labels = np.array(["low", "mid", "high"])[y]
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(x, labels)
    q = _queries(1, 5000, nan=True)
    fast = accelerate(model, "predict")
    assert fast is not None and _equal(fast(q), model.predict(q))


@pytest.mark.parametrize("make", [
    lambda: RandomForestRegressor(n_estimators=20, random_state=0),
    lambda: ExtraTreesRegressor(n_estimators=15, random_state=0, min_samples_leaf=2),
])
def test_regressors_exactly(make: Any) -> None:
    x, _ = _data(2, 1500)
    y = x[:, 0] * 3.0 + np.sin(x[:, 1])
    model = make().fit(x, y)
    q = _queries(2, 2 * BLOCK_ROWS + 5)
    fast = accelerate(model, "predict", threads=2)
    assert fast is not None and _equal(fast(q), model.predict(q))


def test_ties_resolve_like_scikit_learn() -> None:
    """An even number of pure-leaf trees on data it cannot separate: many exact ties in the votes."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(600, 2))  # distinct points, random labels: pure leaves, votes split 5 to 5 often
    y = rng.integers(0, 2, 600)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    q = rng.normal(size=(5000, 2))
    proba = model.predict_proba(q)
    assert (proba[:, 0] == proba[:, 1]).any()  # there are ties
    fast = accelerate(model, "predict")
    assert fast is not None and _equal(fast(q), model.predict(q))


def test_input_errors_are_scikit_learns() -> None:
    x, y = _data(3, 500)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    fast = accelerate(model, "predict")
    assert fast is not None
    for bad in (np.zeros((3, 4)), np.full((2, 6), np.inf)):
        with pytest.raises(ValueError) as ours:
            fast(bad)
        with pytest.raises(ValueError) as theirs:
            model.predict(bad)
        assert str(ours.value) == str(theirs.value)


def test_what_it_does_not_know_is_left_to_scikit_learn() -> None:
    x, y = _data(4, 300)

    class MyForest(RandomForestClassifier):
        pass

    assert accelerate(GradientBoostingClassifier(n_estimators=5).fit(x, y), "predict") is None
    assert accelerate(MyForest(n_estimators=3).fit(x, y), "predict") is None
    two_outputs = RandomForestClassifier(n_estimators=3).fit(x, np.column_stack([y, y]))
    assert accelerate(two_outputs, "predict") is None
    model = RandomForestClassifier(n_estimators=3).fit(x, y)
    assert accelerate(model, "predict_log_proba") is None
    assert accelerate(model, "apply") is None
    assert accelerate(RandomForestRegressor(n_estimators=3).fit(x, y), "predict_proba") is None


def test_a_forest_that_disagrees_with_its_probe_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """If scikit-learn ever computed a forest differently, the self-check gives the work back to it."""
    import mlark.pipelines.forest as forest

    x, y = _data(5, 300)
    model = RandomForestClassifier(n_estimators=4, random_state=0).fit(x, y)
    monkeypatch.setattr(forest, "_classify", lambda trees, x, n, labels: np.ones(len(x), dtype=np.intp))
    fast = forest.accelerate(model, "predict")
    assert fast is None
