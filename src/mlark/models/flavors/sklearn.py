"""scikit-learn: stored with skops; loading trusts only the types listed here (plus ``trust=``).

skops refuses, by default, every type it does not know is safe. The standard estimators carry a
few more (trees, KD-trees, distance metrics, optimiser state): :data:`SAFE_TYPES` lists those this
flavor trusts itself. tests/models/test_models_sklearn.py saves each estimator in
:data:`SUPPORTED_ESTIMATORS` and checks it loads without ``trust=``; anything else a file holds is
refused with an error naming the types, before skops builds a single object.

Options: ``serialization`` (``"skops"``, or explicitly ``"pickle"``/``"joblib"``/``"cloudpickle"``,
which load only with that name in ``trust=``) and ``method`` (``"predict"``, ``"predict_proba"``,
``"decision_function"``, ``"transform"``, ...).

Before skops builds any ``sklearn.tree._tree.Tree``, the trees' node arrays in the file are checked
(:mod:`mlark.models.flavors.skops_trees`): scikit-learn follows them without bounds checks.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from mlark.errors import InvalidInput
from mlark.models.errors import ModelIntegrityError, ModelWarning, UntrustedModel
from mlark.models.files import ModelFiles
from mlark.models.flavors.base import Saved, check_config_keys, config_value, loaded, require, take_options
from mlark.models.safety import PICKLE_FORMATS, Trust, check_pickle_format, dump_pickled, load_pickled

NAME = "sklearn"
FRAMEWORK = "scikit-learn"
REQUIREMENTS = ("scikit-learn", "skops", "numpy", "scipy")
EXTRA = "sklearn"
METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform", "score_samples")
TREE_TYPE = "sklearn.tree._tree.Tree"

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
        sio = require("skops.io", extra=EXTRA, package="skops")
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
    elif fmt == "skops":
        model = _load_skops(files.read_bytes(file), trust, file)
    else:
        raise ModelIntegrityError(f"mlark-model.json: unknown serialization {fmt!r} for flavor sklearn", file=file)
    if not callable(getattr(model, method, None)):
        raise ModelIntegrityError(
            f"{file!r} loaded as a {type(model).__name__}, which has no method {method!r}", file=file
        )
    return _Predictor(model, method)


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
    sio = require("skops.io", extra=EXTRA, package="skops")
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


class _Predictor:
    def __init__(self, model: Any, method: str) -> None:
        self.raw = model
        self.method = method

    def predict(self, data: Any) -> Any:
        if isinstance(data, dict):
            raise InvalidInput("a scikit-learn model takes a table or an array, not named tensors", field="data")
        fitted_on_array = hasattr(self.raw, "n_features_in_") and not hasattr(self.raw, "feature_names_in_")
        if hasattr(data, "columns") and fitted_on_array:
            data = data.to_numpy()  # column names would only draw scikit-learn's warning
        return getattr(self.raw, self.method)(data)
