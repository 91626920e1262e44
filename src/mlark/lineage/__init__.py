"""Lineage: the graph of versions and runs (which versions a run used, which it produced). Acyclic by construction.

Layer: beside ``tracking``, below ``ops``; imports ``meta`` and ``core`` only.

The package is also the Python API's entry point: ``mlark.lineage(ref, direction="up", depth=None)``
returns a :class:`~mlark.lineage.graph.LineageGraph`, and ``mlark.lineage.derive(child, parent,
message)`` records a ``derived_from`` edge. Both are adapters in :mod:`mlark.api_lineage`, looked
up by name when first called (this layer never imports the layers above it).

Modules: ``edges`` (recording edges, acyclic), ``cycles`` (the check and the path it reports),
``index`` (the graph in memory with integer ids, cached on disk), ``walk`` (up/down with a depth
bound), ``graph`` (the values returned), ``nodes`` (labels), ``impact`` (impact reports),
``export`` (text tree, Mermaid, DOT, images through Graphviz), ``rawsql`` (bulk reads), ``errors``.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from mlark.core.lazy import lazy_exports

if TYPE_CHECKING:
    from mlark.api_lineage import derive
    from mlark.lineage.graph import Derivation, Edge, LineageGraph, Node
    from mlark.lineage.impact import AliasHit, ImpactReport

_API = "mlark.api_lineage"

_LAZY = {
    "derive": (_API, "derive"),
    "LineageGraph": ("mlark.lineage.graph", "LineageGraph"),
    "Node": ("mlark.lineage.graph", "Node"),
    "Edge": ("mlark.lineage.graph", "Edge"),
    "Derivation": ("mlark.lineage.graph", "Derivation"),
    "ImpactReport": ("mlark.lineage.impact", "ImpactReport"),
    "AliasHit": ("mlark.lineage.impact", "AliasHit"),
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())


class _LineagePackage(types.ModuleType):
    """This package, callable: ``mlark.lineage(ref, direction="up", depth=None, *, repo=None)``."""

    def __call__(self, ref: Any, direction: str = "up", depth: int | None = None, *, repo: Any = None) -> Any:
        """The lineage graph of ``ref`` (see :func:`mlark.api_lineage.lineage`)."""
        return importlib.import_module(_API).lineage(ref, direction, depth, repo=repo)


sys.modules[__name__].__class__ = _LineagePackage
#: This package itself: ``mlark.lineage`` is resolved lazily by ``import mlark`` (mlark/__init__.py ``_LAZY``).
_package = sys.modules[__name__]

__all__ = sorted(_LAZY)
