"""Turning result values into JSON-safe data.

Decisions (docs/design/diff.md, "JSON"):

- a non-finite float becomes a string: ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (the spellings
  ``float()`` reads back), so ``json.dumps(..., allow_nan=False)`` always works and no value is lost;
- dates, times and datetimes become ISO 8601 strings; a timedelta becomes its seconds (a float);
- ``Decimal`` becomes its string; bytes become ``"base64:<data>"``;
- numpy scalars and arrays become Python numbers and lists; tuples and sets become lists;
- an object with ``to_dict()`` is asked for it; anything else becomes ``str(value)``.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from decimal import Decimal
from typing import Any


def json_float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v) for v in items]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "base64:" + base64.b64encode(bytes(value)).decode("ascii")
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    item = getattr(value, "item", None)  # numpy scalar
    tolist = getattr(value, "tolist", None)  # numpy array
    if callable(tolist) and getattr(value, "ndim", None):
        return jsonable(tolist())
    if callable(item) and getattr(value, "ndim", None) == 0:
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)
