"""One logged fit: the run, params and tags, the fit itself, its scores, then the fitted estimator."""

from __future__ import annotations

import inspect
import time
import warnings
from typing import Any, Callable

from mlark.integration_run import IntegrationRun
from mlark.sklearn import _state as state
from mlark.sklearn._model import log_model
from mlark.sklearn._params import flatten_params, public_module
from mlark.sklearn._state import AutologWarning, Config

__all__ = ["logged_fit"]


def _warn(what: str, exc: BaseException) -> None:
    warnings.warn(f"mlark.sklearn.autolog: could not {what}: {exc}", AutologWarning, stacklevel=4)


def logged_fit(
    config: Config, original: Callable[..., Any], estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
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


def _open_run(config: Config) -> tuple[Any, bool]:
    """The active run, left running, or a new run in the project that this fit owns (and finishes)."""
    target = IntegrationRun(repo=config.repo, capture=config.capture)
    return target.open(config.project), target.owned


def _close_run(run: Any, exc: BaseException | None) -> None:
    try:
        if exc is None:
            run.__exit__(None, None, None)
        else:
            run.__exit__(type(exc), exc, exc.__traceback__)
    except Exception as close_exc:
        _warn("finish the run", close_exc)


def _log_params_and_tags(run: Any, config: Config, estimator: Any) -> None:
    cls = type(estimator)
    tags = {"mlark.autolog": "sklearn", "estimator_class": f"{public_module(cls)}.{cls.__qualname__}"}
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
    config: Config,
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
        val = getattr(state.local, "validation", None) or config.validation
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
            log_model(run, config, estimator, metrics, X)
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
