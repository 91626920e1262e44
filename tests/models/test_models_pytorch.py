"""The PyTorch flavor, with torch 2.13 CPU: state_dict in safetensors + class path; never torch.load."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))

import models_testkit_torch as kt  # noqa: E402

from mlark.core.digest import digest_bytes  # noqa: E402
from mlark.errors import InvalidInput, NotFound  # noqa: E402
from mlark.models import MANIFEST_NAME, load_model, save_model  # noqa: E402
from mlark.models.errors import ImportPathNotFound, ModelIntegrityError  # noqa: E402

ARGS = {"n_in": 4, "n_hidden": 8, "n_out": 3}


@pytest.fixture
def net() -> kt.TinyNet:
    torch.manual_seed(0)
    return kt.TinyNet(**ARGS)


def forge(folder: Path, name: str, data: bytes | None = None, **config: object) -> None:
    """Rewrite a file and/or flavor_config and re-sign the manifest, as someone crafting a folder would."""
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    if data is not None:
        (folder / name).write_bytes(data)
        for record in manifest["files"]:
            if record["path"] == name:
                record.update(size=len(data), digest=digest_bytes(data))
    manifest["flavor_config"].update(config)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def test_roundtrip(tmp_path: Path, net: kt.TinyNet) -> None:
    x = np.random.default_rng(0).random((5, 4), dtype=np.float32)
    manifest = save_model(net, tmp_path / "m", init_args=ARGS, input_example=x)
    assert manifest.flavor == "pytorch" and manifest.framework == "torch"
    assert manifest.framework_version.startswith("2.13.0")
    assert manifest.flavor_config == {
        "class": "models_testkit_torch:TinyNet",
        "init_args": ARGS,
        "weights": "model.safetensors",
    }
    assert str(manifest.signature) == "tensors(float32[?, 4]) -> tensors(float32[?, 3])"
    model = load_model(tmp_path / "m")
    assert isinstance(model.raw, kt.TinyNet) and not model.raw.training
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(model.predict(x), expected)
    np.testing.assert_allclose(model.predict(x.astype(np.float64)), expected, rtol=1e-6)  # float64 rounds to float32
    assert model.predict(x[0]).shape == (1, 3)  # one row
    with pytest.raises(InvalidInput, match=r"expects shape \[any, 4\]"):
        model.predict(np.zeros((2, 5)))


def test_tied_weights_and_named_inputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tied = kt.TiedNet()
    ids = np.array([[1, 2, 3]], dtype=np.int64)
    save_model(tied, tmp_path / "tied", input_example=ids)
    model = load_model(tmp_path / "tied")
    assert model.raw.out.weight.data_ptr() == model.raw.embed.weight.data_ptr()  # still shared
    with torch.no_grad():
        np.testing.assert_array_equal(model.predict(ids), tied(torch.from_numpy(ids)).numpy())
    two = kt.TwoInputs()
    example = {"left": np.ones((2, 3), np.float32), "right": np.zeros((2, 3), np.float32)}
    save_model(two, tmp_path / "two", input_example=example)
    model = load_model(tmp_path / "two")
    assert model.signature is not None and model.signature.inputs.names == ["left", "right"]
    assert model.predict(example).shape == (2, 1)


def test_wrong_init_args_are_caught_at_save(tmp_path: Path) -> None:
    net = kt.TinyNet(n_in=4, n_hidden=16, n_out=2)
    with pytest.raises(InvalidInput, match=r"parameters differ from the one being saved \(body.0.bias"):
        save_model(net, tmp_path / "m")  # the defaults build other shapes
    with pytest.raises(InvalidInput, match="fails"):
        save_model(net, tmp_path / "m", init_args={"nope": 1})
    assert not (tmp_path / "m").exists()


def test_corrupt_safetensors_header_is_refused(tmp_path: Path, net: kt.TinyNet) -> None:
    save_model(net, tmp_path / "m", init_args=ARGS)
    weights = (tmp_path / "m" / "model.safetensors").read_bytes()
    n = int.from_bytes(weights[:8], "little")
    cases = {
        b"\xff" * 8 + weights[8:]: "header length",
        weights[:8] + b"\x80" + weights[9:]: "not UTF-8 JSON",
        weights[:8] + weights[8 : 8 + n].replace(b'"F32"', b'"X99"', 1) + weights[8 + n :]: "unknown dtype",
        weights[: len(weights) - 4]: "outside the",
    }
    for bad, reason in cases.items():
        forge(tmp_path / "m", "model.safetensors", bad)
        with pytest.raises(ModelIntegrityError, match=f"'model.safetensors' is not a valid safetensors file.*{reason}"):
            load_model(tmp_path / "m")


def test_tampered_weights_without_forging_the_manifest(tmp_path: Path, net: kt.TinyNet) -> None:
    save_model(net, tmp_path / "m", init_args=ARGS)
    path = tmp_path / "m" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="'model.safetensors'.*digest mismatch"):
        load_model(tmp_path / "m")


def test_import_path_that_does_not_resolve(tmp_path: Path, net: kt.TinyNet) -> None:
    save_model(net, tmp_path / "m", init_args=ARGS)
    forge(tmp_path / "m", "", **{"class": "no_such_package.models:Net"})
    with pytest.raises(ImportPathNotFound, match="cannot import module 'no_such_package.models'") as info:
        load_model(tmp_path / "m")
    assert isinstance(info.value, NotFound) and info.value.fields["class_path"] == "no_such_package.models:Net"
    forge(tmp_path / "m", "", **{"class": "models_testkit_torch:Renamed"})
    with pytest.raises(ImportPathNotFound, match="has no 'Renamed'"):
        load_model(tmp_path / "m")


def test_class_path_is_guarded(tmp_path: Path, net: kt.TinyNet) -> None:
    save_model(net, tmp_path / "m", init_args=ARGS)
    forge(tmp_path / "m", "", **{"class": "subprocess:Popen", "init_args": {"args": ["touch", str(tmp_path / "x")]}})
    with pytest.raises(ModelIntegrityError, match="standard library"):
        load_model(tmp_path / "m")
    forge(tmp_path / "m", "", **{"class": "models_testkit_torch:NotAModule", "init_args": {}})
    with pytest.raises(ModelIntegrityError, match="not a torch.nn.Module subclass"):
        load_model(tmp_path / "m")
    forge(tmp_path / "m", "", **{"class": "models_testkit_torch:TinyNet", "init_args": {"n_in": 5}})
    with pytest.raises(ModelIntegrityError, match="does not fit"):
        load_model(tmp_path / "m")
    assert not (tmp_path / "x").exists()


def test_classes_from_main_are_refused(tmp_path: Path) -> None:
    Script = type("Script", (torch.nn.Module,), {"__module__": "__main__"})
    with pytest.raises(InvalidInput, match="__main__"):
        save_model(Script(), tmp_path / "m")


def test_loading_never_unpickles(tmp_path: Path, net: kt.TinyNet, monkeypatch: pytest.MonkeyPatch) -> None:
    save_model(net, tmp_path / "m", init_args=ARGS)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("unpickling was attempted")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    assert isinstance(load_model(tmp_path / "m").raw, kt.TinyNet)
