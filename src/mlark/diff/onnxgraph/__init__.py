"""ONNX graph diffs: nodes added, removed and changed (attributes, constant inputs, wiring), graph
inputs and outputs, initializers, model fields."""

from __future__ import annotations

from mlark.diff.onnxgraph.engine import diff_onnx
from mlark.diff.onnxgraph.result import (
    AttributeChange,
    InputChange,
    IOChange,
    NodeChange,
    NodeRef,
    OnnxDiff,
)

__all__ = ["AttributeChange", "IOChange", "InputChange", "NodeChange", "NodeRef", "OnnxDiff", "diff_onnx"]
