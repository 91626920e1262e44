"""Lazy exports for packages whose names live in heavier modules: ``import mlark`` stays cheap and a name's
module is imported the first time the name is used."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, table: Mapping[str, tuple[str, str]],
                 namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package``: ``table`` maps each exported name to (module, attribute).

    The value is imported on first use and stored in ``namespace`` (the package's ``globals()``), so later
    lookups do not come back here. Unknown names raise ``AttributeError`` as for any module.

    >>> __getattr__ = lazy_exports(__name__, {"Repo": ("mlark.ops.repo", "Repo")}, globals())
    """

    def __getattr__(name: str) -> Any:
        try:
            module, attr = table[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), attr)
        namespace[name] = value
        return value

    return __getattr__
