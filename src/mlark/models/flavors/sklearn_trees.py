"""A scikit-learn tree ensemble as plain arrays: the node arrays of every tree, saved beside the estimator.

For random forests, extra-trees and single decision trees (one output), the sklearn flavor also
writes ``model.trees.npz``: each tree's children, split features, thresholds, missing-value
directions and leaf values, which is everything ``predict`` and ``predict_proba`` read. With it a
forest predicts without scikit-learn, skops or pandas (:mod:`mlark.pipelines.trees`), and without
building a single ``sklearn.tree._tree.Tree`` from the file.

What scikit-learn computes, and what :func:`predict_reference` computes the same way:

- the input is cast to float32; a row goes left at a node when ``x <= threshold`` (the float32
  value compared with the float64 threshold), and a missing value (NaN) goes the way the node
  learned (``missing_go_to_left``);
- a forest sums its trees' leaf values in the forest's order, starting from zeros, and divides by
  the number of trees; a classifier's label is the first class with the largest mean;
- a single tree returns its leaf value as it is.

The file is written only when :func:`predict_reference` on a probe built from the trees' own
thresholds (values on and either side of them, NaN where the trees accept it) gives exactly what
the estimator gives. Reading it (:func:`decode`) checks everything a traversal relies on: child
indices inside their tree and larger than their parent's (so there is no cycle), one parent per
node, split features inside the input, no NaN threshold, finite leaf values.

The file is a zip of ``trees.json`` and ``.npy`` arrays, stored uncompressed with fixed timestamps,
so the same estimator gives the same bytes; ``numpy.load`` reads it too.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlark.models.errors import ModelIntegrityError
from mlark.models.flavors.skops_canonical import write_entry

TREES_FILE = "model.trees.npz"
FORMAT = "mlark-trees"
FORMAT_VERSION = 1
#: Node ids travel as float32 through ONNX Runtime: a tree must have fewer nodes than this.
MAX_TREE_NODES = 1 << 24

_FORESTS = {
    ("sklearn.ensemble._forest", "RandomForestClassifier"): "classifier",
    ("sklearn.ensemble._forest", "ExtraTreesClassifier"): "classifier",
    ("sklearn.ensemble._forest", "RandomForestRegressor"): "regressor",
    ("sklearn.ensemble._forest", "ExtraTreesRegressor"): "regressor",
}
_TREES = {
    ("sklearn.tree._classes", "DecisionTreeClassifier"): "classifier",
    ("sklearn.tree._classes", "ExtraTreeClassifier"): "classifier",
    ("sklearn.tree._classes", "DecisionTreeRegressor"): "regressor",
    ("sklearn.tree._classes", "ExtraTreeRegressor"): "regressor",
}
_ARRAYS = {"offsets": "<i8", "left": "<i4", "right": "<i4", "feature": "<i4", "threshold": "<f8",
           "missing_left": "|u1", "value": "<f8"}  # fmt: skip
_META_KEYS = {"format", "format_version", "estimator", "kind", "combine", "n_features", "feature_names",
              "allow_nan", "classes_object", "trees", "nodes", "width"}  # fmt: skip


@dataclass(frozen=True, eq=False)
class TreeArrays:
    """The trees of one estimator. Node arrays are concatenated over trees (``offsets``); child
    indices are local to their tree, -1 at leaves."""

    estimator: str  # module.Class of the estimator they came from
    kind: str  # "classifier" or "regressor"
    combine: str  # "mean" (a forest) or "single" (one tree)
    n_features: int
    feature_names: tuple[str, ...] | None
    allow_nan: bool
    classes: np.ndarray | None  # a classifier's labels, in the estimator's dtype
    offsets: np.ndarray
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    value: np.ndarray  # [nodes, width]: class fractions, or the one regression value

    @property
    def n_trees(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def width(self) -> int:
        return int(self.value.shape[1])

    @property
    def methods(self) -> tuple[str, ...]:
        return ("predict", "predict_proba") if self.kind == "classifier" else ("predict",)


# --------------------------------------------------------------------------- from an estimator


def extract(estimator: Any) -> TreeArrays | None:
    """The arrays of a random forest, extra-trees ensemble or decision tree with one output, or None."""
    cls = type(estimator)
    key = (cls.__module__, cls.__name__)
    if key in _FORESTS:
        kind, combine, trees = _FORESTS[key], "mean", list(getattr(estimator, "estimators_", None) or [])
    elif key in _TREES:
        kind, combine, trees = _TREES[key], "single", [estimator]
    else:
        return None
    if not trees or getattr(estimator, "n_outputs_", None) != 1:
        return None
    if any((type(t).__module__, type(t).__name__) not in _TREES or not hasattr(t, "tree_") for t in trees):
        return None
    try:
        n_features = int(estimator.n_features_in_)
        names = getattr(estimator, "feature_names_in_", None)
        feature_names = None if names is None else tuple(str(n) for n in names)
        allow_nan = bool(trees[0]._support_missing_values(np.zeros((1, n_features))))
        classes = None
        if kind == "classifier":
            classes, object_classes = _classes(estimator.classes_)
            width = int(estimator.n_classes_)
            if classes is None or len(classes) != width:
                return None
        else:
            width, object_classes = 1, False
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("left", "right", "feature", "threshold",
                                                             "missing_left", "value")}
        counts = []
        for tree in trees:
            t = tree.tree_
            n = int(t.node_count)
            value = np.asarray(t.value)
            if value.ndim != 3 or value.shape[1] != 1 or value.shape[2] < width or n >= MAX_TREE_NODES:
                return None
            counts.append(n)
            parts["left"].append(np.asarray(t.children_left, dtype=np.int32))
            parts["right"].append(np.asarray(t.children_right, dtype=np.int32))
            parts["feature"].append(np.asarray(t.feature, dtype=np.int32))
            parts["threshold"].append(np.asarray(t.threshold, dtype=np.float64))
            parts["missing_left"].append(np.asarray(t.missing_go_to_left, dtype=np.uint8))
            parts["value"].append(np.ascontiguousarray(value[:n, 0, :width], dtype=np.float64))
    except (AttributeError, TypeError, ValueError):
        return None
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    arrays = TreeArrays(
        estimator=f"{key[0]}.{key[1]}", kind=kind, combine=combine, n_features=n_features,
        feature_names=feature_names, allow_nan=allow_nan, classes=classes, offsets=offsets,
        **{k: np.concatenate(v) for k, v in parts.items()},
    )  # fmt: skip
    try:
        check(arrays)
    except ModelIntegrityError:
        return None
    if object_classes:
        object.__setattr__(arrays, "classes", arrays.classes.astype(object))  # type: ignore[union-attr]
    return arrays


def _classes(classes: Any) -> tuple[np.ndarray | None, bool]:
    arr = np.asarray(classes)
    if arr.ndim != 1:
        return None, False
    if arr.dtype.kind in "biuf" or arr.dtype.kind == "U":
        return arr.copy(), False
    if arr.dtype.kind == "O" and all(type(c) is str for c in arr):
        return arr.astype(str), True
    return None, False


def build(estimator: Any, method: str) -> TreeArrays | None:
    """:func:`extract`, kept only if :func:`predict_reference` gives exactly what ``method`` gives on a probe."""
    arrays = extract(estimator)
    if arrays is None or method not in arrays.methods:
        return None
    x = probe(arrays)
    data: Any = x
    if arrays.feature_names is not None:
        import pandas as pd

        data = pd.DataFrame(x, columns=list(arrays.feature_names))
    try:
        theirs = getattr(estimator, method)(data)
        ours = predict_reference(arrays, x.astype(np.float32), method)
    except Exception:  # noqa: BLE001 - whatever went wrong, the estimator predicts by itself
        return None
    return arrays if same(ours, theirs) else None


def same(a: Any, b: Any) -> bool:
    """Equal dtype, shape and values (NaN equal to NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


# --------------------------------------------------------------------------- the computation


def probe(arrays: TreeArrays, rows: int = 256, seed: int = 0) -> np.ndarray:
    """float64 rows (float32 values) on, just below and just above the trees' thresholds; NaN here and
    there when the trees route missing values."""
    rng = np.random.default_rng(seed)
    internal = arrays.left != -1
    columns = []
    for f in range(arrays.n_features):
        values = arrays.threshold[internal & (arrays.feature == f)]
        values = values[np.isfinite(values) & (np.abs(values) < 3e38)]
        if values.size == 0:
            values = np.zeros(1)
        as32 = rng.choice(values, rows).astype(np.float32)
        nudge = rng.integers(-1, 2, rows)
        col = np.where(nudge < 0, np.nextafter(as32, np.float32(-np.inf)),
                       np.where(nudge > 0, np.nextafter(as32, np.float32(np.inf)), as32))
        columns.append(col.astype(np.float64))
    x = np.column_stack(columns) if columns else np.zeros((rows, 0))
    if arrays.allow_nan:
        x[rng.random(x.shape) < 0.05] = np.nan
    return x


def leaves(arrays: TreeArrays, x: np.ndarray) -> np.ndarray:
    """The leaf each row of ``x`` (float32, [rows, n_features]) reaches in each tree: [rows, trees], local ids."""
    starts = arrays.offsets[:-1]
    node = np.zeros((x.shape[0], arrays.n_trees), dtype=np.int64)
    rows = np.arange(x.shape[0])[:, None]
    while True:
        g = node + starts
        left = arrays.left[g]
        inner = left != -1
        if not inner.any():
            return node
        f = np.where(inner, arrays.feature[g], 0)
        v = x[rows, f]
        go_left = np.where(np.isnan(v), arrays.missing_left[g] == 1, v <= arrays.threshold[g])
        node = np.where(inner, np.where(go_left, left, arrays.right[g]), node)


def predict_reference(arrays: TreeArrays, x: np.ndarray, method: str) -> np.ndarray:
    """What the estimator's ``method`` returns for float32 input ``x``, computed from the arrays."""
    ids = leaves(arrays, x) + arrays.offsets[:-1]
    if arrays.combine == "single":
        sums = arrays.value[ids[:, 0]].copy()
    else:
        sums = np.zeros((x.shape[0], arrays.width), dtype=np.float64)
        for t in range(arrays.n_trees):
            sums += arrays.value[ids[:, t]]
        sums /= arrays.n_trees
    return finish(arrays, sums, method)


def finish(arrays: TreeArrays, sums: np.ndarray, method: str) -> np.ndarray:
    """The method's output from the combined leaf values [rows, width]."""
    if arrays.kind == "regressor":
        return sums[:, 0]
    if method == "predict_proba":
        return sums
    assert arrays.classes is not None
    return arrays.classes.take(np.argmax(sums, axis=1), axis=0)


# --------------------------------------------------------------------------- the file


def encode(arrays: TreeArrays) -> bytes:
    """The ``model.trees.npz`` bytes (the same arrays give the same bytes)."""
    classes = arrays.classes
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "estimator": arrays.estimator, "kind": arrays.kind,
        "combine": arrays.combine, "n_features": arrays.n_features,
        "feature_names": None if arrays.feature_names is None else list(arrays.feature_names),
        "allow_nan": arrays.allow_nan, "classes_object": classes is not None and classes.dtype.kind == "O",
        "trees": arrays.n_trees, "nodes": int(arrays.left.shape[0]), "width": arrays.width,
    }  # fmt: skip
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as dst:
        write_entry(dst, "trees.json", json.dumps(meta, sort_keys=True, indent=1).encode("utf-8"))
        for name, dtype in _ARRAYS.items():
            write_entry(dst, f"{name}.npy", _npy(np.ascontiguousarray(getattr(arrays, name), dtype=dtype)))
        if classes is not None:
            write_entry(dst, "classes.npy", _npy(classes.astype(str) if classes.dtype.kind == "O" else classes))
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=False)
    return out.getvalue()


def decode(data: bytes, *, file: str = TREES_FILE) -> TreeArrays:
    """The arrays in ``data``, checked (:func:`check`); anything unexpected is a ModelIntegrityError."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as src:
            infos = src.infolist()
            names = [i.filename for i in infos]
            meta = _meta(json.loads(src.read("trees.json")), file)
            expected = {"trees.json", *(f"{n}.npy" for n in _ARRAYS)}
            if meta["kind"] == "classifier":
                expected.add("classes.npy")
            if len(names) != len(set(names)) or set(names) != expected:
                raise ValueError(f"it holds {sorted(names)}, expected {sorted(expected)}")
            if any(i.compress_type != zipfile.ZIP_STORED for i in infos):
                raise ValueError("its entries must be stored uncompressed")
            arrays = {name: _read_npy(src.read(f"{name}.npy"), name, dtype) for name, dtype in _ARRAYS.items()}
            classes = _read_npy(src.read("classes.npy"), "classes", None) if "classes.npy" in names else None
    except ModelIntegrityError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, EOFError) as exc:
        raise ModelIntegrityError(f"model file {file!r} is not a valid tree file: {exc}", file=file) from exc
    if classes is not None:
        if classes.ndim != 1 or classes.dtype.kind not in "biufU":
            raise ModelIntegrityError(f"model file {file!r}: classes must be a list of labels", file=file)
        if meta["classes_object"]:
            classes = classes.astype(object)
    names_meta = meta["feature_names"]
    out = TreeArrays(
        estimator=meta["estimator"], kind=meta["kind"], combine=meta["combine"], n_features=meta["n_features"],
        feature_names=None if names_meta is None else tuple(names_meta), allow_nan=meta["allow_nan"],
        classes=classes, **{k: v.astype(v.dtype.newbyteorder("=")) for k, v in arrays.items()},
    )  # fmt: skip
    if out.n_trees != meta["trees"] or out.left.shape[0] != meta["nodes"] or out.width != meta["width"]:
        raise ModelIntegrityError(f"model file {file!r}: trees.json does not describe its arrays", file=file)
    check(out, file=file)
    return out


def _meta(doc: Any, file: str) -> dict[str, Any]:
    def bad(what: str) -> ModelIntegrityError:
        return ModelIntegrityError(f"model file {file!r}: trees.json {what}", file=file)

    if not isinstance(doc, dict) or set(doc) != _META_KEYS:
        raise bad(f"must have exactly the fields {sorted(_META_KEYS)}")
    if doc["format"] != FORMAT or doc["format_version"] != FORMAT_VERSION:
        raise bad(f"is not {FORMAT} version {FORMAT_VERSION}")
    if doc["kind"] not in ("classifier", "regressor") or doc["combine"] not in ("mean", "single"):
        raise bad("has an unknown kind or combine")
    for key in ("n_features", "trees", "nodes", "width"):
        if type(doc[key]) is not int or doc[key] < 1:
            raise bad(f"{key} must be a positive whole number")
    for key in ("allow_nan", "classes_object"):
        if type(doc[key]) is not bool:
            raise bad(f"{key} must be true or false")
    names = doc["feature_names"]
    if names is not None and (not isinstance(names, list) or len(names) != doc["n_features"]
                              or not all(isinstance(n, str) for n in names)):
        raise bad("feature_names must be null or one name per feature")
    if not isinstance(doc["estimator"], str) or doc["combine"] == "single" and doc["trees"] != 1:
        raise bad("names no estimator, or a single tree with several trees")
    return doc


def _read_npy(data: bytes, name: str, dtype: str | None) -> np.ndarray:
    array = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    if dtype is not None and array.dtype.str != dtype:
        raise ValueError(f"{name} has dtype {array.dtype.str}, expected {dtype}")
    return array


def check(arrays: TreeArrays, *, file: str = TREES_FILE) -> None:
    """Everything a traversal of the trees relies on; a ModelIntegrityError naming what is wrong."""

    def bad(what: str) -> ModelIntegrityError:
        return ModelIntegrityError(f"model file {file!r}: {what}", file=file)

    offsets = arrays.offsets
    n = arrays.left.shape[0]
    if offsets.ndim != 1 or offsets.shape[0] < 2 or offsets[0] != 0 or offsets[-1] != n:
        raise bad("tree offsets do not cover the nodes")
    sizes = np.diff(offsets)
    if (sizes < 1).any() or (sizes >= MAX_TREE_NODES).any():
        raise bad(f"every tree needs from 1 to {MAX_TREE_NODES - 1} nodes")
    for name in ("right", "feature", "threshold", "missing_left"):
        if getattr(arrays, name).shape != (n,):
            raise bad(f"{name} does not have one entry per node")
    if arrays.value.ndim != 2 or arrays.value.shape[0] != n:
        raise bad("value does not have one row per node")
    if arrays.kind == "classifier" and (arrays.classes is None or arrays.classes.shape[0] != arrays.width):
        raise bad("a classifier needs one class label per value column")
    if arrays.kind == "regressor" and arrays.width != 1:
        raise bad("a regressor has one value per node")
    local = np.arange(n, dtype=np.int64) - np.repeat(offsets[:-1], sizes)
    size = np.repeat(sizes, sizes)
    leaf = arrays.left == -1
    if (arrays.right[leaf] != -1).any():
        raise bad("a leaf has a right child")
    inner = ~leaf
    for name in ("left", "right"):
        child = getattr(arrays, name)[inner].astype(np.int64)
        if ((child <= local[inner]) | (child >= size[inner])).any():
            raise bad(f"a {name} child is not a later node of the same tree (out of range, or a cycle)")
    starts = np.repeat(offsets[:-1], sizes)[inner]
    children = np.concatenate([arrays.left[inner] + starts, arrays.right[inner] + starts])
    parents = np.bincount(children, minlength=n)
    roots = np.zeros(n, dtype=bool)
    roots[offsets[:-1]] = True
    if (parents[~roots] != 1).any() or (parents[roots] != 0).any():
        raise bad("a node has no parent or several (every node but a root has exactly one)")
    feature = arrays.feature[inner]
    if ((feature < 0) | (feature >= arrays.n_features)).any():
        raise bad(f"a split uses a feature outside 0..{arrays.n_features - 1}")
    if np.isnan(arrays.threshold[inner]).any():
        raise bad("a split has a NaN threshold")
    if ((arrays.missing_left != 0) & (arrays.missing_left != 1)).any():
        raise bad("missing-value directions must be 0 or 1")
    if not np.isfinite(arrays.value).all():
        raise bad("leaf values must be finite")
    if arrays.combine == "single" and arrays.n_trees != 1:
        raise bad("a single tree with several trees")
