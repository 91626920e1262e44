"""Classes the model tests save by class path. Importable as ``models_testkit`` (tests/models is put on sys.path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class Scaler:
    """A plain model: multiplies every value by ``factor``."""

    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def predict(self, data: Any) -> np.ndarray:
        values = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
        return values * self.factor


class Echo:
    """Returns what predict was given, to inspect what the signature made of the input."""

    def predict(self, data: Any) -> Any:
        return data


class Learner:
    """A plain model with learned state that its constructor does not rebuild."""

    def __init__(self) -> None:
        self.mean = 0.0

    def fit(self, values: list[float]) -> Learner:
        self.mean = float(np.mean(values))
        return self

    def predict(self, data: Any) -> np.ndarray:
        return np.full(len(data), self.mean)


class NoPredict:
    def __init__(self) -> None:
        self.x = 1


class Sneaky:
    """A transformer whose __setstate__ leaves a marker file: proof that loading ran its code."""

    def __init__(self, marker: str = "") -> None:
        self.marker = marker

    def fit(self, X: Any, y: Any = None) -> Sneaky:
        return self

    def transform(self, X: Any) -> Any:
        return X

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).write_text("ran")
        self.__dict__.update(state)


class Bomb:
    """Pickling this yields a pickle that, when loaded, runs code that creates ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))
