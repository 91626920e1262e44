"""A forest's tree arrays on ONNX Runtime predict exactly what scikit-learn predicts (labels, probabilities,
regression values; ties, missing values, rows on thresholds), and the batch path and the server's start
import neither scikit-learn, skops, pandas nor PyTorch for it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("onnxruntime")
pytest.importorskip("pyarrow")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402

from mlark.models import load_model, save_model  # noqa: E402
from mlark.models.flavors import sklearn_trees as st  # noqa: E402
from mlark.pipelines import Predictor, predict_file  # noqa: E402
from mlark.pipelines import onnx_trees, trees  # noqa: E402
from mlark.pipelines.forest import BLOCK_ROWS  # noqa: E402
from mlark.pipelines.predictor import PredictionFailed  # noqa: E402


def _data(seed: int, n: int, classes: int = 2, nan: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    x[:, 2] = rng.integers(0, 5, n)  # a discrete feature: many rows sit exactly on thresholds
    y = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + rng.normal(scale=0.8, size=n)
    labels = np.digitize(y, np.quantile(y, np.linspace(0, 1, classes + 1)[1:-1]))
    if nan:
        x[rng.random(x.shape) < 0.05] = np.nan
    return x, labels


def _queries(seed: int, n: int, nan: bool = False) -> np.ndarray:
    x, _ = _data(seed + 1000, n, nan=nan)
    x[: n // 10] = np.round(x[: n // 10], 1)  # repeated values, ties in votes
    return x


def _compiled(model: Any, method: str, threads: int = 1) -> trees.CompiledTrees:
    arrays = st.build(model, method)
    assert arrays is not None
    compiled = trees.compile_trees(arrays, method, threads=threads)
    assert compiled is not None
    return compiled


CLASSIFIERS: list[Callable[[], Any]] = [
    lambda: RandomForestClassifier(n_estimators=25, random_state=0),
    lambda: RandomForestClassifier(n_estimators=50, random_state=1, min_samples_leaf=3),  # impure leaves
    lambda: RandomForestClassifier(n_estimators=7, max_depth=4, random_state=2),
    lambda: ExtraTreesClassifier(n_estimators=30, random_state=3),
    lambda: RandomForestClassifier(n_estimators=40, random_state=4, class_weight="balanced", max_features=None),
    lambda: DecisionTreeClassifier(random_state=5),
]


@pytest.mark.parametrize("make", CLASSIFIERS)
@pytest.mark.parametrize("classes", [2, 3, 5])
def test_classifiers_exactly(make: Callable[[], Any], classes: int) -> None:
    x, y = _data(0, 2000, classes, nan=True)
    q = _queries(0, 3 * BLOCK_ROWS + 17, nan=True)
    model = make().fit(x, y)
    for method in ("predict", "predict_proba"):
        for threads in (1, 3):
            compiled = _compiled(model, method, threads)
            assert st.same(compiled.predict_columns(list(q.T)), getattr(model, method)(q)), (method, threads)
        assert st.same(compiled.predict_columns(list(q[:1].T)), getattr(model, method)(q[:1]))


@pytest.mark.parametrize("make", [
    lambda: RandomForestRegressor(n_estimators=20, random_state=0),
    lambda: ExtraTreesRegressor(n_estimators=15, random_state=0, min_samples_leaf=2),
    lambda: DecisionTreeRegressor(max_depth=8, random_state=0),
])
def test_regressors_exactly(make: Callable[[], Any]) -> None:
    x, _ = _data(2, 1500, nan=True)
    y = np.nan_to_num(x[:, 0]) * 3.0 + np.sin(np.nan_to_num(x[:, 1]))
    model = make().fit(x, y)
    q = _queries(2, 2 * BLOCK_ROWS + 5, nan=True)
    assert st.same(_compiled(model, "predict", threads=2).predict_columns(list(q.T)), model.predict(q))


def test_ties_resolve_like_scikit_learn() -> None:
    """An even number of pure-leaf trees on data it cannot separate: many exact ties in the votes."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(600, 2))
    y = rng.integers(0, 2, 600)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    q = rng.normal(size=(5000, 2))
    proba = model.predict_proba(q)
    assert (proba[:, 0] == proba[:, 1]).any()  # there are ties
    assert st.same(_compiled(model, "predict").predict_columns(list(q.T)), model.predict(q))


def test_values_next_to_every_threshold() -> None:
    """Every float32 value on, just below and just above every threshold of every tree."""
    x, y = _data(6, 1000, 3)
    model = RandomForestClassifier(n_estimators=12, random_state=0).fit(x, y)
    arrays = st.build(model, "predict_proba")
    assert arrays is not None
    inner = arrays.left != -1
    rows = []
    for f in range(arrays.n_features):
        near = arrays.threshold[inner & (arrays.feature == f)].astype(np.float32)
        below, above = np.nextafter(near, np.float32(-np.inf)), np.nextafter(near, np.float32(np.inf))
        rows.append(np.concatenate([below, near, above]))
    size = max(len(r) for r in rows)
    q = np.column_stack([np.resize(r, size) for r in rows]).astype(np.float64)
    for method in ("predict", "predict_proba"):
        assert st.same(_compiled(model, method).predict_columns(list(q.T)), getattr(model, method)(q))


def test_input_it_leaves_to_scikit_learn() -> None:
    x, y = _data(7, 500)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    compiled = _compiled(model, "predict")
    q = _queries(7, 20)
    assert compiled.predict_columns(list(np.where(np.arange(6) == 1, np.inf, q).T)) is None  # scikit-learn's error
    big = [q[:, 0], (q[:, 1] * 1e9).astype(np.int64), *q[:, 2:].T]  # not all exact in float32
    assert compiled.predict_columns(big) is None
    assert compiled.predict_columns([c.astype(object) for c in q.T]) is None
    no_nan = dataclasses.replace(compiled.arrays, allow_nan=False)
    assert trees.CompiledTrees(no_nan, "predict", compiled._sessions, compiled._groups, 1).predict_columns(
        list(np.where(np.arange(6) == 1, np.nan, q).T)) is None
    ints = [np.round(c * 100).astype(np.int32) for c in q.T]
    assert st.same(compiled.predict_columns(ints), model.predict(np.column_stack(ints)))
    assert st.same(compiled.predict_columns([c[:0] for c in q.T]), model.predict(q)[:0])


def test_graphs_are_valid_onnx() -> None:
    onnx = pytest.importorskip("onnx")
    x, y = _data(8, 400, 3, nan=True)
    model = RandomForestClassifier(n_estimators=6, random_state=0).fit(x, y)
    arrays = st.build(model, "predict")
    assert arrays is not None
    proto = onnx.load_from_string(onnx_trees.forest_graph(arrays, [0, 3, 5]))
    onnx.checker.check_model(proto, full_check=True)
    assert [o.name for o in proto.graph.output] == ["leaf0", "leaf3", "leaf5"]
    thresholds = np.array([-1.5, 0.1, 1e39, -1e39, np.inf, 3.0])
    down = onnx_trees.floor32(thresholds)
    assert (down.astype(np.float64) <= thresholds).all()
    with np.errstate(over="ignore"):
        assert (np.nextafter(down[:4], np.float32(np.inf)).astype(np.float64) > thresholds[:4]).all()


def test_a_runtime_that_disagrees_with_the_reference_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thresholds rounded to nearest instead of down would send some rows the wrong way: the self-check sees it."""
    x, y = _data(9, 800, 2)
    model = RandomForestClassifier(n_estimators=8, random_state=0).fit(x, y)
    arrays = st.build(model, "predict")
    assert arrays is not None
    monkeypatch.setattr(onnx_trees, "floor32", lambda t: t.astype(np.float32))
    assert trees.compile_trees(arrays, "predict") is None


# --------------------------------------------------------------------------- through the model and the files


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "tenure": rng.integers(0, 72, n), "monthly": rng.normal(60, 20, n).round(2),
        "calls": rng.integers(0, 9, n).astype(np.int32), "senior": rng.random(n) < 0.2,
    })  # fmt: skip


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    frame = _frame(3000, 0)
    y = np.where(frame["calls"] > 5, "churn", np.where(frame["tenure"] < 6, "maybe", "stay"))
    model = RandomForestClassifier(n_estimators=30, min_samples_leaf=2, random_state=0).fit(frame, y)
    folder = tmp_path_factory.mktemp("trees") / "churn"
    save_model(model, folder, input_example=frame.head(3))
    return folder, model


def test_predictor_and_batch_files_match_scikit_learn(saved: tuple[Path, Any], tmp_path: Path) -> None:
    folder, model = saved
    predictor = Predictor(load_model(folder))
    assert isinstance(predictor._fast, trees.CompiledTrees)
    q = _frame(70_000, 1)
    q.loc[::97, "monthly"] = np.nan
    expected = model.predict(q)
    np.testing.assert_array_equal(predictor.predict(q), expected)
    np.testing.assert_array_equal(predictor.predict(q.head(1).to_dict("records")), expected[:1])
    table = pa.Table.from_pandas(q, preserve_index=False)
    start = 0
    for batch in table.to_batches(max_chunksize=5000)[:2]:
        np.testing.assert_array_equal(predictor.predict_arrow(batch), expected[start:start + batch.num_rows])
        start += batch.num_rows
    src = tmp_path / "in.parquet"
    pq.write_table(table, src, row_group_size=20_000)
    predict_file(predictor, src, tmp_path / "out.parquet", batch_size=16_384, workers=2)
    assert pq.read_table(tmp_path / "out.parquet").column("prediction").to_pylist() == expected.tolist()
    with pytest.raises(PredictionFailed, match="infinity"):  # scikit-learn's own check, through the estimator
        predictor.predict(q.head(3).assign(monthly=np.inf))


_IMPORTS = """
import json, sys
from pathlib import Path
from mlark.models import load_model
from mlark.pipelines import Predictor, predict_file
{extra}
print(json.dumps(sorted(m for m in ("torch", "sklearn", "skops", "pandas") if m in sys.modules)))
"""


def _imports(code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_batch_prediction_imports_no_framework(saved: tuple[Path, Any], tmp_path: Path) -> None:
    folder, _model = saved
    pq.write_table(pa.Table.from_pandas(_frame(50_000, 2), preserve_index=False), tmp_path / "in.parquet")
    extra = (f"predict_file(Predictor(load_model({str(folder)!r})), {str(tmp_path / 'in.parquet')!r}, "
             f"{str(tmp_path / 'out.parquet')!r}, workers=2)")
    assert _imports(_IMPORTS.format(extra=extra)) == []


def test_serving_start_imports_no_torch(saved: tuple[Path, Any], tmp_path: Path) -> None:
    """The server's load (verify, load, smoke prediction) for a forest and for a model skops must read."""
    folder, _model = saved
    frame = _frame(300, 3)
    other = tmp_path / "logreg"
    save_model(LogisticRegression(max_iter=500).fit(frame, frame["calls"] > 4), other, input_example=frame.head(2))
    extra = (
        "from mlark.serving.served import load_version\n"
        "from mlark.serving.source import FolderSource\n"
        "source = FolderSource()\n"
        f"for folder in ({str(folder)!r}, {str(other)!r}):\n"
        "    loaded = load_version('m', source.fetch, source.resolve(folder))\n"
        "    assert loaded.predictor is not None\n"
    )
    assert "torch" not in _imports(_IMPORTS.format(extra=extra))
