"""State-dict diffs: tensors added, removed, reshaped, retyped, changed (max |a-b|, relative L2) and unchanged."""

from __future__ import annotations

from mlark.diff.tensors.engine import diff_state_dicts
from mlark.diff.tensors.result import TensorChange, TensorDiff, ValueChange

__all__ = ["TensorChange", "TensorDiff", "ValueChange", "diff_state_dicts"]
