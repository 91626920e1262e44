"""One loaded model, ready for many predictions: input checks, a fast path, outputs split by rows.

:class:`Predictor` wraps a :class:`mlark.models.Model`. ``predict(data)`` returns what
``model.predict(data)`` returns (the same values: the input is checked against the signature by
the model, then the flavor predicts), except that a scikit-learn forest predicts through a fast
path that computes the same numbers: its tree arrays on ONNX Runtime (:mod:`mlark.pipelines.trees`,
which needs neither scikit-learn nor the estimator's skops file) when the model carries them, else
:mod:`mlark.pipelines.forest` on the estimator. The server and the batch pipeline both predict
through it, so they predict alike. :meth:`Predictor.predict_arrow` takes an Arrow record batch and,
when its columns have exactly the signature's numeric types, hands them to the tree arrays as numpy
columns without going through pandas.

Outputs are normalised (:func:`normalize_output`) to one of three shapes that can be counted and
cut by rows: a numpy array (first axis = rows), a pandas DataFrame, or a dict of arrays.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from mlark.errors import InvalidInput, MlarkError


class SmokeTestFailed(MlarkError):
    """A model that loads but cannot predict on its own input example (``.fields['reason']``)."""


class PredictionFailed(InvalidInput):
    """The model raised on this input (the input fits the signature but not the model)."""


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class Predictor:
    """``predict`` for a loaded model; ``threads`` bounds the threads one call may use."""

    def __init__(self, model: Any, *, threads: int = 1, fast: bool = True) -> None:
        self.model = model
        self.signature = model.signature
        self.threads = max(1, threads)
        self._fast = _fast_path(model, self.threads) if fast else None

    @property
    def fast(self) -> bool:
        """True when predictions go through an accelerated path (same results)."""
        return self._fast is not None

    @property
    def input_columns(self) -> list[str] | None:
        """The signature's column names, in order, when the model takes a table."""
        sig = self.signature
        if sig is None or sig.inputs.kind != "columns":
            return None
        return [str(s.name) for s in sig.inputs.specs]

    @property
    def input_kind(self) -> str | None:
        """``"columns"``, ``"tensors"`` or None (no signature)."""
        return None if self.signature is None else self.signature.inputs.kind

    def predict(self, data: Any) -> Any:
        """The model's predictions for ``data`` (normalised, see :func:`normalize_output`).

        Signature errors are the model's (``SignatureMismatch``, naming the column); an error
        raised by the framework itself becomes a :class:`PredictionFailed`.
        """
        import warnings

        from mlark.models.errors import ExtraColumnsWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExtraColumnsWarning)  # callers choose what to pass
            if self._fast is None:
                try:
                    out = self.model.predict(data)
                except MlarkError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the framework refused the input
                    raise _failed(exc) from exc
            else:
                prepared = self.model.prepare(data)
                try:
                    out = self._fast(prepared)
                    if out is None:  # input the fast path leaves to the estimator (its own errors)
                        out = self.model.predict(data)
                except MlarkError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise _failed(exc) from exc
        return normalize_output(out)

    def predict_arrow(self, batch: Any) -> Any:
        """:meth:`predict` for a pyarrow RecordBatch or Table of the signature's columns."""
        columns = self._numpy_columns(batch)
        if columns is not None:
            try:
                out = self._fast.predict_columns(columns)
            except Exception as exc:  # noqa: BLE001
                raise _failed(exc) from exc
            if out is not None:
                return normalize_output(out)
        return self.predict(batch.to_pandas())

    def _numpy_columns(self, batch: Any) -> list[np.ndarray] | None:
        """The batch's columns as numpy arrays when they are exactly what the signature check would make
        of them (same names in order, same numeric types, nulls only in float columns), else None."""
        if not hasattr(self._fast, "predict_columns"):
            return None
        names = self.input_columns
        assert self.signature is not None
        if names is None or list(batch.schema.names) != names:
            return None
        from mlark.pipelines.arrow_columns import dtype_name, to_numpy

        out = []
        for spec, field, column in zip(self.signature.inputs.specs, batch.schema, batch.columns):
            values = to_numpy(column) if dtype_name(field.type) == spec.dtype else None
            if values is None:
                return None
            out.append(values)
        return out

    def smoke_test(self) -> int:
        """Predict on the model's input example; the number of rows predicted (0: no example).

        Raises :class:`SmokeTestFailed` when the prediction raises or does not give one result
        per example row.
        """
        try:
            example = self.model.input_example
        except Exception as exc:  # noqa: BLE001 - a corrupt example is a failed smoke test
            raise SmokeTestFailed(f"its input example does not load: {exc}", reason=str(exc)) from exc
        if example is None:
            return 0
        try:
            out = self.predict(example)
        except Exception as exc:  # noqa: BLE001
            raise SmokeTestFailed(
                f"predicting on its input example failed: {type(exc).__name__}: {exc}", reason=str(exc)
            ) from exc
        expected = input_rows(example)
        got = output_rows(out)
        if expected is not None and got != expected:
            raise SmokeTestFailed(
                f"predicting on its input example of {expected} row(s) gave {got} result(s)",
                reason="row count",
            )
        return got


def _fast_path(model: Any, threads: int) -> Any:
    if getattr(model, "flavor", None) != "sklearn":
        return None
    config = model.manifest.flavor_config
    method = config.get("method", "predict") if isinstance(config, dict) else "predict"
    arrays = getattr(model, "compiled", None)
    if arrays is not None:
        from mlark.pipelines.trees import compile_trees, fits_signature

        compiled = compile_trees(arrays, method, threads=threads) if fits_signature(arrays, model.signature) else None
        if compiled is not None:
            return compiled
    from mlark.pipelines.forest import accelerate

    return accelerate(model.raw, method, threads=threads)


def _failed(exc: BaseException) -> PredictionFailed:
    text = str(exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    if len(reason) > 300:
        reason = reason[:297] + "..."
    return PredictionFailed(f"the model could not predict on this input: {reason}", field="data",
                            reason=type(exc).__name__)


# --------------------------------------------------------------------------- outputs


def normalize_output(out: Any) -> Any:
    """An ndarray (rows first), a DataFrame, or a dict of ndarrays."""
    if isinstance(out, np.ndarray):
        return out
    module = type(out).__module__
    if module.startswith("pandas"):
        name = type(out).__name__
        if name == "DataFrame":
            return out
        if name == "Series":
            return out.to_numpy()
    if isinstance(out, dict):
        return {str(k): np.asarray(v) for k, v in out.items()}
    if hasattr(out, "numpy") and callable(out.numpy):  # a tensor that slipped through
        return np.asarray(out.numpy())
    return np.asarray(out)


def output_rows(out: Any) -> int | None:
    """How many rows an output has (None: it has no row axis)."""
    if isinstance(out, np.ndarray):
        return None if out.ndim == 0 else int(out.shape[0])
    if isinstance(out, dict):
        sizes = {int(np.shape(v)[0]) if np.ndim(v) else -1 for v in out.values()}
        return sizes.pop() if len(sizes) == 1 and -1 not in sizes else None
    return int(len(out))


def slice_output(out: Any, start: int, stop: int) -> Any:
    if isinstance(out, dict):
        return {k: v[start:stop] for k, v in out.items()}
    if isinstance(out, np.ndarray):
        return out[start:stop]
    return out.iloc[start:stop]


def input_rows(data: Any) -> int | None:
    """Rows of an input as the models package normalises it (None when it cannot tell)."""
    if isinstance(data, np.ndarray):
        return None if data.ndim == 0 else int(data.shape[0])
    if isinstance(data, dict):
        sizes = {int(np.shape(v)[0]) for v in data.values() if np.ndim(v)}
        return sizes.pop() if len(sizes) == 1 else None
    if hasattr(data, "shape") and len(getattr(data, "shape", ())) >= 1:
        return int(data.shape[0])
    return None
