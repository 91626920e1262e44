"""The scikit-learn flavor, with the real library: skops by default, only known types trusted."""

from __future__ import annotations

import importlib
import io
import json
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import models_testkit as kit  # noqa: E402

skops_io = pytest.importorskip("skops.io")
from sklearn.base import is_regressor  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from mlark.core.digest import digest_bytes  # noqa: E402
from mlark.models import MANIFEST_NAME, load_model, save_model  # noqa: E402
from mlark.models.errors import ModelWarning, UntrustedModel  # noqa: E402
from mlark.models.flavors import sklearn as flavor  # noqa: E402

X, Y = load_iris(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def forest() -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0).fit(X, Y)


def test_roundtrip_with_signature(tmp_path: Path, forest: RandomForestClassifier) -> None:
    manifest = save_model(forest, tmp_path / "m", input_example=X.head())
    assert manifest.flavor == "sklearn" and manifest.framework == "scikit-learn"
    assert manifest.flavor_config == {"file": "model.skops", "method": "predict", "serialization": "skops"}
    assert [r.split("==")[0] for r in manifest.requirements] == ["scikit-learn", "skops", "numpy", "scipy"]
    assert manifest.signature is not None and manifest.signature.inputs.names == list(X.columns)
    model = load_model(tmp_path / "m")
    assert isinstance(model.raw, RandomForestClassifier)
    expected = forest.predict(X)
    np.testing.assert_array_equal(model.predict(X), expected)
    np.testing.assert_array_equal(model.predict(X.to_numpy()), expected)  # positional columns
    np.testing.assert_array_equal(model.predict(X.iloc[0].to_dict()), expected[:1])  # one record
    np.testing.assert_array_equal(model.predict(X.to_dict(orient="list")), expected)  # dict of columns
    np.testing.assert_array_equal(model.predict(X[X.columns[::-1]]), expected)  # any column order


def test_predict_proba_method(tmp_path: Path, forest: RandomForestClassifier) -> None:
    save_model(forest, tmp_path / "m", method="predict_proba", input_example=X.head(2))
    model = load_model(tmp_path / "m")
    np.testing.assert_allclose(model.predict(X.head(3)), forest.predict_proba(X.head(3)))
    assert model.signature is not None and model.signature.outputs is not None
    assert model.signature.outputs.specs[0].shape == (-1, 3)


def test_same_estimator_same_bytes(tmp_path: Path, forest: RandomForestClassifier) -> None:
    save_model(forest, tmp_path / "a", input_example=X.head())
    save_model(forest, tmp_path / "b", input_example=X.head())
    for name in ("model.skops", MANIFEST_NAME):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def _estimators() -> list[tuple[str, object]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    kwargs = {
        "LogisticRegression": {"max_iter": 300}, "RandomForestClassifier": {"n_estimators": 2},
        "RandomForestRegressor": {"n_estimators": 2}, "ExtraTreesClassifier": {"n_estimators": 2},
        "GradientBoostingClassifier": {"n_estimators": 2}, "GradientBoostingRegressor": {"n_estimators": 2},
        "HistGradientBoostingClassifier": {"max_iter": 2}, "HistGradientBoostingRegressor": {"max_iter": 2},
        "IsolationForest": {"n_estimators": 2}, "AdaBoostClassifier": {"n_estimators": 2},
        "BaggingClassifier": {"n_estimators": 2}, "KMeans": {"n_clusters": 3, "n_init": 1},
        "PCA": {"n_components": 2}, "MLPClassifier": {"max_iter": 5}, "SelectKBest": {"k": 2},
    }  # fmt: skip
    out = []
    for dotted in flavor.SUPPORTED_ESTIMATORS:
        module, name = dotted.rsplit(".", 1)
        cls = getattr(importlib.import_module(f"sklearn.{module}"), name)
        if name == "Pipeline":
            est = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler()), ("clf", LogisticRegression())])
        elif name == "ColumnTransformer":
            est = make_pipeline(
                ColumnTransformer(
                    [("num", StandardScaler(), [0, 1]), ("cat", OneHotEncoder(handle_unknown="ignore"), [2])]
                ),
                LogisticRegression(),
            )
        elif name == "OneHotEncoder":
            est = cls(handle_unknown="ignore", sparse_output=False)
        elif name == "CalibratedClassifierCV":
            est = cls(LogisticRegression(max_iter=300), cv=2)
        elif name == "SelectKBest":
            est = make_pipeline(cls(**kwargs[name]), LogisticRegression())
        else:
            est = cls(**kwargs.get(name, {}))
        out.append((name, est))
    return out


@pytest.mark.parametrize(("name", "estimator"), _estimators(), ids=[n for n, _ in _estimators()])
def test_supported_estimators_load_without_trust(tmp_path: Path, name: str, estimator: object) -> None:
    features = X.to_numpy()
    target = X.iloc[:, 0].to_numpy() if is_regressor(estimator) else Y.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of tiny fits
        estimator.fit(features, target)  # type: ignore[attr-defined]
        warnings.simplefilter("error", ModelWarning)  # no "will need trust=" warning for supported estimators
        method = "predict" if hasattr(estimator, "predict") else "transform"
        save_model(estimator, tmp_path / "m", method=method, input_example=features[:3])
    model = load_model(tmp_path / "m")  # no trust= needed
    np.testing.assert_allclose(model.predict(features[:5]), getattr(estimator, method)(features[:5]))
    assert set(skops_io.get_untrusted_types(file=tmp_path / "m" / "model.skops")) <= flavor.SAFE_TYPES


def test_untrusted_skops_type_is_refused_naming_it_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    pipe = make_pipeline(kit.Sneaky(str(marker)), LogisticRegression(max_iter=300)).fit(X, Y)
    with pytest.warns(ModelWarning, match=r"trust=\['models_testkit.Sneaky'\]"):
        save_model(pipe, tmp_path / "m")
    assert not marker.exists()
    with pytest.raises(UntrustedModel, match=r"does not trust: models_testkit.Sneaky") as info:
        load_model(tmp_path / "m")
    assert info.value.fields["untrusted"] == ["models_testkit.Sneaky"]
    assert not marker.exists()  # Sneaky.__setstate__ never ran
    with pytest.raises(UntrustedModel):
        load_model(tmp_path / "m", trust=["pickle"])  # trusting pickle does not trust skops types
    model = load_model(tmp_path / "m", trust=["models_testkit.Sneaky"])  # the caller's explicit choice
    assert marker.exists()
    np.testing.assert_array_equal(model.predict(X.head()), pipe.predict(X.head()))


def test_crafted_skops_function_is_refused_naming_it(tmp_path: Path) -> None:
    """A skops file edited by hand to call os.system is refused before skops builds anything."""
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, Y)
    save_model(pipe, tmp_path / "m")
    folder = tmp_path / "m"
    src = zipfile.ZipFile(io.BytesIO((folder / "model.skops").read_bytes()))
    schema = json.loads(src.read("schema.json"))
    schema["content"]["content"]["steps"]["content"][0]["content"][1] = {
        "__class__": "system", "__module__": "posix", "__loader__": "FunctionNode",
        "content": {"module_path": "posix", "function": "system"}, "__id__": 999,
    }  # fmt: skip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, json.dumps(schema) if item == "schema.json" else src.read(item))
    data = buf.getvalue()
    (folder / "model.skops").write_bytes(data)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())  # a crafted folder: the digests match
    for record in manifest["files"]:
        if record["path"] == "model.skops":
            record.update(size=len(data), digest=digest_bytes(data))
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(UntrustedModel, match="posix.system"):
        load_model(folder)


def test_pickle_only_when_asked_and_trusted(tmp_path: Path, forest: RandomForestClassifier) -> None:
    for fmt in ("pickle", "joblib", "cloudpickle"):
        path = tmp_path / fmt
        manifest = save_model(forest, path, serialization=fmt)
        assert manifest.flavor_config["serialization"] == fmt
        with pytest.raises(UntrustedModel, match=rf"trust=\['{fmt}'\]"):
            load_model(path)
        model = load_model(path, trust=[fmt])
        np.testing.assert_array_equal(model.predict(X.head()), forest.predict(X.head()))
    with pytest.raises(UntrustedModel):
        load_model(tmp_path / "joblib", trust=["pickle"])  # each format is named on its own


def test_dataframe_signature_with_text_column(tmp_path: Path) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    df = pd.DataFrame({"tenure": [1, 5, 30, 2, 40, 3], "plan": ["a", "b", "a", "b", "a", "b"]})
    churn = [1, 1, 0, 1, 0, 1]
    pipe = make_pipeline(
        make_column_transformer((StandardScaler(), ["tenure"]), (OneHotEncoder(), ["plan"])), LogisticRegression()
    ).fit(df, churn)
    save_model(pipe, tmp_path / "m", input_example=df.head(2))
    model = load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict({"tenure": ["7", "8"], "plan": ["a", "b"]}), pipe.predict(
        pd.DataFrame({"tenure": [7, 8], "plan": ["a", "b"]})))  # fmt: skip


def test_model_fitted_on_an_array_takes_a_table_without_warnings(tmp_path: Path) -> None:
    clf = LogisticRegression(max_iter=300).fit(X.to_numpy(), Y)
    save_model(clf, tmp_path / "m", input_example=X.head(2))  # a table example for an array-fitted model
    model = load_model(tmp_path / "m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(model.predict(X.head()), clf.predict(X.head().to_numpy()))
