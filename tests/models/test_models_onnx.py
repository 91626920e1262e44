"""The ONNX flavor, run with onnxruntime; the signature comes from the graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mlark.core.digest import digest_bytes  # noqa: E402
from mlark.errors import InvalidInput  # noqa: E402
from mlark.models import MANIFEST_NAME, load_model, save_model  # noqa: E402
from mlark.models.errors import ModelIntegrityError, SignatureMismatch  # noqa: E402

W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
B = np.array([0.5, -1.0, 2.0], dtype=np.float32)


def linear() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["XW"]), helper.make_node("Add", ["XW", "B"], ["Y"])],
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def two_inputs() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Mul", ["a", "b"], ["product"])],
        "two",
        [helper.make_tensor_value_info("a", TensorProto.INT64, [None, 2]),
         helper.make_tensor_value_info("b", TensorProto.INT64, [None, 2])],
        [helper.make_tensor_value_info("sum", TensorProto.INT64, [None, 2]),
         helper.make_tensor_value_info("product", TensorProto.INT64, [None, 2])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_roundtrip_and_graph_signature(tmp_path: Path) -> None:
    manifest = save_model(linear(), tmp_path / "m")
    assert manifest.flavor == "onnx" and manifest.framework == "onnx"
    assert str(manifest.signature) == "tensors(X: float32[?, 4]) -> tensors(Y: float32[?, 3])"
    assert [r.split("==")[0] for r in manifest.requirements] == ["onnx", "onnxruntime", "numpy"]
    model = load_model(tmp_path / "m")
    x = np.random.default_rng(1).random((6, 4))
    np.testing.assert_allclose(model.predict(x), x.astype(np.float32) @ W + B, rtol=1e-6)
    np.testing.assert_allclose(model.predict({"X": x}), x.astype(np.float32) @ W + B, rtol=1e-6)
    assert type(model.raw).__name__ == "InferenceSession"
    with pytest.raises(SignatureMismatch, match=r"input 'X' expects shape \[any, 4\], got \[6, 3\]"):
        model.predict(x[:, :3])


def test_example_is_checked_against_the_graph(tmp_path: Path) -> None:
    save_model(linear(), tmp_path / "ok", input_example=np.ones((2, 4), np.float32))
    assert load_model(tmp_path / "ok").input_example.shape == (2, 4)
    with pytest.raises(SignatureMismatch, match="expects shape"):
        save_model(linear(), tmp_path / "bad", input_example=np.ones((2, 5), np.float32))


def test_several_inputs_and_outputs(tmp_path: Path) -> None:
    save_model(two_inputs(), tmp_path / "m")
    model = load_model(tmp_path / "m")
    a, b = np.array([[1, 2], [3, 4]]), np.array([[5, 6], [7, 8]])
    out = model.predict({"a": a, "b": b.astype(np.int32)})  # int32 -> int64
    np.testing.assert_array_equal(out["sum"], a + b)
    np.testing.assert_array_equal(out["product"], a * b)
    with pytest.raises(SignatureMismatch, match="missing 'b'"):
        model.predict({"a": a})
    with pytest.raises(SignatureMismatch, match="pass a dict"):
        model.predict(a)


def test_external_data_outside_the_folder_is_refused(tmp_path: Path) -> None:
    model = linear()
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../../etc/passwd"
    with pytest.raises(ModelIntegrityError, match="external file '../../../etc/passwd'"):
        save_model(model, tmp_path / "a")
    save_model(linear(), tmp_path / "b")  # and a crafted folder that points outside is refused on load
    data = model.SerializeToString()
    (tmp_path / "b" / "model.onnx").write_bytes(data)
    manifest = json.loads((tmp_path / "b" / MANIFEST_NAME).read_text())
    manifest["files"][0].update(size=len(data), digest=digest_bytes(data))
    (tmp_path / "b" / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="external file"):
        load_model(tmp_path / "b")


def test_invalid_graph_is_refused(tmp_path: Path) -> None:
    model = linear()
    model.graph.node[0].input[1] = "missing"
    with pytest.raises(InvalidInput, match="onnx.checker"):
        save_model(model, tmp_path / "m")
