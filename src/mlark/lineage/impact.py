"""Impact analysis: everything made from a version (or a run), down to the registered model versions,
and the stages and aliases that point at them now, so "found a bug in churn-data:v3" becomes
"models:/churn@production depends on it, through these runs".

Pure: built from a downstream :class:`LineageGraph` and the breadth-first "reached through" links of
the walk (for shortest paths). No database access.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Mapping

from mlark.core.gcpause import gc_paused
from mlark.lineage.graph import PRODUCTION, REGISTERED_MODEL_VERSION, RUN, VERSION, LineageGraph, Node

SCHEMA = "mlark.impact/1"
STAGE = "stage"
ALIAS = "alias"
VERSION_ALIAS = "version alias"
_STAGE_RANK = {"production": 0, "staging": 1, "development": 3, "archived": 4}
TEXT_LIST_LIMIT = 50


@dataclass(frozen=True, slots=True)
class AliasHit:
    """A stage or alias that points, right now, at something made from the source.

    ``ref`` is the reference that resolves through it (``models:/churn@production``,
    ``models:/churn@champion``, ``churn-rf@best``); ``kind`` is ``stage``, ``alias`` (of a
    registered model) or ``version alias`` (of an artifact); ``target`` the affected node.
    """

    ref: str
    kind: str
    name: str
    target: Node

    @property
    def production(self) -> bool:
        return self.name == PRODUCTION

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "kind": self.kind, "name": self.name, "target": self.target.ref,
                "target_id": self.target.id, "production": self.production}


class ImpactReport:
    """What depends on ``source``, directly or transitively.

    ``runs``, ``versions`` and ``model_versions`` (registered model versions) are every such node
    (the source excluded), nearest first; ``aliases`` every stage and alias pointing at one of them
    or at the source (production first); ``graph`` the downstream graph itself. Computed when first
    read: ``report.production`` on a 100,000-node graph looks only at the nodes that aliases and
    stages point at.
    """

    def __init__(self, graph: LineageGraph, via: Callable[[str], str | None]) -> None:
        self.graph = graph
        self.source: Node = graph.root
        self._via = via

    def __repr__(self) -> str:
        return (f"ImpactReport(source={self.source.ref!r}, nodes={len(self.graph) - 1}, "
                f"production={[h.ref for h in self.production]!r})")

    def _others(self, kind: str) -> tuple[Node, ...]:
        return tuple(n for n in self.graph.of_kind(kind) if n.id != self.source.id)

    @cached_property
    def runs(self) -> tuple[Node, ...]:
        return self._others(RUN)

    @cached_property
    def versions(self) -> tuple[Node, ...]:
        return self._others(VERSION)

    @cached_property
    def model_versions(self) -> tuple[Node, ...]:
        """Registered model versions, those in production first."""
        return tuple(sorted(self._others(REGISTERED_MODEL_VERSION), key=_model_version_order))

    @cached_property
    def aliases(self) -> tuple[AliasHit, ...]:
        hits: list[AliasHit] = []
        holders = self.graph.with_aliases()
        if self.source.id not in {n.id for n in holders}:
            holders.insert(0, self.source)
        for n in holders:
            if n.missing:
                continue
            if n.kind == REGISTERED_MODEL_VERSION:
                if n.stage:
                    hits.append(AliasHit(f"models:/{n.name}@{n.stage}", STAGE, n.stage, n))
                hits.extend(AliasHit(f"models:/{n.name}@{a}", ALIAS, a, n) for a in n.aliases)
            elif n.kind == VERSION:
                hits.extend(AliasHit(f"{n.name}@{a}", VERSION_ALIAS, a, n) for a in n.aliases)
        hits.sort(key=_hit_order)
        return tuple(hits)

    @property
    def production(self) -> list[AliasHit]:
        """The stages and aliases named ``production`` that point at something affected."""
        return [hit for hit in self.aliases if hit.production]

    @property
    def registered_models(self) -> list[str]:
        """Names of the registered models with an affected version."""
        return sorted({n.name for n in self.model_versions if n.name})

    @property
    def affected(self) -> bool:
        return len(self.graph) > 1

    def path_to(self, node: Node | str) -> list[Node]:
        """A shortest chain of nodes from the source to ``node`` (both included)."""
        target = self.graph.node(node) if isinstance(node, str) else node
        chain = [target]
        current = self._via(target.id)
        while current is not None:
            chain.append(self.graph.node(current))
            current = self._via(current)
        return chain[::-1]

    def to_dict(self) -> dict[str, Any]:
        with gc_paused():
            return self._to_dict()

    def _to_dict(self) -> dict[str, Any]:
        def with_path(n: Node) -> dict[str, Any]:
            return {**n.to_dict(), "path": [p.ref for p in self.path_to(n)], "in_production": n.in_production}

        return {
            "schema": SCHEMA,
            "source": self.source.to_dict(),
            "counts": {"runs": len(self.runs), "versions": len(self.versions),
                       "registered_model_versions": len(self.model_versions)},
            "production": [hit.to_dict() for hit in self.production],
            "registered_models": self.registered_models,
            "registered_model_versions": [with_path(n) for n in self.model_versions],
            "aliases": [hit.to_dict() for hit in self.aliases],
            "runs": [n.to_dict() for n in self.runs],
            "versions": [n.to_dict() for n in self.versions],
            "edges": [e.to_dict() for e in self.graph.edges],
        }

    def to_text(self, *, limit: int = TEXT_LIST_LIMIT) -> str:
        from mlark.lineage.export import impact_text

        return impact_text(self, limit=limit)


def build(graph: LineageGraph, via: Mapping[str, str] | Callable[[str], str | None]) -> ImpactReport:
    """The report for a downstream ``graph`` from its root; ``via`` gives, for a node id, the node it was
    first reached from (a mapping, or a function returning None for the root)."""
    return ImpactReport(graph, via.get if isinstance(via, Mapping) else via)


def _model_version_order(n: Node) -> tuple[Any, ...]:
    return (not n.in_production, _STAGE_RANK.get(n.stage or "", 2), n.name or "", n.number or 0)


def _hit_order(hit: AliasHit) -> tuple[Any, ...]:
    if hit.production:
        rank = 0
    elif hit.kind == STAGE:
        rank = _STAGE_RANK.get(hit.name, 2) + (1 if hit.name != "staging" else 0)
    elif hit.kind == ALIAS:
        rank = 2
    else:
        rank = 3 if hit.name != "latest" else 4
    return (rank, hit.target.distance, hit.ref)
