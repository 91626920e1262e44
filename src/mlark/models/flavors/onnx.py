"""ONNX: the graph in ``model.onnx``, run with onnxruntime on the CPU.

The signature comes from the graph's inputs and outputs (names, element types, shapes; a symbolic
or unknown dimension becomes ``-1``). Loading parses the graph with ``onnx`` first and refuses
external-data references that are not model files (ONNX can point at any path), then hands the
verified bytes to onnxruntime. Accepted models: an ``onnx.ModelProto``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlark.errors import InvalidInput
from mlark.models.errors import ModelIntegrityError
from mlark.models.files import ModelFiles
from mlark.models.flavors.base import Saved, check_config_keys, config_value, loaded, require, take_options
from mlark.models.safety import Trust
from mlark.models.signature import Schema, Signature, Spec

NAME = "onnx"
FRAMEWORK = "onnx"
REQUIREMENTS = ("onnx", "onnxruntime", "numpy")
EXTRA = "onnx"
FILE = "model.onnx"


def matches(model: object) -> bool:
    onnx = loaded("onnx")
    return onnx is not None and isinstance(model, onnx.ModelProto)


def save(model: Any, folder: Path, options: dict[str, Any]) -> Saved:
    onnx = require("onnx", extra=EXTRA)
    take_options(NAME, options, {})
    if not isinstance(model, onnx.ModelProto):
        raise InvalidInput(f"the onnx flavor saves an onnx.ModelProto, got {type(model).__name__}", field="model")
    _check_no_external_data(onnx, model, allowed=set())
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise InvalidInput(f"the ONNX model does not pass onnx.checker: {exc}", field="model") from exc
    data = model.SerializeToString()
    (folder / FILE).write_bytes(data)
    return Saved(
        config={"file": FILE},
        predictor=_Predictor(_session(data, FILE), model),
        signature=graph_signature(onnx, model),
        framework_version=onnx.__version__,
    )


def load(files: ModelFiles, config: dict[str, Any], trust: Trust) -> _Predictor:
    onnx = require("onnx", extra=EXTRA)
    check_config_keys(config, {"file"})
    file = config_value(config, "file", str)
    data = files.read_bytes(file)
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:
        raise ModelIntegrityError(f"model file {file!r} is not a valid ONNX model: {exc}", file=file) from exc
    _check_no_external_data(onnx, model, allowed=set())
    return _Predictor(_session(data, file), model)


def graph_signature(onnx: Any, model: Any) -> Signature:
    initializers = {i.name for i in model.graph.initializer}

    def spec(value_info: Any) -> Spec:
        t = value_info.type.tensor_type
        try:
            dtype = _dtype_name(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type))
        except Exception:
            dtype = None
        if dtype is None:
            raise InvalidInput(
                f"ONNX input/output {value_info.name!r} has an element type mlark has no signature type for",
                field="signature",
            )
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
        return Spec(dtype, value_info.name, shape)

    inputs = [spec(v) for v in model.graph.input if v.name not in initializers]
    outputs = [spec(v) for v in model.graph.output]
    return Signature(Schema("tensors", tuple(inputs)), Schema("tensors", tuple(outputs)))


def _dtype_name(np_dtype: Any) -> str | None:
    import numpy as np

    from mlark.models.dtypes import dtype_name

    return "string" if np.dtype(np_dtype).kind == "O" else dtype_name(np_dtype)


def _check_no_external_data(onnx: Any, model: Any, *, allowed: set[str]) -> None:
    for tensor in _tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            if location not in allowed:
                raise ModelIntegrityError(
                    f"the ONNX graph reads tensor {tensor.name!r} from external file {location!r}; "
                    "mlark stores ONNX models with their weights inside (load_external_data before saving)",
                    file=FILE,
                )


def _tensors(graph: Any) -> Any:
    """Every tensor of a graph: initializers and tensor attributes, subgraphs included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for sub in attr.graphs:
                yield from _tensors(sub)


def _session(data: bytes, file: str) -> Any:
    ort = require("onnxruntime", extra=EXTRA)
    try:
        return ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelIntegrityError(f"onnxruntime cannot load {file!r}: {exc}", file=file) from exc


class _Predictor:
    def __init__(self, session: Any, model: Any) -> None:
        self.raw = session
        self.proto = model
        self.inputs = [i.name for i in session.get_inputs()]
        self.outputs = [o.name for o in session.get_outputs()]

    def predict(self, data: Any) -> Any:
        import numpy as np

        if isinstance(data, dict):
            feeds = {k: _feed(v) for k, v in data.items()}
        elif len(self.inputs) == 1:
            feeds = {self.inputs[0]: _feed(data.to_numpy() if hasattr(data, "to_numpy") else data)}
        else:
            raise InvalidInput(
                f"this ONNX model takes {len(self.inputs)} inputs ({', '.join(self.inputs)}); pass a dict",
                field="data",
            )
        result = self.raw.run(None, feeds)
        if len(result) == 1:
            return np.asarray(result[0])
        return {name: np.asarray(value) for name, value in zip(self.outputs, result, strict=True)}


def _feed(value: Any) -> Any:
    import numpy as np

    array = np.asarray(value)
    return array.astype(object) if array.dtype.kind == "U" else np.ascontiguousarray(array)
