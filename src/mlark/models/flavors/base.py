"""What every flavor module provides, and helpers they share."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlark.errors import InvalidInput
from mlark.models.errors import MissingDependency, ModelIntegrityError
from mlark.models.signature import Signature


class Predictor(Protocol):
    """A loaded (or in-memory) model behind the one ``predict`` interface."""

    raw: Any

    def predict(self, data: Any) -> Any:
        """``data`` is already normalised and checked against the signature (DataFrame, ndarray or dict)."""


@dataclass
class Saved:
    """What a flavor's ``save`` returns."""

    config: dict[str, Any]  # goes to manifest["flavor_config"]; JSON only
    predictor: Predictor  # wraps the in-memory model, to infer the output schema from an input example
    signature: Signature | None = None  # what the flavor knows by itself (an ONNX graph, an encoder's output)
    framework_version: str | None = None
    requirements: list[str] = field(default_factory=list)  # distributions to pin beyond the flavor's REQUIREMENTS


def require(module: str, *, extra: str, package: str | None = None) -> Any:
    """Import a framework, or raise MissingDependency with the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pkg = package or module
        raise MissingDependency(
            f"this model needs {pkg}, which is not installed: pip install 'mlark[{extra}]'",
            package=pkg,
            extra=extra,
        ) from exc


def loaded(module: str) -> Any | None:
    """The module if something already imported it (flavor inference never imports a framework)."""
    return sys.modules.get(module)


def take_options(flavor: str, options: dict[str, Any], allowed: dict[str, Any]) -> dict[str, Any]:
    """Options with defaults filled in; an unknown option is an InvalidInput naming it."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        listed = ", ".join(sorted(allowed)) or "none"
        raise InvalidInput(
            f"unknown option(s) {', '.join(unknown)} for flavor {flavor!r}; allowed: {listed}",
            field="options",
            value=unknown[0],
        )
    return {**allowed, **options}


def config_value(config: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """A field of the manifest's flavor_config, checked; a missing or mistyped one is an integrity error."""
    value = config.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ModelIntegrityError(
            f"mlark-model.json: flavor_config.{key} is missing or has the wrong type", field=f"flavor_config.{key}"
        )
    return value


def check_config_keys(config: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ModelIntegrityError(
            f"mlark-model.json: flavor_config has unknown field(s) {', '.join(unknown)}",
            field=f"flavor_config.{unknown[0]}",
        )
