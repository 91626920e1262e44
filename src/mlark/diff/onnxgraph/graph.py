"""One ONNX graph made ready to compare: its operator nodes in topological order, where each node
input comes from, and its constants.

``Constant`` nodes are values, not operators: they are folded into the inputs of the nodes that
use them, like initializers (so a Slice's ``starts`` is the same thing whether it is an
initializer, a ``Constant`` node, or, before opset 10, an attribute)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from mlark.diff.onnxgraph.values import (
    SMALL,
    Schemas,
    TensorValue,
    attribute_value,
    constant_node_value,
    dtype_name,
    proto_array,
    tensor_value,
)


@dataclass
class Node:
    index: int  # position in topological order (Constant nodes left out)
    name: str
    op_type: str
    domain: str
    inputs: list[str]
    outputs: list[str]
    proto: Any

    @property
    def label(self) -> str:
        return self.name or f"{self.op_type}#{self.index}"


@dataclass(frozen=True)
class Source:
    """Where a node input comes from."""

    kind: str  # absent | constant | initializer | graph_input | node | unknown
    name: str = ""
    producer: int = -1  # node index, for kind == "node"
    output: int = 0
    value: TensorValue | None = None  # for constants (and initializers, when small)
    dtype: str = ""
    shape: tuple[int, ...] = ()


@dataclass
class Graph:
    model: Any
    base_dir: str
    nodes: list[Node] = field(default_factory=list)
    producer: dict[str, tuple[int, int]] = field(default_factory=dict)  # tensor -> (node index, output)
    constants: dict[str, TensorValue] = field(default_factory=dict)  # Constant node outputs
    initializers: dict[str, Any] = field(default_factory=dict)  # name -> TensorProto
    graph_inputs: dict[str, Any] = field(default_factory=dict)  # name -> ValueInfoProto (not initializers)
    schemas: Schemas | None = None
    _small: dict[str, TensorValue] = field(default_factory=dict)
    _large: dict[str, TensorValue] = field(default_factory=dict)

    def value_of(self, s: Source) -> TensorValue:
        """The value of a constant source; a large initializer is read (once) to get its digest."""
        if s.value is not None:
            return s.value
        if s.name not in self._large:
            self._large[s.name] = tensor_value(proto_array(self.initializers[s.name], self.base_dir))
        return self._large[s.name]

    def source(self, name: str) -> Source:
        if not name:
            return Source("absent")
        if name in self.constants:
            v = self.constants[name]
            return Source("constant", name, value=v, dtype=v.dtype, shape=v.shape)
        if name in self.initializers:
            t = self.initializers[name]
            shape = tuple(int(d) for d in t.dims)
            numel = 1
            for d in shape:
                numel *= d
            value = None
            if numel <= SMALL:
                if name not in self._small:
                    self._small[name] = tensor_value(proto_array(t, self.base_dir))
                value = self._small[name]
            return Source("initializer", name, value=value, dtype=dtype_name(t.data_type), shape=shape)
        if name in self.producer:
            idx, out = self.producer[name]
            return Source("node", name, producer=idx, output=out)
        if name in self.graph_inputs:
            return Source("graph_input", name)
        return Source("unknown", name)


def _is_constant(node: Any) -> bool:
    return node.op_type == "Constant" and node.domain in ("", "ai.onnx")


def build(model: Any, base_dir: str) -> Graph:
    g = model.graph
    graph = Graph(model=model, base_dir=base_dir, schemas=Schemas(model))
    graph.initializers = {t.name: t for t in g.initializer}
    graph.graph_inputs = {v.name: v for v in g.input if v.name not in graph.initializers}
    ops = []
    for node in g.node:
        if _is_constant(node) and len(node.output) == 1:
            value = constant_node_value(node, base_dir)
            if value is not None:
                graph.constants[node.output[0]] = value
                continue
        ops.append(node)
    for i, node in enumerate(_topological(ops)):
        graph.nodes.append(Node(index=i, name=node.name, op_type=node.op_type, domain=node.domain or "",
                                inputs=list(node.input), outputs=list(node.output), proto=node))
        for k, out in enumerate(node.output):
            if out:
                graph.producer[out] = (i, k)
    return graph


def _topological(nodes: list[Any]) -> list[Any]:
    """Kahn's algorithm, ties broken by position in the file (stable for graphs already sorted);
    a cycle (an invalid graph) keeps the remaining nodes in file order."""
    made: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for out in n.output:
            if out:
                made[out] = i
    deps: list[set[int]] = []
    users: list[list[int]] = [[] for _ in nodes]
    for i, n in enumerate(nodes):
        d = {made[x] for x in list(n.input) + _outer_inputs(n) if x in made and made[x] != i}
        deps.append(d)
        for j in d:
            users[j].append(i)
    waiting = [len(d) for d in deps]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, u)
    if len(order) < len(nodes):
        seen = set(order)
        order += [i for i in range(len(nodes)) if i not in seen]
    return [nodes[i] for i in order]


def _outer_inputs(node: Any) -> list[str]:
    """Names a node's subgraphs read from the enclosing graph (so If/Loop come after their producers)."""
    names: list[str] = []
    for attr in node.attribute:
        for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
            local = {t.name for t in sub.initializer} | {v.name for v in sub.input}
            for n in sub.node:
                local.update(n.output)
            for n in sub.node:
                names.extend(x for x in n.input if x and x not in local)
    return names


def effective_attributes(graph: Graph, node: Node) -> dict[str, Any]:
    """Attributes as the operator sees them: the schema's defaults, then the node's own."""
    assert graph.schemas is not None
    values = dict(graph.schemas.defaults(node.op_type, node.domain))
    for attr in node.proto.attribute:
        values[attr.name] = attribute_value(attr, graph.base_dir)
    return values
