"""Hugging Face ``transformers`` callback: ``Trainer(..., callbacks=[MlarkCallback(project="churn")])``.

>>> from mlark.transformers import MlarkCallback
>>> trainer = transformers.Trainer(model=model, args=args, train_dataset=train,
...                                callbacks=[MlarkCallback(project="nlp")])
>>> trainer.train()

- At the start of training: the ``TrainingArguments`` (``args.to_dict()``) are
  recorded as params, and the model's configuration (``model.config``) as
  ``model.<key>`` params. Nested dicts are flattened into ``a.b`` keys; values
  that are not JSON become their text; tokens are already masked by
  ``to_dict()``. Params are write-once: training again into the same run with
  different arguments is a :class:`mlark.errors.Conflict`.
- Every ``on_log`` (loss, learning rate, grad norm, eval metrics, ...) is
  logged at ``state.global_step``; values that are not numbers are skipped.
- At the end of training the run is finished. Metrics logged afterwards (a
  later ``trainer.evaluate()``) go into the same run: it is resumed for the
  write and finished again at once.

The run: the one given as ``run=``, else the active run (``with
mlark.start_run(...)``), else a new run in ``project`` (default ``"default"``)
named ``args.run_name`` when set. Runs the callback did not start are never
finished by it. Only the main process (``state.is_world_process_zero``) logs.
Tracking never stops training: an error while recording is turned into a
warning (except a param that contradicts the run's, a ``Conflict``). When
training raises, ``transformers`` calls no callback: mlark marks the run
``failed`` when the exception ends the program, or finishes it at exit.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping

from mlark.errors import Conflict
from mlark.integration_run import IntegrationRun

try:
    from transformers import TrainerCallback
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "mlark.transformers needs Hugging Face transformers: pip install 'mlark[transformers]' "
        "(or pip install transformers)"
    ) from _exc

__all__ = ["MlarkCallback", "MlarkCallbackWarning"]

_TEXT_MAX = 2000


class MlarkCallbackWarning(UserWarning):
    """Something could not be recorded; training went on."""


class MlarkCallback(TrainerCallback):
    """Record a ``transformers.Trainer`` run in mlark (see the module documentation).

    Args:
        project: the project of the run the callback starts (default ``"default"``).
        name: the run's name (default: ``args.run_name`` when set, else generated).
        run: an existing mlark ``Run`` to log into instead of starting one.
        tags: tags set on the run.
        log_model_config: record ``model.config`` as ``model.*`` params (default True).
        repo: the repository (path or ``mlark.Repo``); default: ``MLARK_REPO`` or the folder's.
        capture: passed to ``mlark.start_run`` (what environment to record).
    """

    def __init__(
        self,
        project: str = "default",
        name: str | None = None,
        *,
        run: Any = None,
        tags: Mapping[str, Any] | None = None,
        log_model_config: bool = True,
        repo: Any = None,
        capture: Any = None,
    ) -> None:
        self.project = project
        self._name = name
        self._log_model_config = log_model_config
        self._target = IntegrationRun(run=run, tags={"mlark.callback": "transformers", **(tags or {})}, repo=repo,
                                      capture=capture)
        self._params_logged = False
        self._training = False

    # ------------------------------------------------------------------ the run

    @property
    def run(self) -> Any:
        """The mlark ``Run`` being logged to (None before training starts, and after it ends)."""
        return self._target.run

    @property
    def run_id(self) -> str | None:
        return self._target.run_id

    def _ensure_run(self, args: Any) -> Any:
        return self._target.open(self.project, self._name or _run_name(args))

    def _finish(self) -> None:
        self._target.finish()  # a later evaluate() resumes the run by id

    # ------------------------------------------------------------------ callbacks

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self._training = True
        try:
            run = self._ensure_run(args)
            if not self._params_logged:
                run.log_params(_training_params(args, model if self._log_model_config else None))
                self._params_logged = True
        except Exception as exc:
            if isinstance(exc, Conflict):
                raise  # different arguments for the same run: the user must know
            _warn("record the training arguments", exc)

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        metrics: dict[str, float] = {}
        for key, value in logs.items():
            value = _scalar(value)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            metrics[key] = value
        if not metrics:
            return
        try:
            self._ensure_run(args).log(metrics, step=int(state.global_step))
            if not self._training:  # evaluate() after training: do not leave the run open
                self._finish()
        except Exception as exc:
            _warn(f"log metrics at step {state.global_step}", exc)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # A checkpoint was written: make the metrics logged so far durable too.
        run = self._target.run
        if state.is_world_process_zero and run is not None:
            try:
                run.flush()
            except Exception as exc:
                _warn("flush metrics", exc)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = False
        run = self._target.run
        if not state.is_world_process_zero or run is None:
            return
        try:
            summary = getattr(run, "summary", None)
            if summary is not None:
                summary["global_step"] = int(state.global_step)
                if state.best_metric is not None and math.isfinite(float(state.best_metric)):
                    summary["best_metric"] = float(state.best_metric)
                if state.best_model_checkpoint:
                    summary["best_model_checkpoint"] = str(state.best_model_checkpoint)
            self._finish()
        except Exception as exc:
            _warn("finish the run", exc)


# --------------------------------------------------------------------------- helpers


def _warn(what: str, exc: BaseException) -> None:
    warnings.warn(f"MlarkCallback: could not {what}: {exc}", MlarkCallbackWarning, stacklevel=3)


def _scalar(value: Any) -> Any:
    """A one-element tensor or a NumPy scalar as a Python number; anything else unchanged."""
    if isinstance(value, (int, float)):
        return value
    numel = getattr(value, "numel", None)
    if callable(numel):  # torch
        return value.item() if numel() == 1 else value
    if getattr(value, "size", None) == 1 and hasattr(value, "item"):  # numpy
        return value.item()
    return value


def _run_name(args: Any) -> str | None:
    name = getattr(args, "run_name", None)
    output_dir = getattr(args, "output_dir", None)
    # transformers fills run_name with output_dir when it is not given: that is not a name.
    if not name or name == output_dir:
        return None
    return str(name)


def _training_params(args: Any, model: Any) -> dict[str, Any]:
    params = _flatten(args.to_dict())
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        params.update(_flatten(config.to_dict(), prefix="model."))
    return params


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten({str(k): v for k, v in value.items()}, prefix=f"{name}."))
        else:
            out[name] = _json_value(value)
    return out


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {}
    if isinstance(value, (list, tuple)):
        items = [_json_value(v) for v in value]
        if all(v is None or isinstance(v, (bool, int, float, str)) for v in items):
            return items
        return _clip(repr(value))
    enum_value = getattr(value, "value", None)
    if enum_value is not None and isinstance(enum_value, (str, int)) and type(value).__module__ != "builtins":
        return enum_value
    return _clip(str(value))


def _clip(text: str) -> str:
    return text if len(text) <= _TEXT_MAX else text[: _TEXT_MAX - 3] + "..."
