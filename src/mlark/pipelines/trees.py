"""Predicting with a forest's node arrays through ONNX Runtime: what scikit-learn predicts, without scikit-learn.

A model saved by the sklearn flavor carries, for random forests, extra-trees and decision trees,
the node arrays of its trees (:mod:`mlark.models.flavors.sklearn_trees`). :func:`compile_trees`
turns them into ONNX Runtime sessions that find the leaf every row reaches in every tree
(:mod:`mlark.pipelines.onnx_trees`); the leaf values are then combined here with numpy, in
scikit-learn's order and with its operations, so the results are identical, bit for bit:

- float32 input (the caller's values cast as scikit-learn casts them), leaves found exactly as
  scikit-learn's traversal finds them (thresholds, missing values);
- the trees' leaf values summed from zeros in the forest's order, divided by the number of trees;
  labels are the first class with the largest mean;
- for labels, a row stops once its leading class is ahead of every other by more than the trees
  still to come (each adds at most 1 to a class), plus a margin far above float64 rounding: the
  trees run in groups (one session per group), the first group being the smallest number of trees
  after which a row can be settled, and only unsettled rows go on to the next group.

Input that scikit-learn would refuse or treat specially (infinities, NaN where the trees take
none, integers too large for float32 to hold exactly) is not handled here: :meth:`CompiledTrees.
predict_columns` returns None and the caller predicts with the estimator itself, which raises its
own error. :func:`compile_trees` checks itself on a probe built from the trees' thresholds against
:func:`mlark.models.flavors.sklearn_trees.predict_reference` and returns None unless identical.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mlark.models.flavors import sklearn_trees
from mlark.models.flavors.sklearn_trees import TreeArrays
from mlark.pipelines.forest import SETTLED_EPSILON, in_blocks

#: Trees per session after the first group (labels only): smaller groups drop settled rows sooner.
GROUP = 4
#: Integers beyond this magnitude are not all exact in float32 (left to scikit-learn).
EXACT_INT = 1 << 24
NUMERIC = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64"}  # fmt: skip


def fits_signature(arrays: TreeArrays, signature: Any) -> bool:
    """True when the model's input is numeric columns (or one [-1, n_features] tensor) that scikit-learn
    would receive in the order it was fitted on."""
    if signature is None:
        return False
    inputs = signature.inputs
    specs = list(inputs.specs)
    if inputs.kind == "columns":
        names = [s.name for s in specs]
        if len(specs) != arrays.n_features or any(s.dtype not in NUMERIC for s in specs):
            return False
        return arrays.feature_names is None or tuple(names) == arrays.feature_names
    if len(specs) != 1 or specs[0].dtype not in NUMERIC:
        return False
    shape = tuple(specs[0].shape or ())
    return len(shape) == 2 and shape[1] == arrays.n_features


class CompiledTrees:
    """``predict``/``predict_proba`` of the estimator the arrays came from, on ONNX Runtime."""

    def __init__(self, arrays: TreeArrays, method: str, sessions: list[Any], groups: list[list[int]],
                 threads: int) -> None:
        self.arrays = arrays
        self.method = method
        self.threads = max(1, threads)
        self._sessions = sessions
        self._groups = groups
        self._labels = arrays.kind == "classifier" and method == "predict"
        self._settle = self._labels and arrays.combine == "mean" and arrays.width >= 2
        off = arrays.offsets
        self._values = [arrays.value[int(off[t]):int(off[t + 1])] for t in range(arrays.n_trees)]

    # ---------------------------------------------------------------- input

    def __call__(self, data: Any) -> np.ndarray | None:
        """Predictions for input prepared by the model (a DataFrame of the signature's columns, or an
        array), or None when the estimator itself should predict (see :meth:`predict_columns`)."""
        if isinstance(data, np.ndarray):
            if data.ndim != 2 or data.shape[1] != self.arrays.n_features:
                return None
            columns = [data[:, j] for j in range(data.shape[1])]
        elif type(data).__name__ == "DataFrame" and data.shape[1] == self.arrays.n_features:
            columns = [np.asarray(data.iloc[:, j].to_numpy()) for j in range(data.shape[1])]
        else:
            return None
        return self.predict_columns(columns)

    def predict_columns(self, columns: Sequence[np.ndarray]) -> np.ndarray | None:
        """Predictions for the input columns in the estimator's order, or None when they hold something
        scikit-learn would refuse or treat differently (the caller then asks the estimator)."""
        x = self.matrix(columns)
        return None if x is None else self.predict_matrix(x)

    def matrix(self, columns: Sequence[np.ndarray]) -> np.ndarray | None:
        """The float32 [rows, features] scikit-learn would make of the columns, or None."""
        if len(columns) != self.arrays.n_features:
            return None
        rows = len(columns[0]) if columns else 0
        x = np.empty((rows, len(columns)), dtype=np.float32)
        for j, col in enumerate(columns):
            kind = col.dtype.kind
            if kind in "iu":
                if rows and (int(col.min()) < -EXACT_INT or int(col.max()) > EXACT_INT):
                    return None
            elif kind not in "fb" or col.shape != (rows,):
                return None
            x[:, j] = col
        finite = np.isfinite(x)
        if not finite.all():
            if np.isinf(x).any() or not self.arrays.allow_nan:
                return None
        return x

    # ---------------------------------------------------------------- predicting

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """The estimator's output for float32 rows ``x`` (checked by :meth:`matrix`)."""
        if x.shape[0] == 0:
            return sklearn_trees.predict_reference(self.arrays, x, self.method)
        out = in_blocks(self._block, x, self.threads)
        if self._labels:
            assert self.arrays.classes is not None
            return self.arrays.classes.take(out, axis=0)
        return sklearn_trees.finish(self.arrays, out, self.method)

    def _leaves(self, session: Any, x: np.ndarray) -> list[np.ndarray]:
        return [leaf[:, 0].astype(np.intp) for leaf in session.run(None, {"X": x})]

    def _block(self, x: np.ndarray) -> np.ndarray:
        a = self.arrays
        n = x.shape[0]
        if a.combine == "single":
            ids = self._leaves(self._sessions[0], x)[0]
            sums = self._values[0].take(ids, axis=0)
            return np.argmax(sums, axis=1) if self._labels else sums
        sums = np.zeros((n, a.width), dtype=np.float64)
        n_trees = a.n_trees
        if not self._settle:
            for session, group in zip(self._sessions, self._groups):
                for t, ids in zip(group, self._leaves(session, x)):
                    sums += self._values[t].take(ids, axis=0)
            sums /= n_trees
            return np.argmax(sums, axis=1) if self._labels else sums
        out = np.empty(n, dtype=np.intp)
        rows = np.arange(n)
        for session, group in zip(self._sessions, self._groups):
            for t, ids in zip(group, self._leaves(session, x)):
                sums += self._values[t].take(ids, axis=0)
            remaining = n_trees - group[-1] - 1
            if remaining == 0:
                break
            if a.width == 2:
                lead = np.abs(sums[:, 0] - sums[:, 1])
            else:
                top = np.partition(sums, a.width - 2, axis=1)
                lead = top[:, -1] - top[:, -2]
            settled = lead > remaining + SETTLED_EPSILON
            if settled.any():
                out[rows[settled]] = np.argmax(sums[settled], axis=1)
                keep = ~settled
                rows, sums, x = rows[keep], sums[keep], np.ascontiguousarray(x[keep])
                if rows.size == 0:
                    return out
        sums /= n_trees
        out[rows] = np.argmax(sums, axis=1)
        return out


def groups_for(arrays: TreeArrays, method: str) -> list[list[int]]:
    """Which trees each session runs: all in one, or for labels the first half and one more, then
    groups of :data:`GROUP`."""
    n = arrays.n_trees
    if not (arrays.kind == "classifier" and method == "predict" and arrays.combine == "mean" and arrays.width >= 2):
        return [list(range(n))]
    first = min(n, n // 2 + 1)
    return [list(range(first))] + [list(range(s, min(s + GROUP, n))) for s in range(first, n, GROUP)]


def compile_trees(arrays: TreeArrays, method: str, *, threads: int = 1) -> CompiledTrees | None:
    """ONNX Runtime sessions for the arrays, checked against the reference computation; None when
    onnxruntime is not installed, the method is not one the arrays answer, or the check fails."""
    if method not in arrays.methods:
        return None
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    from mlark.pipelines.onnx_trees import forest_graph

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # callers run blocks on their own threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    groups = groups_for(arrays, method)
    try:
        sessions = [ort.InferenceSession(forest_graph(arrays, g), options, providers=["CPUExecutionProvider"])
                    for g in groups]
        compiled = CompiledTrees(arrays, method, sessions, groups, threads)
        x = sklearn_trees.probe(arrays).astype(np.float32)
        found = np.column_stack([ids for s in sessions for ids in compiled._leaves(s, x)])
        if not np.array_equal(found, sklearn_trees.leaves(arrays, x)):
            return None
        if not sklearn_trees.same(compiled.predict_matrix(x), sklearn_trees.predict_reference(arrays, x, method)):
            return None
    except Exception:  # noqa: BLE001 - an ONNX Runtime that refuses the graph: the estimator predicts
        return None
    return compiled
