"""Reading the registry: history, registered models and their versions, search, references, lineage."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Mapping

from mlark.core.refs import RegistryRef, parse_registry_ref
from mlark.core.types import Version
from mlark.errors import InvalidInput, NotFound
from mlark.meta import catalog
from mlark.ops.registry_checks import model_name
from mlark.registry import provenance, store
from mlark.registry.stages import check_stage, check_tags
from mlark.registry.types import ModelLineage, ModelVersion, RegisteredModel, RegistryEvent

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

__all__ = ["history", "lineage", "list_models", "resolve", "resolve_version", "search", "show"]


def history(repo: "Repo", model: str, *, limit: int | None = None) -> list[RegistryEvent]:
    """Every recorded change of a registered model, newest first."""
    name = model_name(model)
    with repo.db.read() as conn:
        return store.events(conn, store.get_model(conn, name), limit=limit)


def show(repo: "Repo", model: str) -> RegisteredModel:
    """A registered model with every version: stage, aliases, source run and the versions that run used."""
    name = model_name(model)
    with repo.db.read() as conn:
        row = store.get_model(conn, name)
        found = store.load_model(conn, row)
        filled = []
        for mv in found.versions:
            used = provenance.inputs_of(conn, mv.source_run_id)
            filled.append(_with_inputs(mv, tuple(v.ref for v in used)))
        return RegisteredModel(found.id, found.name, found.description, found.tags, found.created_at,
                               found.created_by, tuple(filled))


def _with_inputs(mv: ModelVersion, inputs: tuple[str, ...]) -> ModelVersion:
    from dataclasses import replace

    return replace(mv, inputs=inputs)


def list_models(repo: "Repo") -> list[RegisteredModel]:
    """Every registered model, with each version's stage and aliases."""
    with repo.db.read() as conn:
        return store.list_models(conn)


def search(repo: "Repo", name: str | None = None, *, stage: str | None = None, alias: str | None = None,
           tags: Mapping[str, str] | None = None) -> list[ModelVersion]:
    """Registered versions whose model name matches ``name`` (a glob: ``churn*``), in ``stage``, holding
    ``alias``, with every tag in ``tags`` (model or version tags). Each carries its stage and aliases."""
    wanted_stage = None if stage is None else check_stage(stage)
    if name is not None and (not isinstance(name, str) or not name or len(name) > 256):
        raise InvalidInput("name must be a non-empty pattern of at most 256 characters (e.g. 'churn*')",
                           field="name")
    wanted_tags = {k: v for k, v in check_tags(tags).items() if v is not None}
    out = []
    for model in list_models(repo):
        if name is not None and not fnmatch.fnmatchcase(model.name, name):
            continue
        for mv in model.versions:
            if wanted_stage is not None and mv.stage != wanted_stage:
                continue
            if alias is not None and alias not in mv.aliases:
                continue
            merged = {**model.tags, **mv.tags}
            if any(merged.get(k) != v for k, v in wanted_tags.items()):
                continue
            out.append(mv)
    return out


def resolve(repo: "Repo", ref: str) -> ModelVersion:
    """The registered version a ``models:/NAME/N``, ``models:/NAME@ALIAS_OR_STAGE`` reference names."""
    parsed = parse_registry_ref(ref, scheme_optional=True)
    with repo.db.read() as conn:
        return store.resolve(conn, parsed)


def resolve_version(repo: "Repo", ref: RegistryRef) -> Version:
    """The artifact version behind a registered model reference (refusing one that was removed)."""
    with repo.db.read() as conn:
        mv = store.resolve(conn, ref)
        version = catalog.version_by_id(conn, mv.version_id)
    if version.removed_at is not None:
        raise NotFound(
            f"{ref} is {version.ref}, which was removed on {version.removed_at:%Y-%m-%d %H:%M} UTC",
            ref=str(ref),
            version=version.ref,
        )
    return version


def lineage(repo: "Repo", ref: str) -> ModelLineage:
    """From ``models:/churn@production`` (or ``churn@production``, ``churn/2``): the registered version, its
    artifact version, the run that trained it with its params and metrics, and the exact versions that run used."""
    parsed = parse_registry_ref(ref, scheme_optional=True)
    with repo.db.read() as conn:
        mv = store.resolve(conn, parsed)
        return provenance.model_lineage(conn, str(parsed), mv)
