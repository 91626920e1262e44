"""Semantic diffs of two local files or folders: tables, state dicts (safetensors, PyTorch) and ONNX graphs.

>>> from mlark.diff import diff_tables, diff_state_dicts, diff_onnx, diff_paths
>>> d = diff_tables("v2/train.parquet", "v3/train.parquet", key="customer_id")
>>> d.rows.changed, d.rows.changed_by_column, d.schema.added
>>> print(d.render())          # plain text for a terminal (width-aware)
>>> d.to_dict(), d.to_json()   # JSON-safe (NaN and infinities as strings)
>>> d.to_markdown()            # for a review

Every result is a :class:`~mlark.diff.result.DiffResult`. The engines are pure: they read the two
inputs and nothing else (no repository, no database). ``import mlark.diff`` imports no heavy
library; pyarrow, numpy, safetensors, torch and onnx are imported when a diff needs them.
See docs/design/diff.md.

The package is also callable: ``mlark.diff(a, b, *, table=None, key=None, ...)`` compares two
versions or two runs of a repository and returns a ``VersionDiff`` or a ``RunDiff``. That is an
adapter in :mod:`mlark.api_diff`, looked up by name when first called, as ``mlark.lineage(ref)``
is: this layer never imports the layers above it.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from mlark.diff.detect import detect_kind, diff_paths
from mlark.diff.errors import (
    DuplicateKeys,
    InputNotFound,
    KeyColumnMissing,
    KindMismatch,
    MissingDependency,
    UnreadableFile,
)
from mlark.diff.onnxgraph import OnnxDiff, diff_onnx
from mlark.diff.result import DiffResult
from mlark.diff.table import TableDiff, diff_tables
from mlark.diff.tensors import TensorDiff, diff_state_dicts

_API = "mlark.api_diff"


class _DiffPackage(types.ModuleType):
    """This package, callable: ``mlark.diff(a, b, *, table=None, key=None, only_diff=False, sample=10, repo=None)``."""

    def __call__(self, a: Any, b: Any, **options: Any) -> Any:
        """Compare two versions or two runs of a repository (see :func:`mlark.api_diff.diff`)."""
        return importlib.import_module(_API).diff(a, b, **options)


sys.modules[__name__].__class__ = _DiffPackage
#: This package itself: ``mlark.diff`` is resolved lazily by ``import mlark`` (mlark/__init__.py ``_LAZY``).
_package = sys.modules[__name__]

__all__ = [
    "DiffResult",
    "DuplicateKeys",
    "InputNotFound",
    "KeyColumnMissing",
    "KindMismatch",
    "MissingDependency",
    "OnnxDiff",
    "TableDiff",
    "TensorDiff",
    "UnreadableFile",
    "detect_kind",
    "diff_onnx",
    "diff_paths",
    "diff_state_dicts",
    "diff_tables",
]
