"""An estimator's ``get_params()`` as values a run can store, and the public name of its class."""

from __future__ import annotations

import functools
import json
import numbers
import types
from typing import Any, Mapping

__all__ = ["flatten_params", "public_module"]

_REPR_MAX = 2000


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``get_params()`` output as values a run can store: JSON kept, dicts flattened, objects as text."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if value:
                out.update(flatten_params({str(k): v for k, v in value.items()}, prefix=f"{name}."))
            else:
                out[name] = {}
        else:
            out[name] = _param_value(value)
    return out


def _param_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)  # NaN and infinities are stored faithfully
    if isinstance(value, (list, tuple)):
        items = [_param_value(v) for v in value]
        text = json.dumps(items, default=str)
        return items if len(text) <= _REPR_MAX else _clip(text)
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    if isinstance(value, functools.partial):
        return _clip(repr(value))
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "tolist"):  # numpy arrays and scalars
        try:
            size = int(getattr(value, "size", 0))
        except (TypeError, ValueError):
            size = _REPR_MAX
        if size <= 100:
            return _param_value(value.tolist())
    return _clip(repr(value))


def _clip(text: str) -> str:
    return text if len(text) <= _REPR_MAX else text[: _REPR_MAX - 3] + "..."


def public_module(cls: type) -> str:
    """``sklearn.ensemble`` rather than ``sklearn.ensemble._forest`` when the class is exported there."""
    module = cls.__module__
    parts = module.split(".")
    while len(parts) > 1 and parts[-1].startswith("_"):
        parts.pop()
    public = ".".join(parts)
    try:
        import sys

        mod = sys.modules.get(public)
        if mod is not None and getattr(mod, cls.__name__, None) is cls:
            return public
    except Exception:
        pass
    return module
