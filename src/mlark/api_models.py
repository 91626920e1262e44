"""The Python API of models and the model registry: ``mlark.load_model``, ``mlark.registry.*``.

An adapter like :mod:`mlark.api` (beside the CLI, above ``ops``): the functions take an optional
``repo=`` (a ``Repo`` or a folder) and otherwise open the repository the way ``mlark.start_run``
does (``MLARK_REPO``, else walking up from the current folder; ``MLARK_AUTHOR`` is who acts),
through :func:`mlark.api._open_repo`, so both share one open repository per process.
``mlark.registry`` exposes the registry functions below under their own names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from mlark.core.types import Version
    from mlark.models.model import Model
    from mlark.ops.repo import Repo
    from mlark.registry.types import ModelLineage, ModelVersion, RegisteredModel, RegistryEvent

RepoArg = "Repo | str | os.PathLike[str] | None"

__all__ = [
    "history", "lineage", "list_models", "load_model", "promote", "register", "remove_alias", "resolve",
    "rollback", "search", "set_alias", "set_description", "set_tags", "show",
]


def _repo(repo: Any) -> "Repo":
    from mlark.api import _open_repo

    return _open_repo(repo)


def load_model(ref_or_path: "str | os.PathLike[str]", trust: str | Iterable[str] | None = None, *,
               repo: Any = None) -> "Model":
    """Load a model: ``models:/churn@production``, ``models:/churn/2``, ``churn-rf@best``, ``churn-rf:v3``, or a folder.

    A reference is materialised through the repository (every chunk verified, kept in the run
    cache), then loaded like a folder: every file is checked against the manifest, and nothing that
    can run code is loaded unless ``trust`` names it (``"pickle"``, or a type name). A path object,
    or a string naming an existing folder, is loaded as a folder without opening a repository.
    """
    from mlark.ops import models

    if models.is_folder(ref_or_path):
        return models.load_model(None, ref_or_path, trust=trust)
    models.target_of(ref_or_path)  # a malformed reference is refused before a repository is looked for
    return models.load_model(_repo(repo), ref_or_path, trust=trust)


# --------------------------------------------------------------------------- registry


def register(model_name: str, version_ref: "str | Version", message: str, description: str | None = None,
             tags: Mapping[str, str] | None = None, *, repo: Any = None) -> int:
    """Register a model version (``"churn-rf:v3"``) as the next version of registered model ``model_name``.

    Returns its number in the registered model (1, 2, ...). The reference must name a version of
    an artifact of type ``model``. The registered model is created on first use.
    """
    from mlark.ops import registry

    return registry.register(_repo(repo), model_name, version_ref, message, description=description, tags=tags)


def promote(model: str, number: Any, stage: str, message: str, archive_previous: bool | None = None, *,
            repo: Any = None) -> "list[RegistryEvent]":
    """Move registered version ``number`` to ``stage`` (development, staging, production, archived).

    Promoting to production archives the version that held it, unless ``archive_previous=False``
    (or, when None, the model's tag ``mlark.archive_previous`` is ``false``). Returns the changes
    recorded (empty when the version was already in that stage).
    """
    from mlark.ops import registry

    return registry.promote(_repo(repo), model, number, stage, message, archive_previous=archive_previous)


def set_alias(model: str, number: Any, alias: str, message: str, *, repo: Any = None) -> "list[RegistryEvent]":
    """Point ``models:/MODEL@ALIAS`` at registered version ``number``; the move is recorded."""
    from mlark.ops import registry

    return registry.set_alias(_repo(repo), model, number, alias, message)


def remove_alias(model: str, alias: str, message: str | None = None, *, repo: Any = None) -> "list[RegistryEvent]":
    from mlark.ops import registry

    return registry.remove_alias(_repo(repo), model, alias, message)


def rollback(model: str, stage_or_alias: str, message: str | None = None, *,
             repo: Any = None) -> "list[RegistryEvent]":
    """Move a stage or alias back to the version(s) that held it before its last move (recorded too)."""
    from mlark.ops import registry

    return registry.rollback(_repo(repo), model, stage_or_alias, message)


def set_description(model: str, description: str | None, message: str, *, version: Any = None,
                    repo: Any = None) -> "list[RegistryEvent]":
    from mlark.ops import registry

    return registry.set_description(_repo(repo), model, description, message, version=version)


def set_tags(model: str, tags: Mapping[str, str | None], message: str, *, version: Any = None,
             repo: Any = None) -> "list[RegistryEvent]":
    """Set tags (a None value removes one) of the registered model or, with ``version=``, of one version."""
    from mlark.ops import registry

    return registry.set_tags(_repo(repo), model, tags, message, version=version)


def history(model: str, *, limit: int | None = None, repo: Any = None) -> "list[RegistryEvent]":
    """Every registration, stage transition, alias move, description and tag change: newest first."""
    from mlark.ops import registry

    return registry.history(_repo(repo), model, limit=limit)


def show(model: str, *, repo: Any = None) -> "RegisteredModel":
    """A registered model: every version with its stage, aliases, source run and the versions that run used."""
    from mlark.ops import registry

    return registry.show(_repo(repo), model)


def list_models(*, repo: Any = None) -> "list[RegisteredModel]":
    """Every registered model, each version with its stage and aliases."""
    from mlark.ops import registry

    return registry.list_models(_repo(repo))


def search(name: str | None = None, *, stage: str | None = None, alias: str | None = None,
           tags: Mapping[str, str] | None = None, repo: Any = None) -> "list[ModelVersion]":
    """Registered versions by model name pattern (``churn*``), stage, alias and tags; each with stage and aliases."""
    from mlark.ops import registry

    return registry.search(_repo(repo), name, stage=stage, alias=alias, tags=tags)


def resolve(ref: str, *, repo: Any = None) -> "ModelVersion":
    """The registered version ``models:/NAME/N`` or ``models:/NAME@ALIAS_OR_STAGE`` names."""
    from mlark.ops import registry

    return registry.resolve(_repo(repo), ref)


def lineage(ref: str, *, repo: Any = None) -> "ModelLineage":
    """From ``models:/churn@production``: the registered version, its artifact version, the run that trained it
    (params, metrics) and the exact versions that run used, in one call."""
    from mlark.ops import registry

    return registry.lineage(_repo(repo), ref)
