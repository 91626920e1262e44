"""Plain Python: any object with a ``predict`` method.

By default (``serialization="code"``) the model is stored as its class path and JSON constructor
arguments (``init_args``); loading imports the class from the environment and calls
``Class(**init_args)``. Saving refuses an object whose state ``Class(**init_args)`` does not
rebuild (it would silently lose what was learned). ``serialization="pickle"`` (or ``"joblib"``,
``"cloudpickle"``) stores the whole object instead, and loads only with that name in ``trust=``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlark.errors import InvalidInput
from mlark.models.classpath import check_init_args, class_path_of, resolve_class
from mlark.models.environment import distribution_of, python_version
from mlark.models.errors import ModelIntegrityError
from mlark.models.files import ModelFiles
from mlark.models.flavors.base import Saved, check_config_keys, config_value, take_options
from mlark.models.safety import PICKLE_FORMATS, Trust, check_pickle_format, dump_pickled, load_pickled

NAME = "python"
FRAMEWORK = "python"
REQUIREMENTS = ("numpy", "pandas")
EXTRA = "models"


def matches(model: object) -> bool:
    return callable(getattr(model, "predict", None)) and not isinstance(model, type)


def save(model: Any, folder: Path, options: dict[str, Any]) -> Saved:
    opts = take_options(NAME, options, {"serialization": "code", "init_args": None})
    fmt = check_pickle_format(opts["serialization"], allowed=("code", *PICKLE_FORMATS))
    if not matches(model):
        raise InvalidInput(
            f"the python flavor saves an object with a predict method; {type(model).__name__} has none", field="model"
        )
    requirements: list[str] = []
    if fmt == "code":
        init_args = check_init_args(opts["init_args"])
        class_path = class_path_of(model)
        _check_rebuilds(model, init_args, class_path)
        config: dict[str, Any] = {"class": class_path, "init_args": init_args, "serialization": "code"}
        dist = distribution_of(type(model).__module__)
        requirements = [dist] if dist else []
    else:
        if opts["init_args"] is not None:
            raise InvalidInput("init_args applies to serialization='code' only", field="init_args")
        file = "model.joblib" if fmt == "joblib" else "model.pkl"
        (folder / file).write_bytes(dump_pickled(model, fmt))
        config = {"file": file, "serialization": fmt}
    return Saved(
        config=config, predictor=_Predictor(model), framework_version=python_version(), requirements=requirements
    )


def load(files: ModelFiles, config: dict[str, Any], trust: Trust) -> _Predictor:
    fmt = config_value(config, "serialization", str)
    if fmt == "code":
        check_config_keys(config, {"class", "init_args", "serialization"})
        class_path = config_value(config, "class", str)
        init_args = config_value(config, "init_args", dict)
        cls = resolve_class(class_path)
        if not callable(getattr(cls, "predict", None)):
            raise ModelIntegrityError(
                f"the model's class {class_path!r} has no predict method; refusing to call it",
                field="flavor_config.class",
            )
        try:
            model = cls(**init_args)
        except Exception as exc:
            raise ModelIntegrityError(
                f"{class_path}(**init_args) failed: {type(exc).__name__}: {exc} (has the class changed since saving?)",
                field="flavor_config.init_args",
            ) from exc
        return _Predictor(model)
    if fmt in PICKLE_FORMATS:
        check_config_keys(config, {"file", "serialization"})
        file = config_value(config, "file", str)
        from mlark.models.safety import require_pickle_trust

        require_pickle_trust(fmt, trust, file=file)  # before a byte of the file is read
        model = load_pickled(files.read_bytes(file), fmt, trust, file=file)
        if not matches(model):
            raise ModelIntegrityError(
                f"{file!r} unpickled to a {type(model).__name__}, which has no predict method", file=file
            )
        return _Predictor(model)
    raise ModelIntegrityError(f"mlark-model.json: unknown serialization {fmt!r} for flavor python")


def _check_rebuilds(model: Any, init_args: dict[str, Any], class_path: str) -> None:
    try:
        rebuilt = type(model)(**init_args)
    except Exception as exc:
        raise InvalidInput(
            f"{class_path}(**init_args) fails ({type(exc).__name__}: {exc}); pass init_args= with the constructor "
            "arguments that rebuild this object",
            field="init_args",
        ) from exc
    differ = _state_differences(model, rebuilt)
    if differ:
        raise InvalidInput(
            f"{class_path}(**init_args) does not rebuild this object "
            f"(attributes that differ: {', '.join(differ[:8])}); "
            "the python flavor stores only the class path and constructor arguments. Pass init_args= that rebuild "
            "it, or save a pickle explicitly (serialization='pickle', loaded only with trust=['pickle'])",
            field="init_args",
            attributes=differ,
        )


def _state_differences(a: Any, b: Any) -> list[str]:
    sa, sb = _state(a), _state(b)
    return sorted(k for k in sa.keys() | sb.keys() if k not in sa or k not in sb or not _same(sa[k], sb[k]))


def _state(obj: Any) -> dict[str, Any]:
    state: dict[str, Any] = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if isinstance(slot, str) and slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                state[slot] = getattr(obj, slot)
    return state


def _same(x: Any, y: Any) -> bool:
    if x is y:
        return True
    if type(x) is not type(y):
        return False
    if isinstance(x, float) and x != x and y != y:
        return True
    try:
        result = x == y
        if isinstance(result, bool):
            return result
        return bool(result.all())  # numpy arrays, pandas objects
    except Exception:
        return False


class _Predictor:
    def __init__(self, model: Any) -> None:
        self.raw = model

    def predict(self, data: Any) -> Any:
        return self.raw.predict(data)
