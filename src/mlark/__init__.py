"""mlark: version control for machine learning.

>>> import mlark
>>> repo = mlark.Repo.init(".")                  # or mlark.Repo.open(), which walks up like git
>>> v = repo.add("data/raw", name="churn-data", type="dataset", message="May export")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlark import errors
from mlark.core.lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mlark.core.types import AliasMove, Artifact, Version
    from mlark.ops.repo import Repo

_LAZY = {
    "Repo": ("mlark.ops.repo", "Repo"),
    "Version": ("mlark.core.types", "Version"),
    "Artifact": ("mlark.core.types", "Artifact"),
    "AliasMove": ("mlark.core.types", "AliasMove"),
    "Run": ("mlark.ops.runs", "Run"),
    "Capture": ("mlark.tracking.capture", "Capture"),
    "start_run": ("mlark.api", "start_run"),
    "runs": ("mlark.api", "runs"),
    "get_run": ("mlark.api", "get_run"),
    "active_run": ("mlark.api", "active_run"),
    "seed_everything": ("mlark.api", "seed_everything"),
    "load_model": ("mlark.api_models", "load_model"),
    "save_model": ("mlark.models.save", "save_model"),
    "registry": ("mlark.registry", "_package"),
    "lineage": ("mlark.lineage", "_package"),
    "impact": ("mlark.api_lineage", "impact"),
    "LineageGraph": ("mlark.lineage.graph", "LineageGraph"),
    "ImpactReport": ("mlark.lineage.impact", "ImpactReport"),
    "diff": ("mlark.diff", "_package"),  # the engines' package, callable: mlark.diff(a, b) (mlark.api_diff)
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())


__all__ = sorted([
    "AliasMove", "Artifact", "Capture", "Repo", "Run", "Version", "active_run", "errors", "get_run", "runs",
    "seed_everything", "start_run", "__version__", "load_model", "save_model", "registry",
    "lineage", "impact", "LineageGraph", "ImpactReport", "diff",
])
