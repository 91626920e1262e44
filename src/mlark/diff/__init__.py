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
"""

from __future__ import annotations

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
