"""Safe loading: nothing from a model folder runs code unless the caller names it in trust=."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import models_testkit as kit  # noqa: E402

from mlark.core.digest import digest_bytes  # noqa: E402
from mlark.errors import InvalidInput  # noqa: E402
from mlark.models import MANIFEST_NAME, load_model, save_model  # noqa: E402
from mlark.models.errors import ModelIntegrityError, UntrustedModel  # noqa: E402
from mlark.models.manifest import FileRecord, Manifest  # noqa: E402
from mlark.models.safety import check_safetensors, parse_trust  # noqa: E402


def craft_pickle_folder(folder: Path, payload: bytes, *, flavor: str = "python", fmt: str = "pickle") -> None:
    """A model folder as an attacker would hand it over: a consistent manifest around a malicious pickle."""
    folder.mkdir()
    (folder / "model.pkl").write_bytes(payload)
    config = {"file": "model.pkl", "serialization": fmt}
    if flavor == "sklearn":
        config["method"] = "predict"
    manifest = Manifest(
        flavor=flavor, flavor_config=config, framework="python", framework_version="3.11", python="3.11",
        requirements=(), files=(FileRecord("model.pkl", len(payload), digest_bytes(payload)),),
    )  # fmt: skip
    (folder / MANIFEST_NAME).write_bytes(manifest.encode())


@pytest.mark.parametrize(("flavor", "fmt"), [("python", "pickle"), ("sklearn", "pickle"), ("python", "cloudpickle")])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path, flavor: str, fmt: str) -> None:
    marker = tmp_path / "pwned"
    craft_pickle_folder(tmp_path / "m", pickle.dumps(kit.Bomb(str(marker))), flavor=flavor, fmt=fmt)
    with pytest.raises(UntrustedModel, match=rf"'model.pkl' is a {fmt} file.*trust=\['{fmt}'\]") as info:
        load_model(tmp_path / "m")
    assert info.value.fields["untrusted"] == [fmt]
    assert not marker.exists()
    for wrong in (None, [], ["joblib" if fmt != "joblib" else "pickle"], "models_testkit.Bomb"):
        with pytest.raises(UntrustedModel):
            load_model(tmp_path / "m", trust=wrong)
    assert not marker.exists()
    # The same file with the caller's explicit trust: the code runs. This is what trust= means.
    with pytest.raises(ModelIntegrityError, match="NoneType"):
        load_model(tmp_path / "m", trust=[fmt])  # exec() returns None: not a model
    assert marker.read_text() == "pwned"


def test_trust_cannot_come_from_the_folder(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    craft_pickle_folder(tmp_path / "m", pickle.dumps(kit.Bomb(str(marker))))
    doc = json.loads((tmp_path / "m" / MANIFEST_NAME).read_text())
    doc["flavor_config"]["trust"] = ["pickle"]
    (tmp_path / "m" / MANIFEST_NAME).write_text(json.dumps(doc))
    with pytest.raises((UntrustedModel, ModelIntegrityError)):
        load_model(tmp_path / "m")
    doc["flavor_config"].pop("trust")
    doc["metadata"] = {"trust": ["pickle"]}
    (tmp_path / "m" / MANIFEST_NAME).write_text(json.dumps(doc))
    with pytest.raises(UntrustedModel):
        load_model(tmp_path / "m")
    assert not marker.exists()


def test_pickle_save_is_explicit_and_load_needs_trust(tmp_path: Path) -> None:
    learner = kit.Learner().fit([2.0, 4.0])  # state a class path cannot carry
    manifest = save_model(learner, tmp_path / "m", serialization="pickle")
    assert manifest.flavor_config == {"file": "model.pkl", "serialization": "pickle"}
    with pytest.raises(UntrustedModel):
        load_model(tmp_path / "m")
    model = load_model(tmp_path / "m", trust="pickle")
    np.testing.assert_array_equal(model.predict([1, 2]), [3.0, 3.0])


def test_trust_argument_is_validated() -> None:
    assert parse_trust(None).names == frozenset()
    assert parse_trust("pickle").names == frozenset({"pickle"})
    assert parse_trust(("pickle", "a.B")).names == frozenset({"pickle", "a.B"})
    with pytest.raises(InvalidInput, match="must name what is trusted"):
        parse_trust(True)
    with pytest.raises(InvalidInput, match="non-empty strings"):
        parse_trust(["pickle", ""])
    with pytest.raises(InvalidInput, match="string or a list"):
        parse_trust(3)


def _safetensors(header: dict[str, object], data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def test_safetensors_header_checks() -> None:
    good = _safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8)
    assert set(check_safetensors(good, file="w.safetensors")) == {"w"}
    bad = {
        b"\x01\x02": "shorter than the 8-byte header length",
        (10**12).to_bytes(8, "little") + b"{}": "does not fit",
        _safetensors({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8): "do not hold",
        _safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}, b"\0" * 8): "outside",
        _safetensors({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8): "invalid shape",
        _safetensors(
            {
                "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]},
            },
            b"\0" * 6,
        ): "overlap or gap",
        _safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "code": "x"}}, b"\0" * 8): "exactly",
        _safetensors([1, 2], b""): "not a JSON object",  # type: ignore[arg-type]
    }
    for data, reason in bad.items():
        with pytest.raises(ModelIntegrityError, match=f"'w.safetensors' is not a valid safetensors file: .*{reason}"):
            check_safetensors(data, file="w.safetensors")


def test_encoder_folder_with_pickle_weights_or_foreign_modules_is_refused(tmp_path: Path) -> None:
    from mlark.models.files import ModelFiles
    from mlark.models.flavors.sentence_transformers import _refuse_code
    from mlark.models.safety import Trust

    folder = tmp_path / "m"
    (folder / "model").mkdir(parents=True)
    files = {
        "model/pytorch_model.bin": b"pickle bytes",
        "model/modules.json": json.dumps(
            [{"idx": 0, "name": "0", "path": "", "type": "evil.module.Backdoor"}]
        ).encode(),
        "model/config.json": json.dumps({"auto_map": {"AutoModel": "modeling.Evil"}}).encode(),
    }
    records = []
    for rel, data in files.items():
        (folder / rel).write_bytes(data)
        records.append(FileRecord(rel, len(data), digest_bytes(data)))
    manifest = Manifest("sentence_transformers", {"folder": "model"}, "x", "1", "3.11", (), tuple(records))
    view = ModelFiles(folder, manifest)
    listed = sorted(files)
    with pytest.raises(UntrustedModel, match="pickle-format weights \\(model/pytorch_model.bin\\)"):
        _refuse_code(view, "model", listed, Trust())
    with pytest.raises(UntrustedModel, match="evil.module.Backdoor"):
        _refuse_code(view, "model", listed, Trust(frozenset({"pickle"})))
    with pytest.raises(UntrustedModel, match="auto_map"):
        _refuse_code(view, "model", listed, Trust(frozenset({"pickle", "evil.module.Backdoor"})))
