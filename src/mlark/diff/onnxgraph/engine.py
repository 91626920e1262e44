"""``diff_onnx``: compare two ONNX models (docs/design/diff.md, "ONNX")."""

from __future__ import annotations

import hashlib
from typing import Any

from mlark.diff.onnxgraph.graph import Graph, Node, Source, build, effective_attributes
from mlark.diff.onnxgraph.load import load
from mlark.diff.onnxgraph.match import match_nodes
from mlark.diff.onnxgraph.result import (
    AttributeChange,
    InputChange,
    IOChange,
    NodeChange,
    NodeRef,
    OnnxDiff,
)
from mlark.diff.onnxgraph.values import (
    dtype_name,
    elem_type_of,
    proto_array,
    shape_of,
    type_text,
)
from mlark.diff.tensors.compare import compare_maps
from mlark.diff.tensors.result import ValueChange, compare_values
from mlark.diff.tensors.source import TensorEntry, array_entry


def diff_onnx(a: Any, b: Any) -> OnnxDiff:
    """Compare two ONNX models (paths to ``.onnx`` files, folders holding one, or ``onnx.ModelProto``)."""
    la, lb = load(a), load(b)
    ga, gb = build(la.model, la.base_dir), build(lb.model, lb.base_dir)
    pairs, how = match_nodes(ga, gb)
    changed, unchanged = [], 0
    for ia, ib in sorted(pairs.items()):
        change = _compare_nodes(ga, gb, ga.nodes[ia], gb.nodes[ib], how[ia], pairs)
        if change is None:
            unchanged += 1
        else:
            changed.append(change)
    taken_b = set(pairs.values())
    notes = []
    subgraphs = [n.label for g in (ga, gb) for n in g.nodes if any(at.HasField("g") or len(at.graphs)
                                                                   for at in n.proto.attribute)]
    if subgraphs:
        notes.append("subgraphs (If/Loop/Scan bodies) are compared as a whole, by digest")
    return OnnxDiff(
        a=la.label, b=lb.label,
        model=_model_changes(la.model, lb.model),
        inputs=_io_changes(list(ga.graph_inputs.values()), list(gb.graph_inputs.values())),
        outputs=_io_changes(list(la.model.graph.output), list(lb.model.graph.output)),
        nodes_added=tuple(_ref(n) for n in gb.nodes if n.index not in taken_b),
        nodes_removed=tuple(_ref(n) for n in ga.nodes if n.index not in pairs),
        nodes_changed=tuple(changed),
        nodes_unchanged=unchanged,
        nodes_a=len(ga.nodes), nodes_b=len(gb.nodes),
        initializers=tuple(compare_maps(_initializer_entries(ga), _initializer_entries(gb))),
        notes=tuple(notes),
    )


def _ref(n: Node) -> NodeRef:
    return NodeRef(n.name, n.op_type, n.domain, n.index, tuple(n.inputs), tuple(n.outputs))


def _compare_nodes(ga: Graph, gb: Graph, na: Node, nb: Node, how: str, pairs: dict[int, int]) -> NodeChange | None:
    attrs_a, attrs_b = effective_attributes(ga, na), effective_attributes(gb, nb)
    attributes = tuple(
        AttributeChange(name, attrs_a.get(name), attrs_b.get(name))
        for name in sorted(set(attrs_a) | set(attrs_b))
        if attrs_a.get(name) != attrs_b.get(name)
    )
    inputs = []
    assert ga.schemas is not None
    for pos in range(max(len(na.inputs), len(nb.inputs))):
        sa = ga.source(na.inputs[pos]) if pos < len(na.inputs) else Source("absent")
        sb = gb.source(nb.inputs[pos]) if pos < len(nb.inputs) else Source("absent")
        change = _compare_inputs(sa, sb, pairs, ga, gb)
        if change is not None:
            kind, va, vb = change
            inputs.append(InputChange(pos, ga.schemas.input_name(na.op_type, na.domain, pos), kind, va, vb))
    outputs = (len(na.outputs), len(nb.outputs)) if len(na.outputs) != len(nb.outputs) else None
    if not attributes and not inputs and outputs is None:
        return None  # a node renamed by an exporter is not a change
    return NodeChange(_ref(na), _ref(nb), how, attributes, tuple(inputs), outputs)


def _describe(s: Source, g: Graph) -> Any:
    if s.kind == "absent":
        return None
    if s.kind in ("constant", "initializer"):
        if s.value is not None:
            return s.value
        return f"{s.kind} {s.name} ({s.dtype}{list(s.shape)})"
    if s.kind == "node":
        node = g.nodes[s.producer]
        return f"{node.label}:{s.output}" if len(node.outputs) > 1 else f"{node.label}"
    if s.kind == "graph_input":
        return f"graph input {s.name}"
    return s.name


def _compare_inputs(sa: Source, sb: Source, pairs: dict[int, int], ga: Graph, gb: Graph
                    ) -> tuple[str, Any, Any] | None:
    if sa.kind == "absent" and sb.kind == "absent":
        return None
    if sa.kind == "absent":
        return "added", None, _describe(sb, gb)
    if sb.kind == "absent":
        return "removed", _describe(sa, ga), None
    consts = ("constant", "initializer")
    if sa.kind in consts and sb.kind in consts:
        if sa.kind == sb.kind == "initializer" and sa.name == sb.name and (
                (_floating(sa.dtype) and _floating(sb.dtype)) or sa.value is None or sb.value is None):
            return None  # a weight (a bias, a kernel): its values are compared with the initializers
        va, vb = ga.value_of(sa), gb.value_of(sb)
        return None if va == vb else ("value", va, vb)
    if sa.kind == "node" and sb.kind == "node":
        if pairs.get(sa.producer) == sb.producer and sa.output == sb.output:
            return None
        return "source", _describe(sa, ga), _describe(sb, gb)
    if sa.kind == sb.kind and sa.name == sb.name:
        return None
    return "source", _describe(sa, ga), _describe(sb, gb)


def _floating(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat", "complex"))


def _io_changes(va: list[Any], vb: list[Any]) -> tuple[IOChange, ...]:
    def info(v: Any) -> tuple[str, tuple[Any, ...] | None]:
        return elem_type_of(v.type), shape_of(v.type)

    names_b = {v.name for v in vb}
    names_a = {v.name for v in va}
    by_b = {v.name: v for v in vb}
    out = []
    for v in va:
        if v.name in names_b:
            (ta, sa), (tb, sb) = info(v), info(by_b[v.name])
            if (ta, sa) != (tb, sb) or type_text(v.type) != type_text(by_b[v.name].type):
                out.append(IOChange("changed", v.name, v.name, ta, tb, sa, sb))
    gone = [v for v in va if v.name not in names_b]
    new = [v for v in vb if v.name not in names_a]
    for x, y in zip(gone, new):  # left over on both sides, in order: a rename
        (ta, sa), (tb, sb) = info(x), info(y)
        out.append(IOChange("renamed", x.name, y.name, ta, tb, sa, sb))
    for x in gone[len(new):]:
        ta, sa = info(x)
        out.append(IOChange("removed", x.name, None, ta, None, sa, None))
    for y in new[len(gone):]:
        tb, sb = info(y)
        out.append(IOChange("added", None, y.name, None, tb, None, sb))
    return tuple(out)


def _model_fields(m: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ir_version": int(m.ir_version),
        "producer": f"{m.producer_name} {m.producer_version}".strip(),
        "graph_name": m.graph.name,
    }
    for o in m.opset_import:
        fields[f"opset.{o.domain or 'ai.onnx'}"] = int(o.version)
    for p in m.metadata_props:
        fields[f"metadata.{p.key}"] = p.value
    for f in m.functions:
        digest = hashlib.blake2b(f.SerializeToString(deterministic=True), digest_size=8).hexdigest()
        fields[f"function.{f.domain}.{f.name}"] = f"{len(f.node)} nodes <{digest}>"
    return fields


def _model_changes(a: Any, b: Any) -> tuple[ValueChange, ...]:
    return compare_values(_model_fields(a), _model_fields(b))


def _initializer_entries(g: Graph) -> dict[str, TensorEntry]:
    return {name: _lazy_entry(name, t, g.base_dir) for name, t in g.initializers.items()}


def _lazy_entry(name: str, tensor: Any, base_dir: str) -> TensorEntry:
    """An initializer whose bytes are read on first use and dropped when the comparison closes it."""
    cache: dict[str, TensorEntry] = {}

    def entry() -> TensorEntry:
        if "e" not in cache:
            cache["e"] = array_entry(name, proto_array(tensor, base_dir))
        return cache["e"]

    def raw(start: int, stop: int) -> Any:
        return entry().read_raw(start, stop)

    def flt(start: int, stop: int) -> Any:
        reader = entry().read_float
        return reader(start, stop) if reader else None

    return TensorEntry(name=name, dtype=dtype_name(tensor.data_type), shape=tuple(int(d) for d in tensor.dims),
                       read_raw=raw, read_float=flt, close=cache.clear)
