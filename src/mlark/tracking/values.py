"""Values a run records: metric numbers, param values, summary and tag values.

- Metrics are numbers only: ``bool``, ``int``, ``float`` and NumPy scalars
  become ``float``; anything else is an :class:`InvalidInput` naming the key.
  NaN and infinities pass through unchanged.
- Params are JSON values (None, bool, int, float, str, lists, dicts with string
  keys), plus NumPy scalars and arrays (``.tolist()``), paths and enums. Each
  is stored as given, with a canonical text and, for numbers, a float.
- JSON columns cannot hold NaN or infinities on PostgreSQL, so a non-finite
  float inside a param or summary value is stored as ``{"$float": "nan"}``
  (or ``"inf"``, ``"-inf"``) and decoded back on reading.
"""

from __future__ import annotations

import enum
import json
import math
import sys
from collections.abc import Mapping
from os import PathLike
from typing import Any

from mlark.errors import InvalidInput
from mlark.tracking.keys import check_key

VALUE_TEXT_MAX = 100_000
_FLOAT_TAG = "$float"
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


# --------------------------------------------------------------------------- metric values


def metric_value(key: str, value: Any) -> float:
    """``value`` as a float, or InvalidInput naming ``key``. The slow path of ``log()``: floats skip it."""
    kind = type(value)
    if kind is float or kind is int or kind is bool:
        try:
            return float(value)
        except OverflowError:
            raise InvalidInput(
                f"metric {key!r}: the integer {value} is too large for a 64-bit float", field="metric", key=key
            ) from None
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, (numpy.number, numpy.bool_)) and not isinstance(
        value, numpy.complexfloating
    ):
        return float(value)
    if isinstance(value, (int, float)):  # subclasses (np.float64 is one), IntEnum, ...
        return float(value)
    hint = ""
    if hasattr(value, "item") and getattr(value, "shape", None) in ((), (1,), [], [1]):
        hint = "; call .item() to log a one-element tensor or array"
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise InvalidInput(
        f"metric {key!r} must be a number (bool, int, float or a NumPy scalar), got {type(value).__name__} {shown}{hint}",
        field="metric",
        key=key,
        type=type(value).__name__,
    )


def check_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int):
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(step, numpy.integer):
            step = int(step)
        else:
            raise InvalidInput(f"step must be a whole number, got {type(step).__name__} {step!r:.40}", field="step")
    if not -(2**63) <= step < 2**63:
        raise InvalidInput(f"step {step} does not fit in 64 bits", field="step")
    return int(step)


# --------------------------------------------------------------------------- JSON values


def to_json_value(value: Any, *, what: str) -> Any:
    """A JSON-safe copy of ``value`` (non-finite floats tagged), or InvalidInput saying what is not allowed."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        return int(value)
    if isinstance(value, float):
        value = float(value)
        if math.isfinite(value):
            return value
        return {_FLOAT_TAG: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, enum.Enum):
        return to_json_value(value.value, what=what)
    if isinstance(value, PathLike):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_json_value(v, what=what) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidInput(f"{what}: dictionary keys must be strings, got {k!r:.40}", field=what)
            out[k] = to_json_value(v, what=what)
        return out
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, (numpy.generic, numpy.ndarray)) and not isinstance(
        value, (numpy.complexfloating, numpy.void)
    ):
        return to_json_value(value.tolist(), what=what)
    raise InvalidInput(
        f"{what}: {type(value).__name__} values cannot be stored; use a number, string, bool, None, "
        f"or a list or dict of those (for example str(value))",
        field=what,
        type=type(value).__name__,
    )


def from_json_value(value: Any) -> Any:
    """Undo :func:`to_json_value`'s tagging of non-finite floats."""
    if isinstance(value, dict):
        if len(value) == 1 and _FLOAT_TAG in value and value[_FLOAT_TAG] in _NONFINITE:
            return _NONFINITE[value[_FLOAT_TAG]]
        return {k: from_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_value(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# --------------------------------------------------------------------------- params


def param_row(key: str, value: Any) -> dict[str, Any]:
    """The ``params`` row for ``value``: value (JSON), text (canonical string), number (float or None)."""
    stored = to_json_value(value, what=f"param {key!r}")
    if isinstance(stored, str):
        text = stored
    elif isinstance(stored, dict) and set(stored) == {_FLOAT_TAG}:
        text = stored[_FLOAT_TAG]
    else:
        text = canonical_json(stored)
    if len(text) > VALUE_TEXT_MAX:
        raise InvalidInput(f"param {key!r} is longer than {VALUE_TEXT_MAX} characters", field="param", key=key)
    number: float | None = None
    plain = from_json_value(stored)
    if isinstance(plain, (int, float)) and not isinstance(plain, bool):
        number = float(plain)
        if math.isnan(number):
            number = None
    return {"key": key, "value": stored, "text": text, "number": number}


def same_param(stored_value: Any, stored_text: str, new: dict[str, Any]) -> bool:
    """True if a stored param equals the new row: the same JSON value, or equal numbers (8 == 8.0; not "8")."""
    if stored_text == new["text"] and canonical_json(stored_value) == canonical_json(new["value"]):
        return True
    old = from_json_value(stored_value)
    value = from_json_value(new["value"])
    numeric = (int, float)
    if isinstance(old, numeric) and isinstance(value, numeric) and not isinstance(old, bool) and not isinstance(
        value, bool
    ):
        return float(old) == float(value)
    return False


def param_rows(params: Any) -> list[dict[str, Any]]:
    """Rows for a dict of params (keys checked), or InvalidInput."""
    if params is None:
        return []
    if not isinstance(params, Mapping):
        raise InvalidInput(f"params must be a dict of names to values, got {type(params).__name__}", field="params")
    return [param_row(check_key(k, "param"), v) for k, v in params.items()]


# --------------------------------------------------------------------------- tags


def tag_value(key: str, value: Any) -> str:
    """Tags are text: strings as they are, numbers as written, bools as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value
    elif isinstance(value, (int, float)):
        text = repr(value) if isinstance(value, float) else str(value)
    else:
        raise InvalidInput(
            f"tag {key!r} must be a string, number or bool, got {type(value).__name__}", field="tag", key=key
        )
    if len(text) > VALUE_TEXT_MAX:
        raise InvalidInput(f"tag {key!r} is longer than {VALUE_TEXT_MAX} characters", field="tag", key=key)
    return text


def tag_values(tags: Any) -> dict[str, str]:
    """A dict of tags as text (keys checked), or InvalidInput."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidInput(f"tags must be a dict of names to values, got {type(tags).__name__}", field="tags")
    return {check_key(k, "tag"): tag_value(k, v) for k, v in tags.items()}
