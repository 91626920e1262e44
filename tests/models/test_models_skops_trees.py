"""Decision trees in a skops file are checked before skops builds them: a crafted node array (a child out of
range, a cycle, a feature beyond the input) is refused naming the file, never handed to scikit-learn."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

pytest.importorskip("skops.io")
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.ensemble import GradientBoostingClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.tree import DecisionTreeClassifier  # noqa: E402

from mlark.core.digest import digest_bytes  # noqa: E402
from mlark.models import MANIFEST_NAME, load_model, save_model  # noqa: E402
from mlark.models.errors import ModelIntegrityError  # noqa: E402
from mlark.models.flavors.skops_trees import check_trees  # noqa: E402

X, Y = load_iris(return_X_y=True)


def _trees(node: Any, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("__loader__") == "TreeNode":
            found.append(node)
        for value in node.values():
            _trees(value, found)
    elif isinstance(node, list):
        for value in node:
            _trees(value, found)
    return found


def _craft(folder: Path, edit: Callable[[dict[str, Any], dict[str, bytes]], None]) -> None:
    """Rewrite model.skops through ``edit(schema, members)`` and make the manifest match (a crafted folder)."""
    path = folder / "model.skops"
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as src:
        members = {n: src.read(n) for n in src.namelist()}
    schema = json.loads(members["schema.json"])
    edit(schema, members)
    members["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as dst:
        for name, payload in members.items():
            dst.writestr(name, payload)
    data = buffer.getvalue()
    path.write_bytes(data)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    for record in manifest["files"]:
        if record["path"] == "model.skops":
            record.update(size=len(data), digest=digest_bytes(data))
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def _nodes_edit(change: Callable[[np.ndarray], None]) -> Callable[[dict[str, Any], dict[str, bytes]], None]:
    def edit(schema: dict[str, Any], members: dict[str, bytes]) -> None:
        tree = _trees(schema, [])[0]
        name = tree["content"]["content"]["nodes"]["file"]
        nodes = np.load(io.BytesIO(members[name]), allow_pickle=False)
        change(nodes)
        out = io.BytesIO()
        np.save(out, nodes, allow_pickle=False)
        members[name] = out.getvalue()

    return edit


def _inner(nodes: np.ndarray) -> int:
    return int(np.flatnonzero(nodes["left_child"] != -1)[1])


def _set(field: str, value: Any, where: Callable[[np.ndarray], int] = _inner) -> Callable[[np.ndarray], None]:
    def change(nodes: np.ndarray) -> None:
        nodes[field][where(nodes)] = value

    return change


def _count(delta: int) -> Callable[[dict[str, Any], dict[str, bytes]], None]:
    def edit(schema: dict[str, Any], members: dict[str, bytes]) -> None:
        count = _trees(schema, [])[0]["content"]["content"]["node_count"]
        count["content"] = str(int(json.loads(count["content"])) + delta)

    return edit


def _disguised(schema: dict[str, Any], members: dict[str, bytes]) -> None:
    """A tree whose type claims to be something trusted, built by skops's tree loader all the same."""
    tree = _trees(schema, [])[0]
    tree["__module__"], tree["__class__"] = "numpy", "dtype"
    _nodes_edit(_set("right_child", 10**6))(schema, members)


def _shared_id(schema: dict[str, Any], members: dict[str, bytes]) -> None:
    """A second node with the tree's node_count __id__ but another value: skops would use whichever comes first."""
    count = _trees(schema, [])[0]["content"]["content"]["node_count"]
    schema["content"]["content"]["crafted"] = {**count, "content": "100000"}


CASES = {
    "child out of range": _nodes_edit(_set("left_child", 10**6)),
    "cycle": _nodes_edit(_set("right_child", 0)),
    "negative child": _nodes_edit(_set("left_child", -7)),
    "leaf with a child": _nodes_edit(_set("right_child", 1, where=lambda n: int(np.argmax(n["left_child"] < 0)))),
    "feature beyond the input": _nodes_edit(_set("feature", 40)),
    "node_count above the nodes": _count(5),
    "node_count below the nodes": _count(-1),
    "disguised type": _disguised,
    "shared __id__": _shared_id,
}


@pytest.mark.parametrize("case", list(CASES))
def test_crafted_trees_are_refused_before_skops_builds_them(tmp_path: Path, case: str) -> None:
    pipe = make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)).fit(X, Y)
    save_model(pipe, tmp_path / "m")
    _craft(tmp_path / "m", CASES[case])
    with pytest.raises(ModelIntegrityError, match="model.skops") as info:
        load_model(tmp_path / "m")
    assert info.value.fields["file"] == "model.skops"


def test_the_refused_file_would_have_crashed_scikit_learn(tmp_path: Path) -> None:
    """Why it matters: the same crafted file, loaded by skops directly, kills the process that predicts."""
    pipe = make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)).fit(X, Y)
    save_model(pipe, tmp_path / "m")
    _craft(tmp_path / "m", _nodes_edit(_set("left_child", 10**9)))
    code = (
        "import skops.io as sio\n"
        "from sklearn.datasets import load_iris\n"
        f"m = sio.load({str(tmp_path / 'm' / 'model.skops')!r}, trusted=sio.get_untrusted_types("
        f"file={str(tmp_path / 'm' / 'model.skops')!r}))\n"
        "m.predict(load_iris().data)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode < 0 or done.returncode > 1, done  # a signal (SIGSEGV), not a Python error


def test_naming_the_tree_type_in_trust_is_the_callers_choice(tmp_path: Path) -> None:
    pipe = make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)).fit(X, Y)
    save_model(pipe, tmp_path / "m")
    _craft(tmp_path / "m", _count(-1))
    with pytest.raises(ModelIntegrityError):
        load_model(tmp_path / "m")
    load_model(tmp_path / "m", trust=["sklearn.tree._tree.Tree"])  # loads (and is not used here)


def test_legitimate_ensembles_pass() -> None:
    import skops.io as sio
    from sklearn.ensemble import BaggingClassifier, IsolationForest, RandomForestRegressor

    cases = [(GradientBoostingClassifier(n_estimators=3), 9), (IsolationForest(n_estimators=3, max_features=0.5), 3),
             (BaggingClassifier(n_estimators=3, max_features=2), 3), (RandomForestRegressor(n_estimators=4), 4)]
    for est, n in cases:
        est.fit(X, Y)
        assert check_trees(sio.dumps(est), file="m") == n


def test_a_tree_reading_more_features_than_its_ensemble_takes_is_refused() -> None:
    import skops.io as sio

    gb = GradientBoostingClassifier(n_estimators=2).fit(X, Y)
    data = sio.dumps(gb)
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        members = {n: src.read(n) for n in src.namelist()}
    schema = json.loads(members["schema.json"])
    state = schema["content"]["content"]
    state["n_features_in_"] = {**state["n_features_in_"], "content": "3", "__id__": 987654321}
    members["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as dst:
        for name, payload in members.items():
            dst.writestr(name, payload)
    with pytest.raises(ModelIntegrityError, match="the estimator around it takes 3"):
        check_trees(buffer.getvalue(), file="m")
