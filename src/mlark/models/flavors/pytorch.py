"""PyTorch: the ``state_dict`` in safetensors, plus the module's class path and JSON constructor arguments.

Saving checks that ``Class(**init_args)`` rebuilds a module with the same parameter names and
shapes, so a model that cannot be loaded again is refused at save time, not discovered later.
Loading imports the class from the environment (:mod:`mlark.models.classpath`), checks it is a
``torch.nn.Module`` subclass before calling it, validates the safetensors header, and loads the
weights with safetensors. ``torch.load`` and pickle are never used.

Options: ``init_args`` (dict, JSON).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlark.errors import InvalidInput
from mlark.models.classpath import check_init_args, class_path_of, resolve_class
from mlark.models.environment import distribution_of
from mlark.models.errors import ModelIntegrityError
from mlark.models.files import ModelFiles
from mlark.models.flavors.base import Saved, check_config_keys, config_value, loaded, require, take_options
from mlark.models.safety import Trust, check_safetensors

NAME = "pytorch"
FRAMEWORK = "torch"
REQUIREMENTS = ("torch", "safetensors", "numpy")
EXTRA = "torch"
WEIGHTS = "model.safetensors"


def matches(model: object) -> bool:
    torch = loaded("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def save(model: Any, folder: Path, options: dict[str, Any]) -> Saved:
    torch = require("torch", extra=EXTRA)
    st = require("safetensors.torch", extra=EXTRA, package="safetensors")
    opts = take_options(NAME, options, {"init_args": None})
    if not isinstance(model, torch.nn.Module):
        raise InvalidInput(f"the pytorch flavor saves a torch.nn.Module, got {type(model).__name__}", field="model")
    init_args = check_init_args(opts["init_args"])
    class_path = class_path_of(model)
    _check_rebuild(torch, type(model), init_args, model, class_path)
    st.save_model(model, str(folder / WEIGHTS))
    dist = distribution_of(type(model).__module__)
    return Saved(
        config={"class": class_path, "init_args": init_args, "weights": WEIGHTS},
        predictor=_Predictor(model),
        requirements=[dist] if dist else [],
    )


def load(files: ModelFiles, config: dict[str, Any], trust: Trust) -> _Predictor:
    torch = require("torch", extra=EXTRA)
    st = require("safetensors.torch", extra=EXTRA, package="safetensors")
    check_config_keys(config, {"class", "init_args", "weights"})
    class_path = config_value(config, "class", str)
    init_args = config_value(config, "init_args", dict)
    weights = config_value(config, "weights", str)
    cls = resolve_class(class_path)
    if not issubclass(cls, torch.nn.Module):
        raise ModelIntegrityError(
            f"the model's class {class_path!r} is not a torch.nn.Module subclass; refusing to call it",
            field="flavor_config.class",
        )
    data = files.read_bytes(weights)
    check_safetensors(data, file=weights)
    try:
        state = st.load(data)
    except Exception as exc:
        raise ModelIntegrityError(
            f"model file {weights!r} does not load with safetensors: {exc}", file=weights
        ) from exc
    try:
        module = cls(**init_args)
    except Exception as exc:
        raise ModelIntegrityError(
            f"{class_path}(**init_args) failed: {type(exc).__name__}: {exc} (has the class changed since saving?)",
            field="flavor_config.init_args",
        ) from exc
    _load_state(module, state, class_path, weights)
    module.eval()
    return _Predictor(module)


def _check_rebuild(torch: Any, cls: type, init_args: dict[str, Any], model: Any, class_path: str) -> None:
    try:
        rebuilt = cls(**init_args)
    except Exception as exc:
        raise InvalidInput(
            f"{class_path}(**init_args) fails ({type(exc).__name__}: {exc}); pass init_args= with the "
            "constructor arguments that rebuild this module",
            field="init_args",
        ) from exc
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if want != got:
        differ = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
        raise InvalidInput(
            f"{class_path}(**init_args) builds a module whose parameters differ from the one being saved "
            f"({', '.join(differ[:5])}{' ...' if len(differ) > 5 else ''}); pass init_args= that rebuild it",
            field="init_args",
        )


def _load_state(module: Any, state: dict[str, Any], class_path: str, weights: str) -> None:
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ModelIntegrityError(f"{weights!r} does not fit {class_path}: {exc}", file=weights) from exc
    if missing:
        # safetensors stores a tensor shared by several names (tied weights) once; those names are fine.
        current = module.state_dict()
        loaded_ptrs = {current[k].data_ptr() for k in state if k in current}
        missing = [k for k in missing if current[k].data_ptr() not in loaded_ptrs]
    if missing or unexpected:
        raise ModelIntegrityError(
            f"{weights!r} does not match {class_path}: "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}",
            file=weights,
        )


class _Predictor:
    def __init__(self, module: Any) -> None:
        self.raw = module

    def predict(self, data: Any) -> Any:
        import numpy as np
        import torch

        dtype = next((p.dtype for p in self.raw.parameters() if p.is_floating_point()), torch.float32)

        def tensor(value: Any) -> Any:
            array = np.ascontiguousarray(value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value))
            if array.dtype.kind not in "biuf":
                raise InvalidInput(f"a PyTorch model takes numbers, got {array.dtype}", field="data")
            out = torch.from_numpy(array)
            return out.to(dtype) if out.is_floating_point() else out

        with torch.inference_mode():
            if isinstance(data, dict):
                result = self.raw(**{k: tensor(v) for k, v in data.items()})
            else:
                result = self.raw(tensor(data))
        return _to_numpy(result)


def _to_numpy(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return tuple(_to_numpy(v) for v in value)
    return value
