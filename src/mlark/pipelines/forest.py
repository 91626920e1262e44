"""A faster, exact ``predict`` for scikit-learn random forests and extra-trees ensembles.

scikit-learn predicts with a forest by handing every tree to joblib and summing the trees'
outputs. For a few rows the joblib round trip is most of the time (a 50-tree forest takes about
6 ms for one row, 0.5 ms without it); for many rows the trees' traversal is, and for class labels
much of it is wasted: once one class leads by more votes than the trees still to come could
overturn, the label of that row is settled.

:func:`accelerate` returns a function that computes *exactly* what the estimator's own method
returns, bit for bit, or None when the estimator is not one it knows:

- the input is validated by the estimator itself (``_validate_X_predict``: same float32
  conversion, same errors for infinities, NaN or a wrong number of features);
- every tree's output is what the tree's own ``predict_proba``/``predict`` computes
  (``tree_.predict(X)`` sliced to its classes or its one output), and the outputs are summed in the
  forest's order, as scikit-learn does with ``n_jobs=None`` (the row-wise sums are the same float64
  operations in the same order);
- for labels (``predict`` of a classifier), a row leaves the computation as soon as its leading
  class is ahead of every other class by more than the number of trees left (each tree adds at most
  1 to any class), plus a margin far above float64 rounding: its final ``argmax`` cannot change.
  The rows still undecided carry on with the remaining trees.

Rows are processed in blocks (so a block's input and sums stay in cache), and blocks can run on
several threads (tree traversal releases the GIL); a row's result does not depend on its block.
Because this leans on how scikit-learn computes a forest, :func:`accelerate` checks itself when
it is called: it predicts a probe built from the trees' own thresholds (values on, just below and
just above them, and NaN where the trees handle missing values) both ways and gives up (returns
None, so the estimator's own method is used) unless the results are identical.
tests/pipelines/test_pipelines_forest.py checks equality with scikit-learn on many inputs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

#: Rows per block: a block's float32 input and float64 sums stay in the CPU cache.
BLOCK_ROWS = 16_384
#: Below this many rows one thread does it all (starting threads costs more than it saves).
PARALLEL_MIN_ROWS = 2 * BLOCK_ROWS
#: How far past the remaining trees a lead must be to count as settled (float64 sums of at most a
#: few thousand values in [0, 1] are off by less than 1e-12).
SETTLED_EPSILON = 1e-9

_FORESTS = {
    ("sklearn.ensemble._forest", "RandomForestClassifier"): "classifier",
    ("sklearn.ensemble._forest", "ExtraTreesClassifier"): "classifier",
    ("sklearn.ensemble._forest", "RandomForestRegressor"): "regressor",
    ("sklearn.ensemble._forest", "ExtraTreesRegressor"): "regressor",
}
_TREES = {"DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor"}

Fast = Callable[[Any], np.ndarray]


def accelerate(estimator: Any, method: str, *, threads: int = 1) -> Fast | None:
    """A function computing ``getattr(estimator, method)(X)`` exactly and faster, or None.

    Known: random forests and extra-trees (classifiers: ``predict``, ``predict_proba``;
    regressors: ``predict``) with one output. The exact class is required (a subclass may
    override what it computes). ``threads`` bounds the threads one call may use.
    """
    kind = _FORESTS.get((type(estimator).__module__, type(estimator).__name__))
    if kind is None or getattr(estimator, "n_outputs_", None) != 1:
        return None
    trees = getattr(estimator, "estimators_", None)
    if not trees or not hasattr(estimator, "_validate_X_predict"):
        return None
    if any(type(t).__name__ not in _TREES for t in trees):
        return None
    fitted_on_array = hasattr(estimator, "n_features_in_") and not hasattr(estimator, "feature_names_in_")

    if kind == "classifier" and method in ("predict", "predict_proba"):
        n_classes = int(estimator.n_classes_)
        classes = estimator.classes_
        labels = method == "predict"

        def block(x: np.ndarray) -> np.ndarray:
            return _classify(trees, x, n_classes, labels)

        def finish(out: np.ndarray) -> np.ndarray:
            return classes.take(out, axis=0) if labels else out

    elif kind == "regressor" and method == "predict":

        def block(x: np.ndarray) -> np.ndarray:
            return _regress(trees, x)

        def finish(out: np.ndarray) -> np.ndarray:
            return out

    else:
        return None

    def predict(data: Any) -> np.ndarray:
        if fitted_on_array and hasattr(data, "columns"):
            data = data.to_numpy()  # what the sklearn flavor does: names would only draw a warning
        x = estimator._validate_X_predict(data)
        if not isinstance(x, np.ndarray):  # sparse input: leave it to scikit-learn
            return getattr(estimator, method)(data)
        return finish(in_blocks(block, x, threads))

    try:
        probe = _probe(estimator, trees)
        same = np.array_equal(predict(probe), getattr(estimator, method)(probe))
    except Exception:  # noqa: BLE001 - anything unexpected: scikit-learn's own path it is
        return None
    return predict if same else None


def _probe(estimator: Any, trees: list[Any], rows: int = 512) -> Any:
    """Rows whose values sit on, just below and just above the trees' split thresholds."""
    n_features = int(estimator.n_features_in_)
    rng = np.random.default_rng(0)
    columns = []
    for f in range(n_features):
        values = np.concatenate([t.tree_.threshold[t.tree_.feature == f] for t in trees[:8]])
        values = values[np.isfinite(values) & (np.abs(values) < 1e38)]  # NaN-routing splits have infinite ones
        if values.size == 0:
            values = np.zeros(1)
        picked = rng.choice(values, rows)
        nudge = rng.integers(-1, 2, rows)  # below, on, above (in float32, which the trees compare)
        as32 = picked.astype(np.float32)
        col = np.where(nudge < 0, np.nextafter(as32, np.float32(-np.inf)),
                       np.where(nudge > 0, np.nextafter(as32, np.float32(np.inf)), as32)).astype(np.float64)
        columns.append(col)
    x = np.column_stack(columns)
    if getattr(trees[0], "_support_missing_values", None) is not None and _handles_nan(trees):
        x[rng.random(x.shape) < 0.02] = np.nan
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        import pandas as pd

        return pd.DataFrame(x, columns=list(names))
    return x


def _handles_nan(trees: list[Any]) -> bool:
    missing = getattr(trees[0].tree_, "missing_go_to_left", None)
    return missing is not None and bool(np.any(missing))


def in_blocks(block: Callable[[np.ndarray], np.ndarray], x: np.ndarray, threads: int) -> np.ndarray:
    """``block`` applied to consecutive blocks of :data:`BLOCK_ROWS` rows (on up to ``threads`` threads
    for large inputs), the results concatenated in order."""
    n = x.shape[0]
    if n <= BLOCK_ROWS:
        return block(x)
    starts = range(0, n, BLOCK_ROWS)
    if threads > 1 and n >= PARALLEL_MIN_ROWS:
        with ThreadPoolExecutor(max_workers=min(threads, len(starts)), thread_name_prefix="mlark-forest") as pool:
            parts = list(pool.map(lambda s: block(x[s:s + BLOCK_ROWS]), starts))
    else:
        parts = [block(x[s:s + BLOCK_ROWS]) for s in starts]
    return np.concatenate(parts, axis=0)


def _classify(trees: list[Any], x: np.ndarray, n_classes: int, labels: bool) -> np.ndarray:
    n_trees = len(trees)
    n = x.shape[0]
    sums = np.zeros((n, n_classes), dtype=np.float64)
    if not labels:
        for tree in trees:
            sums += tree.tree_.predict(x)[:, :n_classes]
        sums /= n_trees
        return sums
    out = np.empty(n, dtype=np.intp)
    rows = np.arange(n)
    for k, tree in enumerate(trees):
        sums += tree.tree_.predict(x)[:, :n_classes]
        remaining = n_trees - k - 1
        # A lead larger than the trees left is only possible past half of the forest.
        if remaining == 0 or 2 * (k + 1) <= n_trees:
            continue
        if n_classes == 2:
            lead = np.abs(sums[:, 0] - sums[:, 1])
        else:
            top = np.partition(sums, n_classes - 2, axis=1)
            lead = top[:, -1] - top[:, -2]
        settled = lead > remaining + SETTLED_EPSILON
        if not settled.any():
            continue
        out[rows[settled]] = np.argmax(sums[settled], axis=1)
        keep = ~settled
        rows, sums, x = rows[keep], sums[keep], x[keep]
        if rows.size == 0:
            return out
    sums /= n_trees
    out[rows] = np.argmax(sums, axis=1)
    return out


def _regress(trees: list[Any], x: np.ndarray) -> np.ndarray:
    total = np.zeros(x.shape[0], dtype=np.float64)
    for tree in trees:
        total += tree.tree_.predict(x)[:, 0]
    total /= len(trees)
    return total
