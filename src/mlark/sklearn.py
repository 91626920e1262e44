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
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import numbers
import tempfile
import threading
import time
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from mlark.core.names import NAME_MAX, validate_name
from mlark.errors import InvalidInput, MlarkError

__all__ = ["AutologWarning", "autolog", "load_model", "validation"]

MODEL_FILE = "model.skops"
META_FILE = "mlark-model.json"
_REPR_MAX = 2000
_MARK = "__mlark_autolog_original__"


class AutologWarning(UserWarning):
    """Something could not be recorded; the estimator was fitted anyway."""


@dataclass
class _Config:
    project: str
    log_models: bool
    model_name: str | None
    validation: tuple[Any, Any] | None
    repo: Any
    tags: dict[str, Any]
    capture: Any


_config: _Config | None = None
_patched: dict[type, Callable[..., Any]] = {}
_had_init_subclass = False
_orig_init_subclass: Any = None
_lock = threading.RLock()
# Process-wide depth of autologged fits: only depth 0 -> 1 logs.
_depth = 0
_depth_lock = threading.Lock()
_local = threading.local()  # validation data set by the validation() context manager, per thread


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
    global _config
    with _lock:
        if disable:
            _unpatch_all()
            _config = None
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
        _config = _Config(
            project=project,
            log_models=log_models,
            model_name=model_name,
            validation=validation,
            repo=repo,
            tags=dict(tags or {}),
            capture=capture,
        )
        _patch_all(base.BaseEstimator)


@contextlib.contextmanager
def validation(X_val: Any, y_val: Any = None) -> Iterator[None]:
    """Score the fits inside the block (in this thread) on ``X_val, y_val`` as ``validation_score``.

    >>> with mlark.sklearn.validation(X_val, y_val):
    ...     model.fit(X_train, y_train)

    Takes precedence over ``autolog(validation=...)``.
    """
    data = _check_validation((X_val, y_val))
    previous = getattr(_local, "validation", None)
    _local.validation = data
    try:
        yield
    finally:
        _local.validation = previous


def load_model(path: str | Path, *, trusted: list[str] | None = None) -> Any:
    """The fitted estimator autolog logged, from ``path``: the folder ``repo.get(...)`` or ``run.use(...)`` returns.

    A model folder (``mlark-model.json`` inside) is loaded with ``mlark.models.load_model``, which
    checks every file's digest and trusts only the skops types known to be safe. ``trusted`` names
    more types (or ``"pickle"``) you have reviewed; they are never read from the folder.
    A folder holding only ``model.skops`` (autolog without ``mlark.models``) is loaded with skops,
    refusing types it does not trust by default unless listed in ``trusted``.
    """
    p = Path(path)
    if p.is_dir() and (p / META_FILE).is_file():
        from mlark.models import load_model as load_folder

        return load_folder(p, trust=trusted).raw
    import skops.io

    file = p / MODEL_FILE if p.is_dir() else p
    if not file.is_file():
        raise InvalidInput(f"no model folder or {MODEL_FILE} at {p}", field="path", value=str(p))
    untrusted = [t for t in skops.io.get_untrusted_types(file=file) if not trusted or t not in trusted]
    if untrusted:
        raise MlarkError(
            f"{file} holds types skops does not trust by default: {', '.join(untrusted)}; "
            "review them and pass trusted=[...] to load_model",
            untrusted=untrusted,
        )
    return skops.io.load(file, trusted=trusted or None)


# --------------------------------------------------------------------------- patching


def _patch_all(base: type) -> None:
    global _had_init_subclass, _orig_init_subclass
    todo: list[type] = [base]
    seen: set[type] = set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        _patch_class(cls)
        todo.extend(cls.__subclasses__())
    if "__init_subclass__" not in base.__dict__ or not getattr(base.__dict__["__init_subclass__"], _MARK, None):
        # Classes defined (or sklearn modules imported) after autolog() get patched as they are created.
        _had_init_subclass = "__init_subclass__" in base.__dict__
        _orig_init_subclass = base.__dict__.get("__init_subclass__")

        def __init_subclass__(cls: type, **kwargs: Any) -> None:
            if _orig_init_subclass is not None:
                _orig_init_subclass.__get__(None, cls)(**kwargs)
            else:
                super(base, cls).__init_subclass__(**kwargs)  # type: ignore[misc]
            if _config is not None:
                _patch_class(cls)

        hook = classmethod(__init_subclass__)
        setattr(hook, _MARK, True)
        setattr(base, "__init_subclass__", hook)


def _patch_class(cls: type) -> None:
    fit = cls.__dict__.get("fit")
    if not isinstance(fit, types.FunctionType) or hasattr(fit, _MARK):
        return
    wrapper = _make_wrapper(fit)
    setattr(cls, "fit", wrapper)
    _patched[cls] = fit


def _unpatch_all() -> None:
    global _had_init_subclass, _orig_init_subclass
    for cls, original in list(_patched.items()):
        if hasattr(cls.__dict__.get("fit"), _MARK):
            setattr(cls, "fit", original)
    _patched.clear()
    try:
        import sklearn.base
    except ImportError:
        return
    base = sklearn.base.BaseEstimator
    hook = base.__dict__.get("__init_subclass__")
    if hook is not None and getattr(hook, _MARK, None):
        if _had_init_subclass:
            setattr(base, "__init_subclass__", _orig_init_subclass)
        else:
            delattr(base, "__init_subclass__")
    _had_init_subclass, _orig_init_subclass = False, None


def _make_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        global _depth
        config = _config
        with _depth_lock:
            outermost = _depth == 0
            _depth += 1
        try:
            if not outermost or config is None:
                return original(self, *args, **kwargs)
            return _logged_fit(config, original, self, args, kwargs)
        finally:
            with _depth_lock:
                _depth -= 1

    setattr(fit, _MARK, original)
    return fit


# --------------------------------------------------------------------------- one logged fit


def _warn(what: str, exc: BaseException) -> None:
    warnings.warn(f"mlark.sklearn.autolog: could not {what}: {exc}", AutologWarning, stacklevel=4)


def _logged_fit(
    config: _Config, original: Callable[..., Any], estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        run, owned = _open_run(config)
    except Exception as exc:  # never break training
        _warn("start a run", exc)
        return original(estimator, *args, **kwargs)

    try:
        _log_params_and_tags(run, config, estimator)
        start = time.perf_counter()
        try:
            result = original(estimator, *args, **kwargs)
        except BaseException as exc:
            if owned:
                _close_run(run, exc)
                owned = False
            raise
        fit_time = time.perf_counter() - start
        _log_results(run, config, estimator, original, args, kwargs, fit_time)
        return result
    finally:
        if owned:
            _close_run(run, None)


def _open_run(config: _Config) -> tuple[Any, bool]:
    import mlark.api as api

    active = api.active_run()
    if active is not None:
        return active, False
    options: dict[str, Any] = {}
    if config.repo is not None:
        options["repo"] = config.repo
    if config.capture is not None:
        options["capture"] = config.capture
    return api.start_run(config.project, **options), True


def _close_run(run: Any, exc: BaseException | None) -> None:
    try:
        if exc is None:
            run.__exit__(None, None, None)
        else:
            run.__exit__(type(exc), exc, exc.__traceback__)
    except Exception as close_exc:
        _warn("finish the run", close_exc)


def _log_params_and_tags(run: Any, config: _Config, estimator: Any) -> None:
    cls = type(estimator)
    tags = {"mlark.autolog": "sklearn", "estimator_class": f"{_public_module(cls)}.{cls.__qualname__}"}
    tags.update(config.tags)
    try:
        run.set_tags(tags)
    except Exception as exc:
        _warn("set tags", exc)
    try:
        params = flatten_params(estimator.get_params(deep=False))
    except Exception as exc:
        _warn("read get_params()", exc)
        return
    try:
        run.log_params(params)
    except Exception as exc:
        # One bad or conflicting param must not lose the others (params are write-once).
        for key, value in params.items():
            try:
                run.log_param(key, value)
            except Exception as one_exc:
                _warn(f"log param {key!r}", one_exc)
        if not params:
            _warn("log params", exc)


def _log_results(
    run: Any,
    config: _Config,
    estimator: Any,
    original: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    fit_time: float,
) -> None:
    metrics: dict[str, float] = {"fit_time_s": fit_time}
    X, y, sample_weight = _fit_data(original, estimator, args, kwargs)
    if hasattr(estimator, "score") and X is not None:
        score = _score(estimator, X, y, sample_weight, "training")
        if score is not None:
            metrics["training_score"] = score
        val = getattr(_local, "validation", None) or config.validation
        if val is not None:
            score = _score(estimator, val[0], val[1], None, "validation")
            if score is not None:
                metrics["validation_score"] = score
    try:
        run.log(metrics)
    except Exception as exc:
        _warn("log metrics", exc)
    if config.log_models:
        try:
            _log_model(run, config, estimator, metrics, X)
        except Exception as exc:
            _warn("log the fitted estimator", exc)


def _fit_data(
    original: Callable[..., Any], estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any, Any]:
    """(X, y, sample_weight) of a fit call: X and y are its first two parameters, whatever they are named."""
    params = inspect.signature(original).parameters
    try:
        bound = inspect.signature(original).bind(estimator, *args, **kwargs)
    except (TypeError, ValueError):
        return (args[0] if args else kwargs.get("X")), (args[1] if len(args) > 1 else kwargs.get("y")), None
    positional = [n for n, p in params.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    X = bound.arguments.get(positional[1]) if len(positional) > 1 else None
    y = bound.arguments.get(positional[2]) if len(positional) > 2 and positional[2].lower() == "y" else None
    sample_weight = bound.arguments.get("sample_weight")
    if sample_weight is None:  # fit(X, y, **fit_params)
        for name, p in params.items():
            if p.kind is p.VAR_KEYWORD and isinstance(bound.arguments.get(name), dict):
                sample_weight = bound.arguments[name].get("sample_weight")
    return X, y, sample_weight


def _score(estimator: Any, X: Any, y: Any, sample_weight: Any, which: str) -> float | None:
    try:
        kwargs: dict[str, Any] = {}
        if sample_weight is not None and "sample_weight" in inspect.signature(estimator.score).parameters:
            kwargs["sample_weight"] = sample_weight
        value = estimator.score(X, y, **kwargs) if y is not None else estimator.score(X, **kwargs)
        return float(value)
    except Exception as exc:
        _warn(f"compute the {which} score", exc)
        return None


def _log_model(
    run: Any, config: _Config, estimator: Any, metrics: Mapping[str, float], X: Any
) -> None:
    cls = type(estimator)
    name = config.model_name or _default_model_name(run, config, cls)
    scores = ", ".join(f"{k} {metrics[k]:.4g}" for k in ("training_score", "validation_score") if k in metrics)
    message = f"{cls.__name__} fitted by run {getattr(run, 'name', None) or run.id} (mlark.sklearn autolog)"
    if scores:
        message += f"; {scores}"
    if hasattr(run, "log_model"):
        _log_model_version(run, name, message, estimator, metrics, X)
        return
    with tempfile.TemporaryDirectory(prefix="mlark-sklearn-") as tmp:
        folder = Path(tmp) / "model"
        _save_model(estimator, folder, run, metrics, X)
        run.log_artifact(str(folder), name=name, type="model", message=message)


def _log_model_version(
    run: Any, name: str, message: str, estimator: Any, metrics: Mapping[str, float], X: Any
) -> None:
    """``run.log_model``: a model version whose metadata carries the manifest summary (flavor, signature)."""
    from mlark.errors import Conflict, StorageError

    metadata = _model_metadata(estimator, metrics)
    example = _head(X)
    if example is not None:
        try:
            run.log_model(estimator, name=name, flavor="sklearn", input_example=example, metadata=metadata,
                          message=message)
            return
        except (Conflict, StorageError):  # raised after (or while) committing: do not log it again
            raise
        except Exception:  # an example the signature inference cannot use: log without it
            pass
    run.log_model(estimator, name=name, flavor="sklearn", metadata=metadata, message=message)


def _model_metadata(estimator: Any, metrics: Mapping[str, float]) -> dict[str, Any]:
    cls = type(estimator)
    return {
        "logged_by": "mlark.sklearn.autolog",
        "estimator_class": f"{_public_module(cls)}.{cls.__qualname__}",
        **{k: float(v) for k, v in metrics.items() if k != "fit_time_s" and math.isfinite(v)},
    }


def _save_model(estimator: Any, folder: Path, run: Any, metrics: Mapping[str, float], X: Any) -> None:
    """A model folder (mlark.models format: model.skops + mlark-model.json) or, without mlark.models, model.skops."""
    try:
        from mlark.models import save_model
    except (ImportError, AttributeError):
        save_model = None
    if save_model is None:
        import skops.io

        folder.mkdir()
        skops.io.dump(estimator, folder / MODEL_FILE)
        return
    metadata = _model_metadata(estimator, metrics)
    example = _head(X)
    if example is not None:
        try:
            save_model(estimator, folder, flavor="sklearn", input_example=example, run_id=run.id, metadata=metadata)
            return
        except Exception:  # an example the signature inference cannot use: save without it
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    save_model(estimator, folder, flavor="sklearn", run_id=run.id, metadata=metadata)


def _head(X: Any, n: int = 5) -> Any:
    """The first rows of X (DataFrame, array) as an input example, or None for anything else."""
    try:
        if hasattr(X, "iloc"):
            return X.iloc[:n]
        if type(X).__module__ == "numpy" and getattr(X, "ndim", 0) >= 1:
            return X[:n]
    except Exception:
        return None
    return None


def _default_model_name(run: Any, config: _Config, cls: type) -> str:
    project = getattr(run, "project", None) or config.project
    name = f"{project}-{cls.__name__}"
    return name if len(name) <= NAME_MAX else cls.__name__[:NAME_MAX]


# --------------------------------------------------------------------------- params


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``get_params()`` output as values a run can store: JSON kept, dicts flattened, objects as text."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if value:
                out.update(flatten_params({str(k): v for k, v in value.items()}, prefix=f"{name}."))
            else:
                out[name] = {}
        else:
            out[name] = _param_value(value)
    return out


def _param_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)  # NaN and infinities are stored faithfully
    if isinstance(value, (list, tuple)):
        items = [_param_value(v) for v in value]
        text = json.dumps(items, default=str)
        return items if len(text) <= _REPR_MAX else _clip(text)
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    if isinstance(value, functools.partial):
        return _clip(repr(value))
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "tolist"):  # numpy arrays and scalars
        try:
            size = int(getattr(value, "size", 0))
        except (TypeError, ValueError):
            size = _REPR_MAX
        if size <= 100:
            return _param_value(value.tolist())
    return _clip(repr(value))


def _clip(text: str) -> str:
    return text if len(text) <= _REPR_MAX else text[: _REPR_MAX - 3] + "..."


# --------------------------------------------------------------------------- helpers


def _check_validation(data: Any) -> tuple[Any, Any]:
    if not isinstance(data, tuple) or len(data) != 2 or data[0] is None:
        raise InvalidInput(
            "validation data must be a pair (X_val, y_val); y_val may be None for unsupervised estimators",
            field="validation",
        )
    return data[0], data[1]


def _public_module(cls: type) -> str:
    """``sklearn.ensemble`` rather than ``sklearn.ensemble._forest`` when the class is exported there."""
    module = cls.__module__
    parts = module.split(".")
    while len(parts) > 1 and parts[-1].startswith("_"):
        parts.pop()
    public = ".".join(parts)
    try:
        import sys

        mod = sys.modules.get(public)
        if mod is not None and getattr(mod, cls.__name__, None) is cls:
            return public
    except Exception:
        pass
    return module
