"""PyTorch Lightning logger: ``Trainer(logger=MlarkLogger(project="churn"))``.

>>> from mlark.lightning import MlarkLogger
>>> trainer = lightning.pytorch.Trainer(max_epochs=3, logger=MlarkLogger(project="churn", name="mlp"))
>>> trainer.fit(model, data)
>>> trainer.logger.experiment            # the mlark Run: .id, .params, .history("train_loss"), ...

- ``log_hyperparams`` records the module's ``save_hyperparameters()`` (and the
  datamodule's) as params; nested dicts, namespaces and dataclasses are
  flattened into ``a/b`` keys, callables and classes become their names, and
  any other object its text. Params are write-once: the same value again is
  fine, a different one is a :class:`mlark.errors.Conflict`.
- ``log_metrics`` logs every ``self.log(...)`` value at the step Lightning
  gives (the number of optimizer steps taken); tensors become floats, strings
  are skipped with a warning. Points are written in the background, never one
  transaction per step; ``finalize`` makes them durable.
- ``finalize`` finishes the run: ``finished`` after a clean ``fit``/``test``,
  ``failed`` when Lightning reports a failure. Calling ``trainer.test()`` (or
  ``fit`` again) with the same logger afterwards resumes the same run.
- ``name`` is the project, ``version`` the run id: Lightning's checkpoints go
  to ``<default_root_dir>/<project>/<run id>/checkpoints``.

The run: the one given as ``run=``, else the active run (``with
mlark.start_run(...)``), else a new run in ``project`` (default
``"default"``) started on first use. Runs the logger did not start are never
finished by it. Only the process of global rank 0 logs.
"""

from __future__ import annotations

import warnings
from argparse import Namespace
from typing import Any, Mapping

from mlark.integration_run import IntegrationRun, is_running

try:
    from lightning.fabric.utilities.logger import _convert_params, _flatten_dict, _sanitize_callable_params
    from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
    from lightning.pytorch.utilities.rank_zero import rank_zero_only
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "mlark.lightning needs PyTorch Lightning: pip install 'mlark[lightning]' (or pip install lightning)"
    ) from _exc

__all__ = ["MlarkLogger"]

#: Lightning's statuses given to ``finalize`` -> mlark's end statuses.
_END_STATUS = {"success": "finished", "finished": "finished", "failed": "failed"}


class MlarkLogger(Logger):
    """A Lightning logger that records into an mlark run (see the module documentation).

    Args:
        project: the project of the run the logger starts (default ``"default"``).
        name: the run's name (generated when not given).
        run: an existing mlark ``Run`` to log into instead of starting one.
        run_id: the id of a run to resume (``mlark.start_run(resume=...)``).
        tags: tags set on the run.
        prefix: put in front of every metric key, joined with ``-``.
        repo: the repository (path or ``mlark.Repo``); default: ``MLARK_REPO`` or the folder's.
        capture: passed to ``mlark.start_run`` (what environment to record).
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        project: str = "default",
        name: str | None = None,
        *,
        run: Any = None,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        prefix: str = "",
        repo: Any = None,
        capture: Any = None,
    ) -> None:
        super().__init__()
        self._project = project
        self._run_name = name
        self._prefix = prefix
        self._target = IntegrationRun(run=run, run_id=run_id, tags={"mlark.logger": "lightning", **(tags or {})},
                                      repo=repo, capture=capture)

    # ------------------------------------------------------------------ identity

    @property
    def name(self) -> str:
        """The project."""
        return str(getattr(self._target.run, "project", None) or self._project)

    @property
    def version(self) -> str | None:
        """The run id (starts the run if it has not started yet, on rank 0)."""
        if self._target.run_id is None and rank_zero_only.rank == 0:
            _ = self.experiment
        return self._target.run_id

    @property
    def run_id(self) -> str | None:
        """The run id, or None before the run started."""
        return self._target.run_id

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The mlark ``Run`` (started, or resumed after ``finalize``, on first access)."""
        return self._target.open(self._project, self._run_name)

    # ------------------------------------------------------------------ logging

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        flat = _flatten_dict(_sanitize_callable_params(_convert_params(params)))
        clean = {key: _param_value(value) for key, value in flat.items()}
        if clean:
            self.experiment.log_params(clean)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        values: dict[str, float] = {}
        for key, value in metrics.items():
            if hasattr(value, "item") and callable(value.item):
                value = value.item()
            if isinstance(value, str):
                warnings.warn(f"MlarkLogger: skipping metric {key!r}: a string ({value!r:.40})", stacklevel=2)
                continue
            values[f"{self._prefix}{self.LOGGER_JOIN_CHAR}{key}" if self._prefix else key] = value
        if values:
            self.experiment.log(values, step=step)

    def save(self) -> None:
        """Nothing to do: Lightning calls this after every ``log_metrics``, and a synchronous write per
        step would slow training. The run's writer stores points in the background (within about a
        second) and ``finalize`` makes everything durable."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Finish the run this logger started: ``success``/``finished`` -> finished, ``failed`` -> failed.

        A run it did not start is only flushed. Once its own run is finished, a later ``trainer.test()``
        or ``fit()`` resumes it by id.
        """
        run = self._target.run
        if run is None or not is_running(run):
            return
        self._target.finish(_END_STATUS.get(status, "finished"))

    def __getstate__(self) -> dict[str, Any]:
        # Loggers are pickled into spawned worker processes: carry the id, never the live run.
        state = self.__dict__.copy()
        state["_target"] = self._target.detached()
        return state


def _param_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) in ((), (1,)):
        return value.item()  # one-element tensors and arrays
    if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    text = repr(value) if not isinstance(value, type) else value.__name__
    if len(text) > 2000:
        text = text[:1997] + "..."
    return text
