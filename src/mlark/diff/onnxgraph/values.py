"""ONNX values in comparable form: attribute values, constant tensors (initializers and
``Constant`` nodes), operator schemas (attribute defaults, input names), value-info types."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from mlark.diff.deps import require

SMALL = 256  # constants with at most this many elements are compared (and shown) by value at the node
PREVIEW = 16


def _onnx() -> Any:
    return require("onnx", purpose="diffing ONNX models")


@dataclass(frozen=True, eq=False)
class TensorValue:
    """A constant tensor: type, shape, a digest of its bytes and (when small) its values. Two are
    equal when type, shape and bytes are (so NaN equals NaN, and -0.0 differs from 0.0)."""

    dtype: str
    shape: tuple[int, ...]
    digest: str
    values: tuple[Any, ...] | None  # all elements when numel <= SMALL

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorValue):
            return NotImplemented
        return (self.dtype, self.shape, self.digest) == (other.dtype, other.shape, other.digest)

    def __hash__(self) -> int:
        return hash((self.dtype, self.shape, self.digest))

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __str__(self) -> str:
        dims = "[" + ",".join(str(d) for d in self.shape) + "]"
        if self.values is not None:
            shown = ",".join(_short(v) for v in self.values[:PREVIEW])
            if len(self.values) > PREVIEW:
                shown += ",..."
            if not self.shape:
                return shown
            return f"[{shown}]" if len(self.shape) == 1 else f"{self.dtype}{dims} [{shown}]"
        return f"{self.dtype}{dims} <{self.digest[:12]}>"

    def to_json(self) -> Any:
        out: dict[str, Any] = {"dtype": self.dtype, "shape": list(self.shape), "digest": self.digest}
        if self.values is not None:
            out["values"] = list(self.values)
        return out


def _short(v: Any) -> str:
    if isinstance(v, float):
        return format(v, ".6g")
    return str(v)


@dataclass(frozen=True)
class GraphValue:
    """A subgraph attribute (If/Loop/Scan body): compared by digest, not recursed into."""

    name: str
    nodes: int
    digest: str

    def __str__(self) -> str:
        return f"<graph {self.name or ''} {self.nodes} nodes {self.digest[:12]}>"

    def to_json(self) -> Any:
        return {"graph": self.name, "nodes": self.nodes, "digest": self.digest}


def dtype_name(elem_type: int) -> str:
    onnx = _onnx()
    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:
        try:
            return onnx.TensorProto.DataType.Name(elem_type).lower()
        except ValueError:
            return f"type{elem_type}"


def tensor_value(array: Any) -> TensorValue:
    np = require("numpy", purpose="diffing ONNX models")
    arr = np.ascontiguousarray(array)
    if arr.dtype.kind in "OUS":
        data = repr(arr.tolist()).encode("utf-8")
    else:
        data = arr.tobytes()
    digest = hashlib.blake2b(data + str(arr.dtype).encode() + str(arr.shape).encode(), digest_size=16).hexdigest()
    values = None
    if arr.size <= SMALL:
        flat = arr.reshape(-1)
        if arr.dtype.kind in "OS":
            values = tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat.tolist())
        elif arr.dtype.kind in "biuf" or arr.dtype.kind == "c":
            values = tuple(flat.tolist())
        else:  # bfloat16, float8 (ml_dtypes)
            values = tuple(flat.astype(np.float64).tolist())
    return TensorValue(dtype=str(arr.dtype), shape=tuple(int(d) for d in arr.shape), digest=digest, values=values)


def proto_array(tensor: Any, base_dir: str) -> Any:
    onnx = _onnx()
    from onnx import numpy_helper

    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        return numpy_helper.to_array(tensor, base_dir=base_dir)
    return numpy_helper.to_array(tensor)


def attribute_value(attr: Any, base_dir: str = "") -> Any:
    """A comparable Python value for an AttributeProto."""
    onnx = _onnx()
    A = onnx.AttributeProto
    t = attr.type
    if t == A.INT:
        return int(attr.i)
    if t == A.FLOAT:
        return float(attr.f)
    if t == A.STRING:
        return _text(attr.s)
    if t == A.INTS:
        return tuple(int(v) for v in attr.ints)
    if t == A.FLOATS:
        return tuple(float(v) for v in attr.floats)
    if t == A.STRINGS:
        return tuple(_text(v) for v in attr.strings)
    if t == A.TENSOR:
        return tensor_value(proto_array(attr.t, base_dir))
    if t == A.TENSORS:
        return tuple(tensor_value(proto_array(v, base_dir)) for v in attr.tensors)
    if t == A.GRAPH:
        return graph_value(attr.g)
    if t == A.GRAPHS:
        return tuple(graph_value(g) for g in attr.graphs)
    if t == A.SPARSE_TENSOR:
        return _digest_value("sparse", attr.sparse_tensor.SerializeToString(deterministic=True))
    if t == A.TYPE_PROTO:
        return type_text(attr.tp)
    if t == A.TYPE_PROTOS:
        return tuple(type_text(v) for v in attr.type_protos)
    if attr.ref_attr_name:
        return f"@{attr.ref_attr_name}"
    return _digest_value("attribute", attr.SerializeToString(deterministic=True))


def _digest_value(kind: str, data: bytes) -> str:
    return f"<{kind} {hashlib.blake2b(data, digest_size=8).hexdigest()}>"


def graph_value(g: Any) -> GraphValue:
    data = g.SerializeToString(deterministic=True)
    return GraphValue(name=g.name, nodes=len(g.node), digest=hashlib.blake2b(data, digest_size=16).hexdigest())


def _text(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return repr(b)


def constant_node_value(node: Any, base_dir: str) -> TensorValue | None:
    """The value of a ``Constant`` node, or None for a form this does not read."""
    np = require("numpy", purpose="diffing ONNX models")
    for attr in node.attribute:
        v = attribute_value(attr, base_dir)
        if attr.name == "value" and isinstance(v, TensorValue):
            return v
        if attr.name == "value_int":
            return tensor_value(np.array(v, dtype=np.int64))
        if attr.name == "value_ints":
            return tensor_value(np.array(v, dtype=np.int64))
        if attr.name == "value_float":
            return tensor_value(np.array(v, dtype=np.float32))
        if attr.name == "value_floats":
            return tensor_value(np.array(v, dtype=np.float32))
        if attr.name == "value_string":
            return tensor_value(np.array([v], dtype=object).reshape(()))
        if attr.name == "value_strings":
            return tensor_value(np.array(list(v), dtype=object))
    return None


def type_text(tp: Any) -> str:
    """A readable type: ``float32[N,3,224,224]``, ``seq(float32[?])``, ``map(int64,float32)``."""
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        return dtype_name(tp.tensor_type.elem_type) + shape_text(shape_of(tp))
    if which == "sequence_type":
        return f"seq({type_text(tp.sequence_type.elem_type)})"
    if which == "map_type":
        return f"map({dtype_name(tp.map_type.key_type)},{type_text(tp.map_type.value_type)})"
    if which == "optional_type":
        return f"optional({type_text(tp.optional_type.elem_type)})"
    if which == "sparse_tensor_type":
        return "sparse " + dtype_name(tp.sparse_tensor_type.elem_type)
    return "?"


def shape_of(tp: Any) -> tuple[Any, ...] | None:
    """Dimensions (int, a symbolic name, or None) of a tensor type; None when the rank is unknown."""
    if tp.WhichOneof("value") != "tensor_type" or not tp.tensor_type.HasField("shape"):
        return None
    dims: list[Any] = []
    for d in tp.tensor_type.shape.dim:
        kind = d.WhichOneof("value")
        dims.append(int(d.dim_value) if kind == "dim_value" else (d.dim_param if kind == "dim_param" else None))
    return tuple(dims)


def shape_text(shape: tuple[Any, ...] | None) -> str:
    if shape is None:
        return ""
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def elem_type_of(tp: Any) -> str:
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        return dtype_name(tp.tensor_type.elem_type)
    return type_text(tp)


class Schemas:
    """Operator schemas of one model's opsets: attribute defaults and input names."""

    def __init__(self, model: Any) -> None:
        self.opsets = {(o.domain or ""): int(o.version) for o in model.opset_import}
        self._cache: dict[tuple[str, str], Any] = {}

    def schema(self, op_type: str, domain: str) -> Any | None:
        key = (op_type, domain or "")
        if key not in self._cache:
            onnx = _onnx()
            dom = "" if domain in ("", "ai.onnx") else domain
            version = self.opsets.get(dom, self.opsets.get("ai.onnx", 1))
            try:
                self._cache[key] = onnx.defs.get_schema(op_type, version, dom)
            except Exception:
                self._cache[key] = None
        return self._cache[key]

    def defaults(self, op_type: str, domain: str) -> dict[str, Any]:
        s = self.schema(op_type, domain)
        if s is None:
            return {}
        out = {}
        for name, attr in s.attributes.items():
            if attr.default_value.type:
                out[name] = attribute_value(attr.default_value)
        return out

    def input_name(self, op_type: str, domain: str, position: int) -> str:
        s = self.schema(op_type, domain)
        if s is None or not s.inputs:
            return f"input {position}"
        formal = list(s.inputs)
        if position < len(formal) - 1 or (position == len(formal) - 1 and
                                          "Variadic" not in str(formal[-1].option)):
            return formal[position].name
        last = formal[-1]
        if "Variadic" in str(last.option):
            return f"{last.name}[{position - len(formal) + 1}]"
        return f"input {position}"
