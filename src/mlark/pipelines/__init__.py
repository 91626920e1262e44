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

from typing import TYPE_CHECKING

from mlark.core.lazy import lazy_exports

if TYPE_CHECKING:
    from mlark.pipelines.batch import BatchReport, predict_file
    from mlark.pipelines.predictor import Predictor, SmokeTestFailed

_LAZY = {
    "predict_file": ("mlark.pipelines.batch", "predict_file"),
    "BatchReport": ("mlark.pipelines.batch", "BatchReport"),
    "Predictor": ("mlark.pipelines.predictor", "Predictor"),
    "SmokeTestFailed": ("mlark.pipelines.predictor", "SmokeTestFailed"),
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())


__all__ = sorted(_LAZY)
