"""The tree arrays the sklearn flavor saves beside a forest: exactly the estimator's predictions, checked on
reading, loaded without the skops file, computed once for models saved without them."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skops.io")
from sklearn.ensemble import (  # noqa: E402
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402

from mlark.core.digest import digest_bytes  # noqa: E402
from mlark.models import MANIFEST_NAME, load_model, save_model  # noqa: E402
from mlark.models.errors import ModelIntegrityError  # noqa: E402
from mlark.models.flavors import sklearn_trees as st  # noqa: E402
from mlark.models.flavors.sklearn_trees import TREES_FILE  # noqa: E402


def data(seed: int, n: int, classes: int = 2, nan: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    x[:, 2] = rng.integers(0, 5, n)  # a discrete feature: rows exactly on thresholds
    y = x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + rng.normal(scale=0.8, size=n)
    labels = np.digitize(y, np.quantile(y, np.linspace(0, 1, classes + 1)[1:-1]))
    if nan:
        x[rng.random(x.shape) < 0.05] = np.nan
    return x, labels


ESTIMATORS: list[tuple[str, Callable[[], Any], int, bool]] = [
    ("rf-2", lambda: RandomForestClassifier(n_estimators=12, random_state=0), 2, False),
    ("rf-3-leaf3", lambda: RandomForestClassifier(n_estimators=9, min_samples_leaf=3, random_state=1), 3, False),
    ("et-5", lambda: ExtraTreesClassifier(n_estimators=8, random_state=2), 5, False),
    ("rf-nan", lambda: RandomForestClassifier(n_estimators=6, random_state=3), 3, True),
    ("tree", lambda: DecisionTreeClassifier(max_depth=6, random_state=0), 3, True),
    ("rf-reg", lambda: RandomForestRegressor(n_estimators=7, random_state=0), 0, True),
    ("et-reg", lambda: ExtraTreesRegressor(n_estimators=5, min_samples_leaf=2, random_state=0), 0, False),
    ("tree-reg", lambda: DecisionTreeRegressor(random_state=0), 0, False),
]


@pytest.mark.parametrize(("name", "make", "classes", "nan"), ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
def test_reference_computation_is_the_estimators(name: str, make: Callable[[], Any], classes: int, nan: bool) -> None:
    x, labels = data(0, 800, max(classes, 2), nan)
    y = labels if classes else np.nan_to_num(x[:, 0]) * 2 + np.nan_to_num(x[:, 1])
    model = make().fit(x, y)
    q, _ = data(1, 3000, nan=nan)
    q[:300] = np.round(q[:300], 1)
    for method in ("predict", "predict_proba") if classes else ("predict",):
        arrays = st.build(model, method)
        assert arrays is not None, method
        assert st.same(st.predict_reference(arrays, q.astype(np.float32), method), getattr(model, method)(q))


def test_labels_keep_their_type() -> None:
    x, labels = data(2, 600, 3)
    for y in (np.array(["low", "mid", "high"])[labels], pd.Series(np.array(["a", "b", "c"], dtype=object)[labels]),
              labels * 10 - 5, labels.astype(np.uint8), labels == 1):
        model = RandomForestClassifier(n_estimators=4, random_state=0).fit(x, y)
        arrays = st.build(model, "predict")
        assert arrays is not None
        out = st.predict_reference(arrays, x.astype(np.float32), "predict")
        assert out.dtype == model.classes_.dtype and st.same(out, model.predict(x))
        again = st.decode(st.encode(arrays))
        assert st.same(st.predict_reference(again, x.astype(np.float32), "predict"), model.predict(x))


def test_what_it_does_not_cover_gets_no_arrays() -> None:
    x, y = data(3, 300)

    class MyForest(RandomForestClassifier):
        pass

    assert st.extract(GradientBoostingClassifier(n_estimators=3).fit(x, y)) is None
    assert st.extract(MyForest(n_estimators=3).fit(x, y)) is None
    assert st.extract(RandomForestClassifier(n_estimators=3).fit(x, np.column_stack([y, y]))) is None
    model = RandomForestClassifier(n_estimators=3).fit(x, y)
    assert st.build(model, "predict_log_proba") is None
    assert st.build(RandomForestRegressor(n_estimators=2).fit(x, y), "predict_proba") is None


def test_a_forest_that_the_arrays_do_not_reproduce_gets_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """If scikit-learn ever computed a forest differently, no arrays are written."""
    x, y = data(4, 300)
    model = RandomForestClassifier(n_estimators=4, random_state=0).fit(x, y)
    monkeypatch.setattr(st, "leaves", lambda arrays, q: np.zeros((q.shape[0], arrays.n_trees), dtype=np.int64))
    assert st.build(model, "predict") is None


# --------------------------------------------------------------------------- the saved file


@pytest.fixture(scope="module")
def forest() -> tuple[RandomForestClassifier, pd.DataFrame]:
    x, y = data(5, 700, 3, nan=True)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(frame, y), frame


def test_saved_beside_the_estimator_and_reproducible(tmp_path: Path, forest: Any) -> None:
    model, frame = forest
    manifest = save_model(model, tmp_path / "a", input_example=frame.head(3))
    save_model(model, tmp_path / "b", input_example=frame.head(3))
    assert [f.path for f in manifest.files] == ["input_example.json", "model.skops", TREES_FILE]
    assert manifest.flavor_config == {"file": "model.skops", "method": "predict", "serialization": "skops"}
    assert (tmp_path / "a" / TREES_FILE).read_bytes() == (tmp_path / "b" / TREES_FILE).read_bytes()
    with np.load(tmp_path / "a" / TREES_FILE, allow_pickle=False) as npz:  # numpy reads it too
        assert npz["offsets"].shape == (11,)
    loaded = load_model(tmp_path / "a")
    assert loaded.compiled is not None and loaded.compiled.n_trees == 10
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))  # the estimator, read on demand
    assert isinstance(loaded.raw, RandomForestClassifier)


def test_loading_reads_neither_skops_nor_scikit_learn(tmp_path: Path, forest: Any) -> None:
    model, frame = forest
    save_model(model, tmp_path / "m", input_example=frame.head(3))
    code = (
        "import sys\n"
        "from mlark.models import load_model\n"
        f"m = load_model({str(tmp_path / 'm')!r})\n"
        "assert m.compiled is not None\n"
        "print(sorted(k for k in ('sklearn', 'skops', 'torch', 'scipy') if k in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _rewrite_file(folder: Path, name: str, data: bytes) -> None:
    """A crafted folder: the file replaced and the manifest's digest made to match."""
    (folder / name).write_bytes(data)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    for record in manifest["files"]:
        if record["path"] == name:
            record.update(size=len(data), digest=digest_bytes(data))
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def _crafted(arrays: st.TreeArrays, **changes: Any) -> bytes:
    return st.encode(dataclasses.replace(arrays, **changes))


def test_crafted_arrays_are_refused(tmp_path: Path, forest: Any) -> None:
    model, frame = forest
    save_model(model, tmp_path / "m", input_example=frame.head(3))
    arrays = st.decode((tmp_path / "m" / TREES_FILE).read_bytes())
    first_inner = int(np.flatnonzero(arrays.left != -1)[0])

    def changed(name: str, index: int, value: Any) -> np.ndarray:
        out = getattr(arrays, name).copy()
        out[index] = value
        return out

    cases = {
        "out of range": _crafted(arrays, left=changed("left", first_inner, 10**6)),
        "cycle": _crafted(arrays, right=changed("right", 3, 0) if arrays.left[3] != -1 else changed("right", 0, 0)),
        "two parents": _crafted(arrays, left=changed("left", 0, int(arrays.right[0]))),
        "feature": _crafted(arrays, feature=changed("feature", first_inner, 99)),
        "nan threshold": _crafted(arrays, threshold=changed("threshold", first_inner, np.nan)),
        "infinite value": _crafted(arrays, value=np.where(np.arange(arrays.value.shape[0])[:, None] == 0, np.inf,
                                                          arrays.value)),
        "offsets": _crafted(arrays, offsets=arrays.offsets[:-1]),
    }
    for what, data_ in cases.items():
        folder = tmp_path / what.replace(" ", "-")
        save_model(model, folder, input_example=frame.head(3))
        _rewrite_file(folder, TREES_FILE, data_)
        with pytest.raises(ModelIntegrityError) as info:
            load_model(folder)
        assert info.value.fields["file"] == TREES_FILE, what

    good = (tmp_path / "m" / TREES_FILE).read_bytes()
    with zipfile.ZipFile(io.BytesIO(good)) as src:
        members = {n: src.read(n) for n in src.namelist()}
    for what, edit in {
        "extra member": lambda m: {**m, "code.py": b"print(1)"},
        "compressed": None,
        "meta": lambda m: {**m, "trees.json": json.dumps({**json.loads(m["trees.json"]), "trees": 3}).encode()},
        "pickled array": lambda m: {**m, "left.npy": _object_npy()},
    }.items():
        buffer = io.BytesIO()
        compression = zipfile.ZIP_DEFLATED if edit is None else zipfile.ZIP_STORED
        with zipfile.ZipFile(buffer, "w", compression=compression) as dst:
            for n, payload in (members if edit is None else edit(members)).items():
                dst.writestr(n, payload)
        with pytest.raises(ModelIntegrityError, match=TREES_FILE.replace(".", r"\.")):
            st.decode(buffer.getvalue())
    with pytest.raises(ModelIntegrityError):
        st.decode(b"not a zip")


def _object_npy() -> bytes:
    out = io.BytesIO()
    np.save(out, np.array([object()], dtype=object), allow_pickle=True)
    return out.getvalue()


# --------------------------------------------------------------------------- models saved without them


def _without_arrays(folder: Path) -> None:
    """What a model saved before the arrays existed looks like."""
    (folder / TREES_FILE).unlink()
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["files"] = [r for r in manifest["files"] if r["path"] != TREES_FILE]
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def test_computed_once_and_cached_for_models_saved_without_them(tmp_path: Path, forest: Any) -> None:
    model, frame = forest
    save_model(model, tmp_path / "m", input_example=frame.head(3))
    _without_arrays(tmp_path / "m")
    assert load_model(tmp_path / "m").compiled is None  # no cache: nowhere to keep them
    cache = tmp_path / "cache"
    first = load_model(tmp_path / "m", cache=cache)
    assert first.compiled is not None and isinstance(first.raw, RandomForestClassifier)
    kept = list((cache / "sklearn-trees").iterdir())
    assert len(kept) == 1 and kept[0].name.endswith(".npz")
    second = load_model(tmp_path / "m", cache=cache)  # from the cache: the estimator is read on demand
    assert second.compiled is not None and second._predictor._raw is None
    np.testing.assert_array_equal(second.predict(frame), model.predict(frame))
    kept[0].write_bytes(kept[0].read_bytes()[:-10] + b"0123456789")  # damaged: ignored, computed again
    third = load_model(tmp_path / "m", cache=cache)
    assert third.compiled is not None and third._predictor._raw is not None


def test_skops_is_imported_without_pytorch(tmp_path: Path) -> None:
    """Reading a skops file (any estimator) and saving one do not import PyTorch, installed or not."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed: nothing to show")
    from sklearn.linear_model import LogisticRegression

    x, y = data(9, 200)
    save_model(LogisticRegression(max_iter=300).fit(x, y), tmp_path / "m", input_example=x[:2])
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from mlark.models import load_model, save_model\n"
        f"m = load_model({str(tmp_path / 'm')!r})\n"
        "m.predict(np.zeros((2, 5)))\n"
        f"save_model(m.raw, {str(tmp_path / 'again')!r})\n"
        "print(sorted(k for k in ('skops.io', 'sklearn', 'torch') if k in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['sklearn', 'skops.io']"
