"""The value a lineage query returns: nodes (versions, runs, registered model versions), edges, and
a topological order. Pure data: no database, no I/O (exports are in :mod:`mlark.lineage.export`).

Edges point from what something was made from to what was made: ``used`` version -> run,
``produced`` run -> version, ``derived_from`` parent version -> derived version,
``registered_as`` version -> registered model version. So a topological order (every edge's
``source`` before its ``target``) lists a dependency before what depends on it, whichever way
the graph was walked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from operator import itemgetter
from datetime import datetime
from functools import partial
from typing import Any, Iterator, NamedTuple, Protocol, Sequence

from mlark.errors import NotFound
from mlark.core.gcpause import gc_paused

VERSION = "version"
RUN = "run"
REGISTERED_MODEL_VERSION = "registered_model_version"
NODE_KINDS = (VERSION, RUN, REGISTERED_MODEL_VERSION)

USED = "used"
PRODUCED = "produced"
REGISTERED_AS = "registered_as"
DERIVED_FROM = "derived_from"
EDGE_KINDS = (USED, PRODUCED, REGISTERED_AS, DERIVED_FROM)

SCHEMA = "mlark.lineage/1"
_SOURCE = itemgetter(0)  # Edge.source
_TARGET = itemgetter(1)  # Edge.target
PRODUCTION = "production"


class Node(NamedTuple):
    """A version, a run or a registered model version, as the lineage graph shows it.

    ``ref`` is a reference mlark accepts (``churn-data:v3``, ``run:<id>``, ``models:/churn/2``);
    ``label`` is what people read (``churn-data:v3``, ``run rf-depth-8 (01a2b3c4)``,
    ``models:/churn/2 [production, champion]``); ``distance`` counts edges from the node the
    walk started at; ``more`` is True when a depth bound stopped the walk here although the
    node has further neighbours. The other fields are set where they apply: versions have
    ``name`` (artifact), ``number``, ``type``, ``aliases``, ``removed``; runs ``name``,
    ``project``, ``status``; registered model versions ``name`` (registered model), ``number``,
    ``stage``, ``aliases`` and ``version`` (the artifact version registered). ``missing`` marks
    an id the edges name but no record has.

    An immutable named tuple: graphs of 100,000 nodes are built in C, not one ``__init__`` at a time.
    """

    id: str
    kind: str
    ref: str
    label: str
    distance: int = 0
    more: bool = False
    name: str | None = None
    number: int | None = None
    type: str | None = None
    project: str | None = None
    status: str | None = None
    stage: str | None = None
    aliases: tuple[str, ...] = ()
    version: str | None = None
    removed: bool = False
    missing: bool = False

    @property
    def in_production(self) -> bool:
        """A registered model version in the production stage or behind an alias named production."""
        return self.kind == REGISTERED_MODEL_VERSION and (self.stage == PRODUCTION or PRODUCTION in self.aliases)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "ref": self.ref, "label": self.label,
                               "distance": self.distance}
        if self.more:
            out["more"] = True
        if self.missing:
            out["missing"] = True
            return out
        if self.kind == VERSION:
            out.update(artifact=self.name, number=self.number, type=self.type, aliases=list(self.aliases),
                       removed=self.removed)
        elif self.kind == RUN:
            out.update(name=self.name, project=self.project, status=self.status)
        elif self.kind == REGISTERED_MODEL_VERSION:
            out.update(model=self.name, number=self.number, stage=self.stage, aliases=list(self.aliases),
                       version=self.version)
        return out


class Edge(NamedTuple):
    """``source`` was used to make ``target`` (ids); ``kind`` is used, produced, registered_as or derived_from."""

    source: str
    target: str
    kind: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "target": self.target, "kind": self.kind}


_new_edge = partial(tuple.__new__, Edge)


@dataclass(frozen=True, slots=True)
class Derivation:
    """A ``derived_from`` edge: version ``child`` was made from version ``parent`` (refs), and why.

    ``created`` is False when the same derivation was already recorded (its stored message,
    author and time are returned then).
    """

    child: str
    parent: str
    child_id: str
    parent_id: str
    message: str
    author: str
    at: datetime
    created: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"child": self.child, "parent": self.parent, "child_id": self.child_id, "parent_id": self.parent_id,
                "message": self.message, "author": self.author, "at": self.at.isoformat(), "created": self.created}


class NodeSource(Protocol):
    """Where a lazily built :class:`LineageGraph` gets its nodes: ``len``, and by position in graph order
    the id, the kind, one node, all of them, and which positions have a kind or hold aliases."""

    ids: Sequence[str]
    more: bool

    def __len__(self) -> int: ...

    def kind(self, k: int) -> str: ...

    def node(self, k: int) -> Node: ...

    def all(self) -> list[Node]: ...

    def positions_of(self, kind: str) -> list[int]: ...

    def positions_with_aliases(self) -> list[int]: ...


class LineageGraph:
    """Part of the lineage graph, walked from ``root`` (``up``: what it was made from; ``down``: what was
    made from it), at most ``depth`` edges away (None: no bound).

    ``nodes`` are in breadth-first order from the root (the root first); ``edges`` join them.
    ``truncated`` says the depth bound left nodes out (those at the bound have ``more``).

    A graph returned by a query holds everything it needs (read in one transaction) but builds its
    :class:`Node` and :class:`Edge` values when they are first asked for: ``len(graph)``,
    ``graph.model_versions`` or ``graph.node(id)`` on a 100,000-node graph build only what they
    return. Graphs compare equal when their direction, depth, nodes and edges are equal.
    """

    def __init__(self, root: Node | None = None, direction: str = "up", depth: int | None = None,
                 nodes: Sequence[Node] | None = None, edges: Sequence[Edge] | None = None, *,
                 source: NodeSource | None = None,
                 edge_ends: tuple[Sequence[int], Sequence[int], Sequence[str]] | None = None) -> None:
        if (nodes is None) == (source is None):
            raise ValueError("LineageGraph takes nodes or a source of nodes")
        if (edges is None) == (edge_ends is None):
            raise ValueError("LineageGraph takes edges or their ends")
        self.direction = direction
        self.depth = depth
        self._nodes: tuple[Node, ...] | None = None if nodes is None else tuple(nodes)
        self._source = source
        self._edges: tuple[Edge, ...] | None = None if edges is None else tuple(edges)
        self._edge_ends = edge_ends
        self._built: dict[int, Node] = {}
        self._cache: dict[str, Any] = {}
        self.root: Node = root if root is not None else self._get(0)

    # ------------------------------------------------------------------ building values on demand

    @property
    def nodes(self) -> tuple[Node, ...]:
        if self._nodes is None:
            assert self._source is not None
            with gc_paused():
                self._nodes = tuple(self._source.all())
        return self._nodes

    @property
    def edges(self) -> tuple[Edge, ...]:
        if self._edges is None:
            assert self._edge_ends is not None
            sources, targets, kinds = self._edge_ends
            ids = self._ids().__getitem__
            with gc_paused():
                self._edges = tuple(map(_new_edge, zip(map(ids, sources), map(ids, targets), kinds)))
        return self._edges

    def _ids(self) -> Sequence[str]:
        if self._source is not None:
            return self._source.ids
        return [n.id for n in self.nodes]

    def _get(self, k: int) -> Node:
        if self._nodes is not None:
            return self._nodes[k]
        found = self._built.get(k)
        if found is None:
            assert self._source is not None
            found = self._built[k] = self._source.node(k)
        return found

    @property
    def _by_id(self) -> dict[str, int]:
        found = self._cache.get("by_id")
        if found is None:
            ids = self._ids()
            found = self._cache["by_id"] = dict(zip(ids, range(len(ids))))
        return found  # type: ignore[no-any-return]

    def _ends(self) -> tuple[Sequence[int], Sequence[int]]:
        if self._edge_ends is not None:
            return self._edge_ends[0], self._edge_ends[1]
        found = self._cache.get("ends")
        if found is None:
            position = self._by_id.__getitem__
            found = self._cache["ends"] = (list(map(position, map(_SOURCE, self.edges))),
                                           list(map(position, map(_TARGET, self.edges))))
        return found  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ looking things up

    def __len__(self) -> int:
        return len(self._source) if self._nodes is None and self._source is not None else len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LineageGraph):
            return NotImplemented
        return (self.direction, self.depth, self.nodes, self.edges) == (other.direction, other.depth, other.nodes,
                                                                        other.edges)

    __hash__ = None  # type: ignore[assignment]

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Node):
            return item.id in self._by_id
        return isinstance(item, str) and self._find(item) is not None

    @property
    def truncated(self) -> bool:
        if self._nodes is None and self._source is not None:
            return self._source.more
        return any(n.more for n in self.nodes)

    def _find(self, key: str) -> Node | None:
        i = self._by_id.get(key)
        if i is not None:
            return self._get(i)
        for n in self.nodes:
            if key in (n.ref, n.label):
                return n
        return None

    def node(self, key: str) -> Node:
        """The node with this id, ref (``churn-data:v3``, ``run:<id>``, ``models:/churn/2``) or label."""
        found = self._find(key)
        if found is None:
            raise NotFound(f"{key!r} is not in this lineage graph of {self.root.ref}", ref=key)
        return found

    def _position(self, node: Node | str) -> int:
        key = node.id if isinstance(node, Node) else self.node(node).id
        return self._by_id[key]

    def sources_of(self, node: Node | str) -> list[Node]:
        """The nodes with an edge into ``node`` (what it was directly made from)."""
        k = self._position(node)
        sources, targets = self._ends()
        return [self._get(s) for s, t in zip(sources, targets) if t == k]

    def targets_of(self, node: Node | str) -> list[Node]:
        """The nodes ``node`` has an edge into (what was directly made from it)."""
        k = self._position(node)
        sources, targets = self._ends()
        return [self._get(t) for s, t in zip(sources, targets) if s == k]

    def of_kind(self, kind: str) -> list[Node]:
        """The nodes of one kind (``version``, ``run``, ``registered_model_version``), in graph order."""
        if self._nodes is None and self._source is not None:
            return [self._get(k) for k in self._source.positions_of(kind)]
        return [n for n in self.nodes if n.kind == kind]

    def with_aliases(self) -> list[Node]:
        """The nodes some alias points at (versions), or that have a stage or aliases (registered versions)."""
        if self._nodes is None and self._source is not None:
            return [self._get(k) for k in self._source.positions_with_aliases()]
        return [n for n in self.nodes if n.aliases or n.stage]

    @property
    def versions(self) -> list[Node]:
        return self.of_kind(VERSION)

    @property
    def runs(self) -> list[Node]:
        return self.of_kind(RUN)

    @property
    def model_versions(self) -> list[Node]:
        """Registered model versions."""
        return self.of_kind(REGISTERED_MODEL_VERSION)

    # ------------------------------------------------------------------ order

    def topological(self) -> list[Node]:
        """Every node, each after everything it was made from (Kahn's algorithm; ties in node order)."""
        with gc_paused():
            return self._topological()

    def _topological(self) -> list[Node]:
        n = len(self)
        indegree = [0] * n
        following: list[list[int]] = [[] for _ in range(n)]
        for s, t in zip(*self._ends()):
            following[s].append(t)
            indegree[t] += 1
        order = [i for i in range(n) if indegree[i] == 0]
        k = 0
        while k < len(order):  # ``order`` is also the queue: nodes are appended when their last input is placed
            for t in following[order[k]]:
                indegree[t] -= 1
                if not indegree[t]:
                    order.append(t)
            k += 1
        if len(order) != n:  # cannot happen: every insertion path refuses cycles
            raise ValueError("the lineage graph has a cycle")
        return list(map(self.nodes.__getitem__, order))

    # ------------------------------------------------------------------ export

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``schema``, ``root`` (id), ``direction``, ``depth``, ``truncated``, ``nodes``, ``edges``."""
        with gc_paused():
            return self._to_dict()

    def _to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "root": self.root.id,
            "direction": self.direction,
            "depth": self.depth,
            "truncated": self.truncated,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_mermaid(self, *, fenced: bool = False) -> str:
        """A Mermaid flowchart (``fenced=True``: inside a ```mermaid block, for Markdown files)."""
        from mlark.lineage.export import to_mermaid

        return to_mermaid(self, fenced=fenced)

    def to_dot(self) -> str:
        """Graphviz DOT source."""
        from mlark.lineage.export import to_dot

        return to_dot(self)

    def to_text(self) -> str:
        """An indented tree from the root (nodes met again are shown once, then referred to)."""
        from mlark.lineage.export import to_text

        return to_text(self)

    def render(self, format: str = "svg") -> bytes:
        """SVG or PNG bytes drawn by Graphviz ``dot`` (which must be installed)."""
        from mlark.lineage.export import render

        return render(self.to_dot(), format)

    def _repr_markdown_(self) -> str:  # notebooks render Mermaid blocks
        return self.to_mermaid(fenced=True)

    def __repr__(self) -> str:
        edges = len(self._edge_ends[0]) if self._edges is None and self._edge_ends is not None else len(self.edges)
        return (f"LineageGraph(root={self.root.ref!r}, direction={self.direction!r}, depth={self.depth!r}, "
                f"nodes={len(self)}, edges={edges})")
