"""The model folder format: manifest, file digests, integrity errors, atomic saving, lazy imports."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import models_testkit as kit  # noqa: E402

from mlark.core.digest import digest_bytes  # noqa: E402
from mlark.core.ids import new_id  # noqa: E402
from mlark.errors import IntegrityError, InvalidInput, NotFound, UnsupportedFormat  # noqa: E402
from mlark.models import MANIFEST_NAME, Manifest, load_model, read_manifest, save_model, verify_model  # noqa: E402
from mlark.models.errors import (  # noqa: E402
    ModelIntegrityError,
    ModelNotFound,
    ModelPathExists,
    UnknownFlavor,
    UnsupportedModelFormat,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "mlark" / "models"


def saved(tmp_path: Path, name: str = "m", **kwargs: object) -> Path:
    path = tmp_path / name
    save_model(kit.Scaler(3.0), path, init_args={"factor": 3.0}, **kwargs)  # type: ignore[arg-type]
    return path


def rewrite_manifest(path: Path, **changes: object) -> None:
    doc = json.loads((path / MANIFEST_NAME).read_text())
    doc.update(changes)
    (path / MANIFEST_NAME).write_text(json.dumps(doc))


# ---------------------------------------------------------------------- the manifest


def test_manifest_fields(tmp_path: Path) -> None:
    run_id = new_id()
    path = saved(tmp_path, input_example=pd.DataFrame({"x": [1.0, 2.0]}), metadata={"team": "churn"},
                 requirements=["lightgbm==4.3.0"], run_id=run_id)  # fmt: skip
    doc = json.loads((path / MANIFEST_NAME).read_text())
    assert doc["format"] == "mlark-model" and doc["format_version"] == 1
    assert doc["flavor"] == "python"
    assert doc["flavor_config"] == {
        "class": "models_testkit:Scaler",
        "init_args": {"factor": 3.0},
        "serialization": "code",
    }
    assert doc["framework"]["name"] == "python" and doc["python"].startswith("3.")
    assert doc["requirements"][-1] == "lightgbm==4.3.0" and any(r.startswith("numpy==") for r in doc["requirements"])
    assert doc["signature"]["inputs"] == {"columns": [{"name": "x", "dtype": "float64"}]}
    assert doc["signature"]["outputs"] == {"tensors": [{"dtype": "float64", "shape": [-1, 1]}]}
    assert doc["input_example"] == "input_example.json"
    assert doc["run_id"] == run_id and doc["metadata"] == {"team": "churn"}
    example = (path / "input_example.json").read_bytes()
    assert doc["files"] == [{"path": "input_example.json", "size": len(example), "digest": digest_bytes(example)}]
    manifest = read_manifest(path)
    assert Manifest.decode(manifest.encode()) == manifest
    assert manifest.summary()["flavor"] == "python"


def test_same_model_gives_the_same_bytes(tmp_path: Path) -> None:
    a = saved(tmp_path, "a", input_example={"x": [1, 2]})
    b = saved(tmp_path, "b", input_example={"x": [1, 2]})
    assert (a / MANIFEST_NAME).read_bytes() == (b / MANIFEST_NAME).read_bytes()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="run_id"):
        saved(tmp_path, run_id="not-a-uuid")
    with pytest.raises(InvalidInput, match="metadata must be JSON"):
        saved(tmp_path, metadata={"x": object()})
    with pytest.raises(InvalidInput, match="requirement"):
        saved(tmp_path, requirements=["ok==1", "bad\nline"])
    with pytest.raises(InvalidInput, match="unknown option"):
        save_model(kit.Scaler(), tmp_path / "x", colour="red")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written, no temp folders


def test_save_never_overwrites(tmp_path: Path) -> None:
    path = saved(tmp_path)
    with pytest.raises(ModelPathExists, match="not empty"):
        saved(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelPathExists, match="not a folder"):
        save_model(kit.Scaler(), tmp_path / "file")
    (tmp_path / "empty").mkdir()
    save_model(kit.Scaler(), tmp_path / "empty")  # an empty folder is fine
    assert verify_model(path).flavor == "python"


def test_failed_save_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not rebuild"):
        save_model(kit.Learner().fit([1.0, 3.0]), tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- refusing a bad folder


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="no model folder"):
        load_model(tmp_path / "nope")
    with pytest.raises(NotFound, match=f"has no {MANIFEST_NAME}"):
        load_model(tmp_path)
    with pytest.raises(ModelNotFound, match="resolved by the repository"):
        load_model("models:/churn@production")


def test_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = saved(tmp_path, input_example={"x": [1.0]})
    (path / "input_example.json").unlink()
    with pytest.raises(ModelIntegrityError, match="missing the file 'input_example.json'") as info:
        load_model(path)
    assert info.value.fields["file"] == "input_example.json"
    assert isinstance(info.value, IntegrityError)


def test_tampered_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = saved(tmp_path, input_example={"x": [1.0]})
    target = path / "input_example.json"
    data = bytearray(target.read_bytes())
    data[-3] ^= 1  # same size, other bytes
    target.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"'input_example.json'.*digest mismatch") as info:
        load_model(path)
    assert info.value.fields["problem"] == "digest"
    target.write_bytes(bytes(data) + b" ")
    with pytest.raises(ModelIntegrityError, match="bytes, the manifest says"):
        verify_model(path)


def test_unlisted_file_and_symlink_are_refused(tmp_path: Path) -> None:
    path = saved(tmp_path)
    (path / "extra.pkl").write_bytes(b"x")
    with pytest.raises(ModelIntegrityError, match="not listed in mlark-model.json: extra.pkl"):
        load_model(path)
    (path / "extra.pkl").unlink()
    os.symlink("/etc/passwd", path / "link")
    with pytest.raises(ModelIntegrityError, match="'link' is not a regular file"):
        load_model(path)


def test_unknown_flavor_is_refused_naming_it_and_the_known_ones(tmp_path: Path) -> None:
    path = saved(tmp_path)
    rewrite_manifest(path, flavor="tensorflow")
    with pytest.raises(UnknownFlavor, match=r"unknown flavor 'tensorflow'; known flavors: onnx, python, pytorch, "
                                            r"sentence_transformers, sklearn") as info:  # fmt: skip
        load_model(path)
    assert info.value.fields["known"] == ["onnx", "python", "pytorch", "sentence_transformers", "sklearn"]
    with pytest.raises(UnknownFlavor, match="'keras'"):
        save_model(kit.Scaler(), tmp_path / "x", flavor="keras")
    with pytest.raises(UnknownFlavor, match="cannot tell which flavor"):
        save_model(kit.NoPredict(), tmp_path / "y")


def test_manifest_is_decoded_strictly(tmp_path: Path) -> None:
    path = saved(tmp_path)
    original = (path / MANIFEST_NAME).read_text()
    rewrite_manifest(path, trust=["pickle"])  # the artifact cannot grant itself trust
    with pytest.raises(ModelIntegrityError, match="unknown field"):
        load_model(path)
    (path / MANIFEST_NAME).write_text(original)
    rewrite_manifest(path, format_version=2)
    with pytest.raises(UnsupportedModelFormat, match="format version 2") as info:
        load_model(path)
    assert isinstance(info.value, UnsupportedFormat)
    (path / MANIFEST_NAME).write_text(original)
    rewrite_manifest(path, files=[{"path": "../outside", "size": 1, "digest": "0" * 64}])
    with pytest.raises(ModelIntegrityError, match="invalid path"):
        load_model(path)
    (path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="not valid JSON"):
        load_model(path)


# ---------------------------------------------------------------------- the python flavor


def test_python_flavor_by_class_path(tmp_path: Path) -> None:
    path = saved(tmp_path)
    model = load_model(path)
    assert model.flavor == "python" and isinstance(model.raw, kit.Scaler) and model.raw.factor == 3.0
    np.testing.assert_array_equal(model.predict(np.array([1.0, 2.0])), [3.0, 6.0])
    assert "python" in repr(model)


def test_python_flavor_refuses_what_it_cannot_rebuild(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"attributes that differ: mean"):
        save_model(kit.Learner().fit([1.0, 3.0]), tmp_path / "a")
    with pytest.raises(InvalidInput, match="init_args must be JSON"):
        save_model(kit.Scaler(), tmp_path / "b", init_args={"factor": np.float32(2)})

    class Local:
        def predict(self, data: object) -> object:
            return data

    with pytest.raises(InvalidInput, match="inside a function"):
        save_model(Local(), tmp_path / "c")


# ---------------------------------------------------------------------- import cost and layers


def test_import_loads_no_framework() -> None:
    code = (
        "import sys, mlark.models; from mlark.models import save_model, load_model, Signature, Manifest; "
        "import mlark.models.errors; "
        "heavy = [m for m in ('torch', 'sklearn', 'onnx', 'onnxruntime', 'skops', 'safetensors', 'transformers', "
        "'sentence_transformers', 'pandas', 'numpy') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import mlark.models imported: {out}"


def test_loading_one_flavor_imports_no_other_framework(tmp_path: Path) -> None:
    path = saved(tmp_path)
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from mlark.models import load_model; "
        f"m = load_model({str(path)!r}); m.predict([[1.0]]); "
        "print(','.join(x for x in ('torch', 'sklearn', 'onnx', 'onnxruntime', 'transformers') if x in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_models_imports_only_core_and_errors() -> None:
    """Layer rule: mlark.models may import mlark.core and mlark.errors, nothing else of mlark."""
    bad = []
    for file in SRC.rglob("*.py"):
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name == "mlark" or (name.startswith("mlark.") and not name.startswith(
                        ("mlark.core", "mlark.errors", "mlark.models"))):  # fmt: skip
                    if (
                        name == "mlark"
                        and isinstance(node, ast.ImportFrom)
                        and [a.name for a in node.names] == ["__version__"]
                    ):
                        continue
                    bad.append(f"{file.relative_to(SRC)}: {name}")
    assert bad == []
