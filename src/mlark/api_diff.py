"""The Python API of diffs: ``mlark.diff(a, b)``.

An adapter like :mod:`mlark.api` (beside the CLI, above ``ops``): it takes an optional ``repo=``
(a ``Repo`` or a folder) and otherwise opens the repository the way ``mlark.start_run`` does
(``MLARK_REPO``, else walking up from the current folder), through :func:`mlark.api._open_repo`.

``mlark.diff`` is also the package of the diff engines (``mlark.diff.diff_tables`` and the rest);
the package is callable, and calling it calls :func:`diff` here (see ``mlark/diff/__init__.py``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from mlark.ops.diff import RunDiff, VersionDiff
    from mlark.ops.repo import Repo

__all__ = ["diff"]


def diff(a: Any, b: Any, *, table: str | bool | None = None, key: str | Sequence[str] | None = None,
         only_diff: bool = False, sample: int = 10,
         repo: "Repo | str | os.PathLike[str] | None" = None) -> "VersionDiff | RunDiff":
    """Compare ``a`` (old) with ``b`` (new): two versions, or two runs.

    >>> d = mlark.diff("churn-data:v2", "churn-data:v3")              # files: added, removed, modified, renamed
    >>> [c.path for c in d.files.added], d.files.shared_bytes
    >>> d = mlark.diff("churn-data:v2", "churn-data:v3", table="train.parquet", key="customer_id")
    >>> d.tables["train.parquet"].rows.changed                         # a mlark.diff.TableDiff
    >>> d = mlark.diff("churn-rf:v3", "models:/churn@production")      # d.manifest, d.models["model.safetensors"]
    >>> d = mlark.diff("run:0190a1", "run:0190b2", only_diff=True)     # a RunDiff: params, metrics, deltas
    >>> print(d.render()); d.to_dict(); d.to_markdown()

    References: ``name``, ``name:v3``, ``name@alias``, ``name:<digest prefix>``, ``models:/NAME/N``,
    ``models:/NAME@ALIAS``, ``run:<id or prefix>``; ``Version`` and ``Run`` objects too.
    ``table``: a file or folder inside both versions, or True for the one table file each holds.
    ``key``: the key column(s) of the table (implies ``table=True`` when no table is named).
    ``only_diff``: runs only, keep the params and metrics that differ. ``sample``: rows shown per
    table section.
    """
    from mlark.api import _open_repo
    from mlark.ops.diff import diff as run_diff

    return run_diff(_open_repo(repo), a, b, table=table, key=key, only_diff=only_diff, sample=sample)
