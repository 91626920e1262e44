"""The typed result of an ONNX graph diff (:class:`OnnxDiff`) and its parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mlark.diff.jsonable import jsonable
from mlark.diff.onnxgraph.values import GraphValue, TensorValue
from mlark.diff.result import DiffResult
from mlark.diff.tensors.result import TensorChange, ValueChange, count_statuses


def value_json(v: Any) -> Any:
    if isinstance(v, (TensorValue, GraphValue)):
        return v.to_json()
    if isinstance(v, tuple):
        return [value_json(x) for x in v]
    return jsonable(v)


def value_text(v: Any) -> str:
    if v is None:
        return "(none)"
    if isinstance(v, tuple):
        return "[" + ",".join(value_text(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


@dataclass(frozen=True)
class NodeRef:
    name: str
    op_type: str
    domain: str
    index: int  # position in topological order (Constant nodes left out)
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.name or f"{self.op_type}#{self.index}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op_type": self.op_type, "domain": self.domain, "index": self.index,
                "inputs": list(self.inputs), "outputs": list(self.outputs)}


@dataclass(frozen=True)
class AttributeChange:
    """An attribute whose effective value (schema default filled in) differs; None = absent."""

    name: str
    a: Any
    b: Any

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "a": value_json(self.a), "b": value_json(self.b)}


@dataclass(frozen=True)
class InputChange:
    """A node input that differs: a constant's value (``Slice`` starts, ``Split`` sizes), where the
    input comes from (``rewired``), or an input present on one side only."""

    position: int
    name: str  # the operator's name for the input (``starts``), from its schema
    kind: str  # value | source | added | removed
    a: Any  # TensorValue for constants, otherwise a description string; None when absent
    b: Any

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "name": self.name, "kind": self.kind,
                "a": value_json(self.a), "b": value_json(self.b)}


@dataclass(frozen=True)
class NodeChange:
    a: NodeRef
    b: NodeRef
    matched_by: str  # name | position
    attributes: tuple[AttributeChange, ...] = ()
    inputs: tuple[InputChange, ...] = ()
    outputs: tuple[int, int] | None = None  # (count in a, count in b) when they differ

    def attribute(self, name: str) -> AttributeChange:
        for c in self.attributes:
            if c.name == name:
                return c
        raise KeyError(name)

    def input(self, name: str) -> InputChange:
        for c in self.inputs:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.to_dict(), "b": self.b.to_dict(), "matched_by": self.matched_by,
                "attributes": [c.to_dict() for c in self.attributes], "inputs": [c.to_dict() for c in self.inputs],
                "outputs": list(self.outputs) if self.outputs else None}


@dataclass(frozen=True)
class IOChange:
    """A graph input or output: ``added``, ``removed``, ``changed`` (type or shape) or ``renamed``."""

    status: str
    name_a: str | None
    name_b: str | None
    type_a: str | None
    type_b: str | None
    shape_a: tuple[Any, ...] | None
    shape_b: tuple[Any, ...] | None

    @property
    def name(self) -> str:
        return self.name_b or self.name_a or ""

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"status": self.status, "name_a": self.name_a, "name_b": self.name_b,
                         "type_a": self.type_a, "type_b": self.type_b,
                         "shape_a": list(self.shape_a) if self.shape_a is not None else None,
                         "shape_b": list(self.shape_b) if self.shape_b is not None else None})


@dataclass(frozen=True)
class OnnxDiff(DiffResult):
    """Two ONNX models compared: model fields, graph inputs and outputs, nodes, initializers."""

    kind: ClassVar[str] = "onnx"

    a: str
    b: str
    model: tuple[ValueChange, ...]
    inputs: tuple[IOChange, ...]
    outputs: tuple[IOChange, ...]
    nodes_added: tuple[NodeRef, ...]
    nodes_removed: tuple[NodeRef, ...]
    nodes_changed: tuple[NodeChange, ...]
    nodes_unchanged: int
    nodes_a: int
    nodes_b: int
    initializers: tuple[TensorChange, ...]
    notes: tuple[str, ...] = ()

    @property
    def initializer_changes(self) -> tuple[TensorChange, ...]:
        return tuple(t for t in self.initializers if t.status != "unchanged")

    @property
    def has_changes(self) -> bool:
        return bool(self.model or self.inputs or self.outputs or self.nodes_added or self.nodes_removed
                    or self.nodes_changed or self.initializer_changes)

    def changed_nodes(self, op_type: str | None = None) -> tuple[NodeChange, ...]:
        return tuple(c for c in self.nodes_changed if op_type is None or c.a.op_type == op_type)

    def summary(self) -> str:
        c = count_statuses(self.initializers)
        init = ", ".join(f"{c[s]} {s}" for s in ("added", "removed", "reshaped", "retyped", "changed") if c[s])
        parts = [f"nodes +{len(self.nodes_added)} -{len(self.nodes_removed)} ~{len(self.nodes_changed)}"]
        if self.inputs or self.outputs:
            parts.append(f"{len(self.inputs)} input / {len(self.outputs)} output changes")
        if init:
            parts.append("initializers " + init)
        if self.model:
            parts.append(", ".join(v.name for v in self.model) + " changed")
        return f"onnx {self.a} -> {self.b}: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "has_changes": self.has_changes, "a": self.a, "b": self.b,
            "model": [v.to_dict() for v in self.model],
            "inputs": [c.to_dict() for c in self.inputs],
            "outputs": [c.to_dict() for c in self.outputs],
            "nodes": {
                "a": self.nodes_a, "b": self.nodes_b, "unchanged": self.nodes_unchanged,
                "added": [n.to_dict() for n in self.nodes_added],
                "removed": [n.to_dict() for n in self.nodes_removed],
                "changed": [c.to_dict() for c in self.nodes_changed],
            },
            "initializers": {
                "counts": count_statuses(self.initializers),
                "changes": [t.to_dict() for t in self.initializer_changes],
                "unchanged": [t.name for t in self.initializers if t.status == "unchanged"],
            },
            "notes": list(self.notes),
        }

    def render(self, width: int | None = None) -> str:
        from mlark.diff.onnxgraph.render import render_text

        return render_text(self, width)

    def to_markdown(self) -> str:
        from mlark.diff.onnxgraph.render import render_markdown

        return render_markdown(self)
