"""scikit-learn: stored with skops; loading trusts only the types listed here (plus ``trust=``).

skops refuses, by default, every type it does not know is safe. The standard estimators carry a
few more (trees, KD-trees, distance metrics, optimiser state): :data:`SAFE_TYPES` lists those this
flavor trusts itself. tests/models/test_models_sklearn.py saves each estimator in
:data:`SUPPORTED_ESTIMATORS` and checks it loads without ``trust=``; anything else a file holds is
refused with an error naming the types, before skops builds a single object.

Options: ``serialization`` (``"skops"``, or explicitly ``"pickle"``/``"joblib"``/``"cloudpickle"``,
which load only with that name in ``trust=``) and ``method`` (``"predict"``, ``"predict_proba"``,
``"decision_function"``, ``"transform"``, ...).

Random forests, extra-trees and decision trees saved with skops also get ``model.trees.npz``, the
node arrays of their trees (:mod:`mlark.models.flavors.sklearn_trees`). A model that has it loads
without reading the skops file: ``Model.compiled`` holds the arrays (what ``mlark predict`` and
``mlark serve`` predict with), and the estimator itself (``model.raw``, ``model.predict``) is read
from the skops file the first time it is asked for. A model saved before has its arrays computed
when it loads and kept in the ``cache`` folder ``load_model`` is given, keyed by the skops file's
digest. Before skops builds any ``sklearn.tree._tree.Tree``, the trees' node arrays in the file
are checked (:mod:`mlark.models.flavors.skops_trees`).

skops is imported with PyTorch hidden from that import: ``import skops.io`` lists every
scikit-learn estimator by importing every scikit-learn module, and one of them (its array-API
adapter for torch) imports torch when it is installed, about a second and a half for nothing.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from mlark.errors import InvalidInput
from mlark.models.errors import ModelIntegrityError, ModelWarning, UntrustedModel
from mlark.models.files import ModelFiles
from mlark.models.flavors import sklearn_trees
from mlark.models.flavors.base import Saved, check_config_keys, config_value, loaded, require, take_options
from mlark.models.safety import PICKLE_FORMATS, Trust, check_pickle_format, dump_pickled, load_pickled

NAME = "sklearn"
FRAMEWORK = "scikit-learn"
REQUIREMENTS = ("scikit-learn", "skops", "numpy", "scipy")
EXTRA = "sklearn"
METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform", "score_samples")
TREES_FILE = sklearn_trees.TREES_FILE
TREE_TYPE = "sklearn.tree._tree.Tree"
#: Sub-folder of the ``cache`` given to ``load_model`` for the tree arrays of models saved without them.
CACHE_FOLDER = "sklearn-trees"

SAFE_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.utils._bunch.Bunch",
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.feature_selection._univariate_selection.chi2",
    }
)
# What the tests prove loads without trust= (constructor, kind of target).
SUPPORTED_ESTIMATORS = (
    "linear_model.LogisticRegression", "linear_model.LinearRegression", "linear_model.Ridge",
    "linear_model.Lasso", "linear_model.ElasticNet", "linear_model.SGDClassifier",
    "ensemble.RandomForestClassifier", "ensemble.RandomForestRegressor", "ensemble.ExtraTreesClassifier",
    "ensemble.GradientBoostingClassifier", "ensemble.GradientBoostingRegressor",
    "ensemble.HistGradientBoostingClassifier", "ensemble.HistGradientBoostingRegressor",
    "ensemble.IsolationForest", "ensemble.AdaBoostClassifier", "ensemble.BaggingClassifier",
    "tree.DecisionTreeClassifier", "tree.DecisionTreeRegressor",
    "neighbors.KNeighborsClassifier", "neighbors.KNeighborsRegressor",
    "svm.SVC", "svm.SVR", "svm.LinearSVC", "naive_bayes.GaussianNB", "cluster.KMeans",
    "decomposition.PCA", "neural_network.MLPClassifier", "calibration.CalibratedClassifierCV",
    "pipeline.Pipeline", "compose.ColumnTransformer", "preprocessing.StandardScaler",
    "preprocessing.OneHotEncoder", "impute.SimpleImputer", "feature_selection.SelectKBest",
)  # fmt: skip


def matches(model: object) -> bool:
    base = loaded("sklearn.base")
    return base is not None and isinstance(model, base.BaseEstimator)


def save(model: Any, folder: Path, options: dict[str, Any]) -> Saved:
    opts = take_options(NAME, options, {"serialization": "skops", "method": "predict"})
    fmt = check_pickle_format(opts["serialization"], allowed=("skops", *PICKLE_FORMATS))
    method = opts["method"]
    if method not in METHODS:
        raise InvalidInput(f"method {method!r} is not one of {', '.join(METHODS)}", field="method", value=str(method))
    if not callable(getattr(model, method, None)):
        raise InvalidInput(f"{type(model).__name__} has no method {method!r}", field="method", value=method)
    if fmt == "skops":
        sio = skops_io()
        file = "model.skops"
        data = _dump_skops(sio, model)
        untrusted = sorted(set(sio.get_untrusted_types(data=data)) - SAFE_TYPES)
        if untrusted:
            warnings.warn(
                ModelWarning(
                    f"this model holds types the sklearn flavor does not trust by default: {', '.join(untrusted)}; "
                    f"loading it will need trust={untrusted!r}"
                ),
                stacklevel=4,
            )
    else:
        file = "model.joblib" if fmt == "joblib" else "model.pkl"
        data = dump_pickled(model, fmt)
    (folder / file).write_bytes(data)
    if fmt == "skops":
        arrays = sklearn_trees.build(model, method)
        if arrays is not None:
            (folder / TREES_FILE).write_bytes(sklearn_trees.encode(arrays))
    return Saved(config={"file": file, "method": method, "serialization": fmt}, predictor=_Predictor(model, method))


def load(files: ModelFiles, config: dict[str, Any], trust: Trust) -> _Predictor:
    check_config_keys(config, {"file", "method", "serialization"})
    file = config_value(config, "file", str)
    method = config_value(config, "method", str)
    fmt = config_value(config, "serialization", str)
    if method not in METHODS:
        raise ModelIntegrityError(
            f"mlark-model.json: flavor_config.method {method!r} is not one of {', '.join(METHODS)}"
        )
    if fmt in PICKLE_FORMATS:
        from mlark.models.safety import require_pickle_trust

        require_pickle_trust(fmt, trust, file=file)  # before a byte of the file is read
        model = load_pickled(files.read_bytes(file), fmt, trust, file=file)
        return _Predictor(_checked(model, method, file), method)
    if fmt != "skops":
        raise ModelIntegrityError(f"mlark-model.json: unknown serialization {fmt!r} for flavor sklearn", file=file)
    arrays = _stored_trees(files, file, method)
    if arrays is not None:  # the estimator is read from the skops file when someone asks for it
        return _Predictor(None, method, compiled=arrays,
                          loader=lambda: _checked(_load_skops(files.read_bytes(file), trust, file), method, file))
    model = _checked(_load_skops(files.read_bytes(file), trust, file), method, file)
    return _Predictor(model, method, compiled=_cache_trees(files, file, model, method))


def _checked(model: Any, method: str, file: str) -> Any:
    if not callable(getattr(model, method, None)):
        raise ModelIntegrityError(
            f"{file!r} loaded as a {type(model).__name__}, which has no method {method!r}", file=file
        )
    return model


# --------------------------------------------------------------------------- tree arrays


def _stored_trees(files: ModelFiles, file: str, method: str) -> sklearn_trees.TreeArrays | None:
    """The model's tree arrays: its own ``model.trees.npz``, or those cached for its skops file."""
    if files.manifest.file(TREES_FILE) is not None:
        arrays = sklearn_trees.decode(files.read_bytes(TREES_FILE))
        return arrays if method in arrays.methods else None
    path = _cache_path(files, file)
    if path is None:
        return None
    from mlark.core.digest import digest_bytes

    for candidate in sorted(path.parent.glob(f"{path.name}-*.npz")):
        try:
            data = candidate.read_bytes()
            if candidate.name != f"{path.name}-{digest_bytes(data)}.npz":
                continue  # damaged: ignored (and replaced when it is computed again)
            arrays = sklearn_trees.decode(data, file=str(candidate))
        except (OSError, ModelIntegrityError):
            continue
        return arrays if method in arrays.methods else None
    return None


def _cache_trees(files: ModelFiles, file: str, model: Any, method: str) -> sklearn_trees.TreeArrays | None:
    """Tree arrays computed from the loaded estimator, kept in the cache when there is one."""
    path = _cache_path(files, file)
    if path is None:
        return None
    arrays = sklearn_trees.build(model, method)
    if arrays is None:
        return None
    from mlark.core.digest import digest_bytes

    data = sklearn_trees.encode(arrays)
    target = path.parent / f"{path.name}-{digest_bytes(data)}.npz"
    tmp = path.parent / f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError:  # a cache that cannot be written only costs time next load
        tmp.unlink(missing_ok=True)
    return arrays


def _cache_path(files: ModelFiles, file: str) -> Path | None:
    """``<cache>/sklearn-trees/<digest of the skops file>`` (a prefix), or None without a cache."""
    cache = getattr(files, "cache", None)
    record = files.manifest.file(file)
    if cache is None or record is None:
        return None
    return Path(cache) / CACHE_FOLDER / record.digest


def _dump_skops(sio: Any, model: Any) -> bytes:
    """skops bytes, made reproducible (same estimator, same bytes) when the rewrite provably loads back."""
    from mlark.models.flavors.skops_canonical import canonical

    data = sio.dumps(model)
    stable = canonical(data)
    if stable is data:
        return data
    try:
        found = sio.get_untrusted_types(data=stable)
        if found != sio.get_untrusted_types(data=data) or not set(found) <= SAFE_TYPES:
            return data  # checking the rewrite would mean running types this flavor does not trust
        sio.loads(stable, trusted=found)
    except Exception:  # noqa: BLE001 - keep the library's own bytes
        return data
    return stable


def _load_skops(data: bytes, trust: Trust, file: str) -> Any:
    sio = skops_io()
    try:
        found = set(sio.get_untrusted_types(data=data))
    except Exception as exc:  # a file skops cannot even list is corrupt
        raise ModelIntegrityError(f"model file {file!r} is not a valid skops file: {exc}", file=file) from exc
    refused = sorted(t for t in found if t not in SAFE_TYPES and not trust.allows(t))
    if refused:
        raise UntrustedModel(
            f"model file {file!r} holds type(s) the sklearn flavor does not trust: {', '.join(refused)}. "
            f"Loading them could run their code; if you trust them, pass trust={refused!r}",
            untrusted=refused,
            file=file,
        )
    if not trust.allows(TREE_TYPE):  # naming the type in trust= is the caller's choice to skip the check
        from mlark.models.flavors.skops_trees import check_trees

        check_trees(data, file=file)
    try:
        return sio.loads(data, trusted=sorted(found))
    except Exception as exc:
        raise ModelIntegrityError(f"model file {file!r} does not load with skops: {exc}", file=file) from exc


def skops_io() -> Any:
    """``skops.io``, imported without importing PyTorch (see the module's docstring)."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    with _torch_hidden():
        return require("skops.io", extra=EXTRA, package="skops")


class _HideTorch(importlib.abc.MetaPathFinder):
    """Makes ``import torch`` fail in one thread: scikit-learn's listing of its modules skips what fails."""

    def __init__(self, thread: int) -> None:
        self.thread = thread

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if (name == "torch" or name.startswith("torch.")) and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden while skops lists scikit-learn)", name=name)
        return None


@contextmanager
def _torch_hidden() -> Iterator[None]:
    if "torch" in sys.modules:  # already paid for: nothing to save
        yield
        return
    finder = _HideTorch(threading.get_ident())
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


class _Predictor:
    """The estimator's ``method``. With tree arrays (``compiled``), the estimator can be read lazily."""

    def __init__(self, model: Any, method: str, *, compiled: sklearn_trees.TreeArrays | None = None,
                 loader: Any = None) -> None:
        self._raw = model
        self._loader = loader
        self._lock = threading.Lock()
        self.method = method
        self.compiled = compiled

    @property
    def raw(self) -> Any:
        if self._raw is None:
            with self._lock:
                if self._raw is None:
                    self._raw = self._loader()
        return self._raw

    def predict(self, data: Any) -> Any:
        if isinstance(data, dict):
            raise InvalidInput("a scikit-learn model takes a table or an array, not named tensors", field="data")
        model = self.raw
        fitted_on_array = hasattr(model, "n_features_in_") and not hasattr(model, "feature_names_in_")
        if hasattr(data, "columns") and fitted_on_array:
            data = data.to_numpy()  # column names would only draw scikit-learn's warning
        return getattr(model, self.method)(data)
