"""The checks the registry verbs share: a model name, a change message, the registered version a
request names, and whether that version can still be moved."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

from mlark.core.messages import check_message, vague_message_warning
from mlark.core.names import validate_name
from mlark.core.refs import REGISTRY_SCHEME, VersionRef, is_registry_ref, parse_any_ref, parse_registry_ref
from mlark.errors import Conflict, InvalidInput, InvalidRef, NotFound
from mlark.meta import catalog
from mlark.registry import store
from mlark.registry.types import ModelVersion, RegistryEvent

__all__ = ["checked_message", "model_name", "recorded", "require_live", "version_in"]


def model_name(name: object) -> str:
    return validate_name(name, kind="registered model name")


def checked_message(message: object) -> str:
    """The message of a change, checked; a message that says little warns where the API was called."""
    text = check_message(message)
    vague = vague_message_warning(text)
    if vague:
        from mlark.ops.add import VagueMessageWarning

        warnings.warn(vague, VagueMessageWarning, stacklevel=4)
    return text


def recorded(conn: Any, model: Any, ids: Sequence[str]) -> list[RegistryEvent]:
    """The events just recorded, by id."""
    return store.events(conn, model, ids=ids) if ids else []


def version_in(conn: Any, model: Any, version: object) -> ModelVersion:
    """The registered version of ``model`` that ``version`` names: a number, ``models:/...`` or an artifact version."""
    if isinstance(version, ModelVersion):
        version = version.ref
    if isinstance(version, bool) or version is None:
        raise InvalidInput(f"a registered version number is a positive integer, got {version!r}", field="version")
    if isinstance(version, int):
        if version < 1:
            raise InvalidInput(f"a registered version number is a positive integer, got {version}", field="version")
        return store.version_by_number(conn, model, version)
    if not isinstance(version, str):
        raise InvalidInput(
            f"a registered version is a number (2) or a reference (models:/{model.name}/2), got {type(version).__name__}",
            field="version",
        )
    text = version.strip()
    if text.isdigit():
        return version_in(conn, model, int(text))
    if is_registry_ref(text):
        ref = parse_registry_ref(text)
        if ref.model != model.name:
            missing = "" if store.find_model(conn, ref.model) is not None else (
                f" (and no registered model is named {ref.model!r})")
            raise InvalidInput(
                f"{text} names a version of registered model {ref.model}, not of {model.name}{missing}; "
                f"give a version of {model.name} (a number, or {REGISTRY_SCHEME}{model.name}/N)",
                field="version",
                value=text,
                model=model.name,
            )
        return store.resolve(conn, ref)
    try:
        parsed = parse_any_ref(text)
    except InvalidRef:
        raise InvalidInput(
            f"{text!r} is not a version of registered model {model.name}: give its number (e.g. 2), "
            f"{REGISTRY_SCHEME}{model.name}/N, or an artifact version registered in it (churn-rf:v3)",
            field="version",
            value=text,
        ) from None
    assert isinstance(parsed, VersionRef)
    artifact_version = catalog.resolve(conn, parsed)
    found = store.registrations_of(conn, artifact_version.id)
    for mv in found:
        if mv.model == model.name:
            return mv
    if found:
        elsewhere = ", ".join(f"{mv.model} (version {mv.number})" for mv in found)
        raise InvalidInput(
            f"{artifact_version.ref} is registered in {elsewhere}, not in {model.name}; "
            f"register it in {model.name} first",
            field="version",
            value=text,
            model=model.name,
        )
    raise NotFound(
        f"{artifact_version.ref} is not registered in {model.name}; register it with "
        f"mlark models register {model.name} {artifact_version.ref} -m MESSAGE",
        kind="registered model version",
        ref=artifact_version.ref,
    )


def require_live(mv: ModelVersion, what: str) -> None:
    if mv.version_removed:
        raise Conflict(
            f"cannot {what} {mv.ref}: its artifact version {mv.version} was removed",
            ref=mv.ref,
            version=mv.version,
        )
