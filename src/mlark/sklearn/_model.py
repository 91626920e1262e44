"""The fitted estimator as a model version of the run, and loading it back."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, Mapping

from mlark.core.names import NAME_MAX
from mlark.errors import InvalidInput, MlarkError
from mlark.sklearn._params import public_module
from mlark.sklearn._state import Config

__all__ = ["META_FILE", "MODEL_FILE", "load_model", "log_model"]

MODEL_FILE = "model.skops"
META_FILE = "mlark-model.json"


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


def log_model(
    run: Any, config: Config, estimator: Any, metrics: Mapping[str, float], X: Any
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
        "estimator_class": f"{public_module(cls)}.{cls.__qualname__}",
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


def _default_model_name(run: Any, config: Config, cls: type) -> str:
    project = getattr(run, "project", None) or config.project
    name = f"{project}-{cls.__name__}"
    return name if len(name) <= NAME_MAX else cls.__name__[:NAME_MAX]
