"""Errors of ``mlark.lineage``, each a subclass of the tree in :mod:`mlark.errors`.

::

    Conflict
    └── CycleRefused          an edge that would close a cycle (fields: kind, src, dst, cycle, cycle_ids, cycle_text)
    InvalidInput (ValueError)
    └── GraphvizNotFound      --format png/svg without Graphviz's ``dot`` on PATH (with the install hint)
    MlarkError
    └── GraphvizFailed        ``dot`` ran and failed (its message is kept)
"""

from __future__ import annotations

from mlark.errors import Conflict, InvalidInput, MlarkError


class CycleRefused(Conflict):
    """Recording this edge would make lineage cyclic; ``.fields['cycle']`` lists the path, readably."""


class GraphvizNotFound(InvalidInput):
    pass


class GraphvizFailed(MlarkError):
    pass


__all__ = ["CycleRefused", "GraphvizFailed", "GraphvizNotFound"]
