"""The Python API of lineage: ``mlark.lineage(ref)``, ``mlark.impact(ref)``, ``mlark.lineage.derive(...)``.

An adapter like :mod:`mlark.api` (beside the CLI, above ``ops``): the functions take an optional
``repo=`` (a ``Repo`` or a folder) and otherwise open the repository the way ``mlark.start_run``
does (``MLARK_REPO``, else walking up from the current folder; ``MLARK_AUTHOR`` is who acts),
through :func:`mlark.api._open_repo`, so every API shares one open repository per process.

References: a version (``churn-data``, ``churn-data:v3``, ``churn-data@best``), a run
(``run:<id or prefix>``) or a registered model version (``models:/churn/2``,
``models:/churn@production``); a ``Version``, ``Run``, registered ``ModelVersion`` or lineage
``Node`` will do too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlark.lineage.graph import Derivation, LineageGraph
    from mlark.lineage.impact import ImpactReport
    from mlark.ops.repo import Repo

__all__ = ["derive", "impact", "lineage"]


def _repo(repo: "Repo | str | os.PathLike[str] | None") -> "Repo":
    from mlark.api import _open_repo

    return _open_repo(repo)


def lineage(ref: Any, direction: str = "up", depth: int | None = None, *, repo: Any = None) -> "LineageGraph":
    """The lineage graph of ``ref``: ``direction="up"`` what it was made from (runs, the versions they
    used, back to raw data), ``"down"`` everything made from it; at most ``depth`` edges away.

    >>> g = mlark.lineage("models:/churn@production")
    >>> [n.label for n in g.topological()]      # raw data first, the registered model version last
    >>> print(g.to_mermaid())                   # also .to_dot(), .to_dict(), .to_text(), .render("svg")
    """
    from mlark.ops import lineage as ops

    return ops.lineage(_repo(repo), ref, direction, depth)


def impact(ref: Any, *, repo: Any = None) -> "ImpactReport":
    """Everything made from ``ref`` (every run, version and registered model version downstream), and the
    stages and aliases that point at the affected registered model versions now.

    >>> report = mlark.impact("churn-data:v3")
    >>> [hit.ref for hit in report.production]   # ['models:/churn@production']
    """
    from mlark.ops import lineage as ops

    return ops.impact(_repo(repo), ref)


def derive(child: Any, parent: Any, message: str, *, repo: Any = None) -> "Derivation":
    """Record that version ``child`` was derived from version ``parent`` outside any run (a hand
    relabelling, a copy edited elsewhere), saying why. Refused when ``parent`` was itself made from
    ``child``: lineage stays acyclic."""
    from mlark.ops import lineage as ops

    return ops.derive(_repo(repo), child, parent, message)
