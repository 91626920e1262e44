"""What ``autolog()`` set, read by the patched ``fit`` methods and the fits they log."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["AutologWarning", "Config", "config", "local"]


class AutologWarning(UserWarning):
    """Something could not be recorded; the estimator was fitted anyway."""


@dataclass
class Config:
    project: str
    log_models: bool
    model_name: str | None
    validation: tuple[Any, Any] | None
    repo: Any
    tags: dict[str, Any]
    capture: Any


config: Config | None = None  # None while autolog is off
local = threading.local()  # validation data set by the validation() context manager, per thread
