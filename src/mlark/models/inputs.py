"""Turning what a caller passes to ``predict`` (or as an input example) into one of three shapes.

- a pandas DataFrame (a table): from a DataFrame, a Series, a dict of columns
  (``{"age": [31, 40]}``), a dict that is one record (``{"age": 31}``) or a list of records;
- a numpy ndarray (one tensor): from an ndarray, a list of values / nested lists, or one value
  (``"some text"``, a 0-d array that a ``[-1]`` signature takes as one row);
- a dict of ndarrays (named tensors): from a dict whose values are arrays of two or more dimensions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlark.errors import InvalidInput

ACCEPTED = "a pandas DataFrame, a numpy array, a dict (of columns, or one record), a list or a single value"


def _is_pandas(value: Any, name: str) -> bool:
    module = type(value).__module__
    return module.startswith("pandas") and type(value).__name__ == name


def is_dataframe(value: Any) -> bool:
    return _is_pandas(value, "DataFrame")


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) or _is_pandas(value, "Series")


def normalize(data: Any) -> Any:
    """A DataFrame, an ndarray or a dict of ndarrays; anything else is an InvalidInput."""
    if is_dataframe(data) or isinstance(data, np.ndarray):
        return data
    if _is_pandas(data, "Series"):
        return data.to_frame(name=str(data.name) if data.name is not None else "0")
    if isinstance(data, dict):
        return _from_dict(data)
    if isinstance(data, (str, bytes, bool, int, float, np.generic)):
        return np.asarray(data)
    if isinstance(data, (list, tuple)):
        if data and all(isinstance(item, dict) for item in data):
            import pandas as pd

            return pd.DataFrame.from_records(list(data))
        try:
            return np.asarray(data)
        except ValueError as exc:
            raise InvalidInput(f"the list given does not form an array ({exc})", field="data") from exc
    raise InvalidInput(f"predict takes {ACCEPTED}; got {type(data).__name__}", field="data")


def _from_dict(data: dict[Any, Any]) -> Any:
    import pandas as pd

    if not data:
        raise InvalidInput("the dict given is empty; pass columns ({'age': [31, 40]}) or one record", field="data")
    if not all(isinstance(k, str) for k in data):
        raise InvalidInput("dict keys must be column or input names (strings)", field="data")
    values = list(data.values())
    sequences = [_is_sequence(v) for v in values]
    if not any(sequences):
        return pd.DataFrame([data])  # one record
    if not all(sequences):
        scalars = [k for k, s in zip(data, sequences, strict=True) if not s]
        raise InvalidInput(
            f"the dict mixes single values ({', '.join(scalars[:5])}) with lists; pass all columns as lists, "
            "or one record with single values",
            field="data",
        )
    arrays = {k: v.to_numpy() if _is_pandas(v, "Series") else np.asarray(v) for k, v in data.items()}
    if all(a.ndim == 1 for a in arrays.values()) and len({len(a) for a in arrays.values()}) == 1:
        return pd.DataFrame({k: data[k] if _is_pandas(data[k], "Series") else a for k, a in arrays.items()})
    return arrays
