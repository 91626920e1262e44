"""Class paths (``package.module:Outer.Inner``): naming installed code instead of storing it.

A model saved by class path stores only the name of a class and JSON constructor arguments. On
load the class is imported from the environment, never from the model folder. Because the path
is read from the folder, resolving it is guarded: the module must not be part of the standard
library or ``__main__`` (so a crafted manifest cannot reach ``os:system`` or
``subprocess:Popen``), every part must be a public identifier, and the caller checks the kind of
class (for example a ``torch.nn.Module`` subclass) before calling it.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from typing import Any

from mlark.errors import InvalidInput
from mlark.models.errors import ImportPathNotFound, ModelIntegrityError

_PART = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RULE = "'package.module:ClassName' (dotted identifiers; the class may be nested: 'module:Outer.Inner')"
_REFUSED_ROOTS = frozenset(sys.stdlib_module_names) | {"__main__"}


def class_path_of(obj: object) -> str:
    """The class path of ``obj``'s class; refuse classes that cannot be imported again."""
    cls = type(obj)
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__":
        raise InvalidInput(
            f"{qualname} is defined in __main__ (a script or notebook), so it cannot be imported when the model "
            "is loaded; move the class into a module, or save a pickle explicitly (serialization='pickle')",
            field="model",
            value=qualname,
        )
    if "<locals>" in qualname:
        raise InvalidInput(
            f"{module}.{qualname} is defined inside a function, so it cannot be imported when the model is loaded",
            field="model",
            value=qualname,
        )
    path = f"{module}:{qualname}"
    check_class_path(path)
    return path


def check_class_path(path: object) -> tuple[str, str]:
    if not isinstance(path, str) or path.count(":") != 1:
        raise InvalidInput(f"class path {path!r} must look like {_RULE}", field="class_path", value=str(path))
    module, qualname = path.split(":")
    parts = module.split(".") + qualname.split(".")
    if not all(_PART.fullmatch(p) for p in parts):
        raise InvalidInput(
            f"class path {path!r} must look like {_RULE}, with public names only", field="class_path", value=path
        )
    root = module.split(".")[0]
    if root in _REFUSED_ROOTS:
        raise InvalidInput(
            f"class path {path!r} names the module {module!r}, which is in the standard library; "
            "a model's class must come from an installed third-party package or your own code",
            field="class_path",
            value=path,
        )
    return module, qualname


def resolve_class(path: object) -> type:
    """Import the class named by ``path``; a path that does not resolve is an ImportPathNotFound."""
    try:
        module_name, qualname = check_class_path(path)
    except InvalidInput as exc:
        raise ModelIntegrityError(f"the model's class path is refused: {exc}", field="class_path") from exc
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ImportPathNotFound(
            f"cannot import module {module_name!r} for the model's class {path!r} ({exc}); install the package "
            "that defines it, or add its folder to sys.path",
            class_path=path,
            module=module_name,
        ) from exc
    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportPathNotFound(
                f"module {module_name!r} has no {qualname!r} (looking up {part!r}) for the model's class {path!r}; "
                "was it renamed or moved since the model was saved?",
                class_path=path,
                module=module_name,
            ) from None
    if not isinstance(obj, type):
        raise ImportPathNotFound(
            f"{path!r} names a {type(obj).__name__}, not a class", class_path=path, module=module_name
        )
    return obj


def check_init_args(init_args: object) -> dict[str, Any]:
    """Constructor keyword arguments must be a JSON object (what the manifest can hold)."""
    if init_args is None:
        return {}
    if not isinstance(init_args, dict) or not all(isinstance(k, str) for k in init_args):
        raise InvalidInput("init_args must be a dict of keyword arguments with string keys", field="init_args")
    try:
        return json.loads(json.dumps(init_args, allow_nan=False))  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"init_args must be JSON (numbers, strings, booleans, None, lists, dicts): {exc}", field="init_args"
        ) from exc
