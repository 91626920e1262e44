"""mlark.pipelines: batch prediction over files, and the predictor the server shares.

>>> from mlark.models import load_model
>>> from mlark.pipelines import Predictor, predict_file
>>> report = predict_file(Predictor(load_model("out/churn-rf")), "customers.parquet", "scores.parquet",
...                       passthrough=["customer_id"], batch_size=65_536)
>>> report.rows, report.seconds

``mlark predict REF --input F --output F.parquet`` is the command-line form; it resolves the
reference through the repository and can record the output as a dataset version linked to the
model version and the input (docs/design/serving.md). Importing this package imports neither
numpy, pandas nor pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlark.pipelines.batch import BatchReport, predict_file
    from mlark.pipelines.predictor import Predictor, SmokeTestFailed

_LAZY = {
    "predict_file": ("mlark.pipelines.batch", "predict_file"),
    "BatchReport": ("mlark.pipelines.batch", "BatchReport"),
    "Predictor": ("mlark.pipelines.predictor", "Predictor"),
    "SmokeTestFailed": ("mlark.pipelines.predictor", "SmokeTestFailed"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlark.pipelines' has no attribute {name!r}")


__all__ = sorted(_LAZY)
