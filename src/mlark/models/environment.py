"""The environment a model was saved in: Python version and pinned requirements."""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import platform
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from mlark.errors import InvalidInput

_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\],]*\s*([<>=!~;@ ].*)?$")


def python_version() -> str:
    return platform.python_version()


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def pinned(distributions: Iterable[str]) -> list[str]:
    """``name==version`` for each installed distribution, in the order given; missing ones are skipped."""
    out: list[str] = []
    for name in distributions:
        version = installed_version(name)
        if version is not None and f"{name}=={version}" not in out:
            out.append(f"{name}=={version}")
    return out


def distribution_of(module: str) -> str | None:
    """The installed distribution providing the top-level package of ``module``, if exactly one does.

    Only for code installed into site-packages; a project's own modules have no distribution.
    """
    root = module.split(".")[0]
    loaded = sys.modules.get(root)
    origin = getattr(loaded, "__file__", None)
    if not origin or not {"site-packages", "dist-packages"} & set(Path(origin).parts):
        return None
    found = _packages_distributions().get(root, [])
    return found[0] if len(found) == 1 else None


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    try:
        return dict(metadata.packages_distributions())
    except Exception:  # a broken installed distribution must not break saving
        return {}


def check_requirements(requirements: object) -> list[str]:
    """Extra requirement lines from the caller: a list of pip requirement strings."""
    if requirements is None:
        return []
    if isinstance(requirements, str):
        requirements = [requirements]
    if not isinstance(requirements, (list, tuple)):
        raise InvalidInput("requirements must be a list of strings such as 'lightgbm==4.3.0'", field="requirements")
    out = []
    for line in requirements:
        if not isinstance(line, str) or not _REQUIREMENT.fullmatch(line.strip()) or "\n" in line:
            raise InvalidInput(
                f"requirement {line!r} is not a pip requirement such as 'lightgbm==4.3.0'", field="requirements"
            )
        out.append(line.strip())
    return out


def merge_requirements(pinned_lines: list[str], extra: list[str]) -> list[str]:
    """Pinned framework requirements, overridden by the caller's lines for the same distribution."""

    def key(line: str) -> str:
        return re.split(r"[<>=!~;@ \[]", line, maxsplit=1)[0].lower().replace("_", "-")

    given = {key(line) for line in extra}
    return [line for line in pinned_lines if key(line) not in given] + extra
