"""scikit-learn autologging: every ``fit`` of an estimator becomes (part of) a run.

>>> import mlark.sklearn
>>> mlark.sklearn.autolog(project="churn", validation=(X_val, y_val))
>>> RandomForestClassifier(max_depth=8).fit(X_train, y_train)    # a run with params, scores, the model

What one ``fit`` records:

- **params**: ``estimator.get_params(deep=False)``. JSON values (numbers,
  strings, bools, None, lists of those) are kept as they are; a dict is
  flattened into ``name.key`` params; an estimator (a Pipeline step, a
  meta-estimator's ``estimator``) becomes its ``repr``, any other object its
  qualified name (functions, classes) or ``repr``.
- **metrics**: ``training_score`` (``estimator.score`` on the training data,
  when the estimator has a ``score``), ``validation_score`` (the same on the
  validation data, when given: ``autolog(validation=(X_val, y_val))`` or the
  :func:`validation` context manager), ``fit_time_s``.
- **tags**: ``mlark.autolog = sklearn``, ``estimator_class`` (its full name).
- **the fitted estimator**, unless ``log_models=False``: saved as a model
  folder with ``mlark.models.save_model`` (skops, a safe format: loading runs
  no code from the file; ``mlark-model.json`` with the signature inferred from
  the first training rows, the run id, the scores), committed with
  ``run.log_model`` as a version of the artifact ``<project>-<EstimatorClass>``
  (or ``model_name``) of type ``model``, so it is an output of the run whose
  metadata carries the manifest summary (flavor, framework, signature), ready
  for ``mlark.registry.register``. Load it
  back with ``mlark.models.load_model(path)`` or :func:`load_model` (the
  estimator itself). Without ``mlark.models`` the folder holds ``model.skops``
  alone.

Only the outermost ``fit`` is logged: the fits a Pipeline makes of its steps, or
a meta-estimator (GridSearchCV, BaggingClassifier, ...) of its inner
estimators, are not. The guard is process-wide, so while one fit is being
logged, fits started meanwhile in other threads of the same process are not
logged either (joblib's process-based workers never are: they do not carry the
patch).

The run: the active run (``with mlark.start_run(...)``) when there is one, which
is left running; otherwise a new run in ``project`` (default ``"default"``)
that is finished when ``fit`` returns (``failed`` if it raises). Logging never
breaks training: an error while recording is turned into a warning
(:class:`AutologWarning`) and ``fit`` goes on.

``autolog(disable=True)`` puts every original ``fit`` back.

The parts: ``_patch`` wraps ``fit`` in every estimator class, present and
future; ``_fit`` logs one fit; ``_model`` commits the fitted estimator and
loads it back; ``_params`` turns ``get_params()`` into storable values;
``_state`` holds what ``autolog()`` set.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, Mapping

from mlark.core.names import validate_name
from mlark.errors import InvalidInput, MlarkError
from mlark.sklearn import _state as state
from mlark.sklearn._model import META_FILE, MODEL_FILE, load_model  # noqa: F401  (re-exported)
from mlark.sklearn._params import flatten_params  # noqa: F401  (re-exported)
from mlark.sklearn._patch import patch_all, unpatch_all
from mlark.sklearn._state import AutologWarning, Config

__all__ = ["AutologWarning", "autolog", "load_model", "validation"]

_lock = threading.RLock()


def _require_sklearn() -> Any:
    try:
        import sklearn.base
    except ImportError as exc:
        raise MlarkError(
            "mlark.sklearn needs scikit-learn: pip install 'mlark[sklearn]' (or pip install scikit-learn skops)"
        ) from exc
    return sklearn.base


# --------------------------------------------------------------------------- public API


def autolog(
    *,
    log_models: bool = True,
    disable: bool = False,
    project: str = "default",
    validation: tuple[Any, Any] | None = None,
    model_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    repo: Any = None,
    capture: Any = None,
) -> None:
    """Record every outermost scikit-learn ``fit`` in a run (see the module documentation).

    ``project``, ``repo`` and ``capture`` are passed to ``mlark.start_run`` for
    the runs autolog starts itself; ``tags`` are set on every run it logs to.
    ``validation=(X_val, y_val)`` (``y_val`` may be None for unsupervised
    estimators) is scored after each fit as ``validation_score``.
    Calling ``autolog`` again replaces the settings; ``disable=True`` restores
    the original ``fit`` methods.
    """
    with _lock:
        if disable:
            unpatch_all()
            state.config = None
            return
        if validation is not None:
            validation = _check_validation(validation)
        validate_name(project, kind="project")
        if model_name is not None:
            validate_name(model_name)
        base = _require_sklearn()
        if log_models:
            try:
                import skops.io  # noqa: F401
            except ImportError as exc:
                raise MlarkError(
                    "mlark.sklearn.autolog(log_models=True) saves estimators with skops: pip install skops "
                    "(or pass log_models=False)"
                ) from exc
        state.config = Config(
            project=project,
            log_models=log_models,
            model_name=model_name,
            validation=validation,
            repo=repo,
            tags=dict(tags or {}),
            capture=capture,
        )
        patch_all(base.BaseEstimator)


@contextlib.contextmanager
def validation(X_val: Any, y_val: Any = None) -> Iterator[None]:
    """Score the fits inside the block (in this thread) on ``X_val, y_val`` as ``validation_score``.

    >>> with mlark.sklearn.validation(X_val, y_val):
    ...     model.fit(X_train, y_train)

    Takes precedence over ``autolog(validation=...)``.
    """
    data = _check_validation((X_val, y_val))
    previous = getattr(state.local, "validation", None)
    state.local.validation = data
    try:
        yield
    finally:
        state.local.validation = previous


def _check_validation(data: Any) -> tuple[Any, Any]:
    if not isinstance(data, tuple) or len(data) != 2 or data[0] is None:
        raise InvalidInput(
            "validation data must be a pair (X_val, y_val); y_val may be None for unsupervised estimators",
            field="validation",
        )
    return data[0], data[1]
