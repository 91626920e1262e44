"""Importing the heavy libraries lazily, with an install hint when one is missing."""

from __future__ import annotations

import importlib
from typing import Any

from mlark.diff.errors import MissingDependency

#: module -> (distribution, extra that installs it)
_HINTS = {
    "pyarrow": ("pyarrow", "data"),
    "numpy": ("numpy", "data"),
    "safetensors": ("safetensors", "torch"),
    "onnx": ("onnx", "onnx"),
    "torch": ("torch", "torch"),
    "ml_dtypes": ("ml_dtypes", "onnx"),
}


_loaded: dict[str, Any] = {}


def require(module: str, *, purpose: str) -> Any:
    """``importlib.import_module(module)`` or :class:`MissingDependency` saying what to install."""
    found = _loaded.get(module)
    if found is not None:
        return found
    try:
        found = _loaded[module] = importlib.import_module(module)
        return found
    except ImportError as exc:
        top = module.split(".")[0]
        dist, extra = _HINTS.get(top, (top, None))
        hint = f"pip install 'mlark[{extra}]'" if extra else f"pip install {dist}"
        raise MissingDependency(f"{purpose} needs {dist}, which is not installed: {hint}", package=dist,
                                extra=extra) from exc


def optional(module: str) -> Any | None:
    """The module, or None when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
