"""Registering an artifact version of type ``model`` as the next version of a registered model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from mlark.core.refs import RegistryRef, VersionRef, parse_any_ref
from mlark.core.types import Version
from mlark.errors import Conflict, InvalidInput, InvalidRef, MlarkError, NotFound
from mlark.lineage import edges
from mlark.meta import catalog
from mlark.ops.registry_checks import checked_message, model_name
from mlark.registry import provenance, store
from mlark.registry.stages import check_description, check_tags
from mlark.registry.types import REGISTERED

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

MODEL_TYPE = "model"

__all__ = ["MODEL_TYPE", "register"]


def register(repo: "Repo", model: str, version: str | Version, message: str, *, description: str | None = None,
             tags: Mapping[str, str] | None = None) -> int:
    """Register an artifact version of type ``model`` as the next version of registered model ``model``.

    Creates the registered model on first use. Returns the registered version number. The version's
    stage starts as ``development``; its source run is the run that produced it (lineage) or the
    run named in its manifest. A ``registered_as`` lineage edge links the artifact version to it.
    """
    name = model_name(model)
    text = checked_message(message)
    desc = check_description(description)
    tag_values = {k: v for k, v in check_tags(tags).items() if v is not None}
    target = _parse_version_arg(version)
    manifest_run_id = _manifest_run_id(repo, target)

    def fn(conn: Any) -> int:
        artifact_version = _artifact_version(conn, target)
        if artifact_version.type != MODEL_TYPE:
            raise InvalidInput(
                f"{artifact_version.ref} is a version of {artifact_version.type!r} artifact {artifact_version.name}, "
                f"not of a model: only versions of type {MODEL_TYPE!r} can be registered "
                "(log one with run.log_model, or mlark add PATH --type model)",
                field="version",
                ref=artifact_version.ref,
                type=artifact_version.type,
            )
        now = repo.now()
        row = store.find_model(conn, name, lock=True)
        if row is None:
            row = store.create_model(conn, name, author=repo.author, now=now)
        for mv in store.registrations_of(conn, artifact_version.id):
            if mv.model == name:
                raise Conflict(
                    f"{artifact_version.ref} is already registered in {name} as version {mv.number} ({mv.ref}); "
                    "a version is registered in a model once",
                    ref=mv.ref,
                    version=artifact_version.ref,
                )
        at = store.event_time(conn, row.id, now)
        run_id = provenance.source_run(conn, artifact_version, manifest_run_id)
        rmv_id, number = store.insert_version(conn, row, version_id=artifact_version.id, author=repo.author, now=at,
                                              description=desc, tags=tag_values, source_run_id=run_id)
        store.add_event(conn, model_id=row.id, rmv_id=rmv_id, kind=REGISTERED, field=None, from_value=None,
                        to_value=str(number), author=repo.author, at=at, message=text)
        edges.record_registered_as(conn, artifact_version.id, rmv_id, now=at)
        return number

    return repo.db.run_write(fn)


def _manifest_run_id(repo: "Repo", target: VersionRef | RegistryRef | Version) -> str | None:
    """The ``run_id`` in the stored ``mlark-model.json`` of a model version that no run is known to have
    produced (added with ``mlark add``); None when there is none or it cannot be read. Read before the
    write transaction; the bytes are verified like every read."""
    from mlark.models.manifest import MANIFEST_NAME, Manifest

    try:
        with repo.db.read() as conn:
            version = _artifact_version(conn, target)
            if version.type != MODEL_TYPE or edges.producer_of(conn, version.id) is not None:
                return None
            if isinstance(version.metadata, dict) and version.metadata.get("run_id"):
                return None
        entry = repo.tree(version).get(MANIFEST_NAME)
        if entry is None or entry.type != "file" or entry.size > 1 << 20:
            return None
        data = b"".join(repo.read_file(version.ref, MANIFEST_NAME))
        return Manifest.decode(data).run_id
    except MlarkError:  # not a model folder, a bad manifest, no such version: register() says what is wrong
        return None


def _parse_version_arg(version: object) -> VersionRef | RegistryRef | Version:
    if isinstance(version, Version):
        return version
    if not isinstance(version, str):
        raise InvalidRef(
            f"the version to register must be a reference such as churn-rf:v3 or a Version, got {type(version).__name__}",
            field="version",
        )
    parsed = parse_any_ref(version)
    if isinstance(parsed, VersionRef) and parsed.path is not None:
        raise InvalidRef(
            f"{version!r} names a path inside a version; register the whole version ({parsed.name}@{parsed.alias or 'latest'})",
            field="version",
            value=version,
        )
    return parsed


def _artifact_version(conn: Any, target: VersionRef | RegistryRef | Version) -> Version:
    if isinstance(target, Version):
        version = catalog.version_by_id(conn, target.id)
    elif isinstance(target, RegistryRef):
        version = catalog.version_by_id(conn, store.resolve(conn, target).version_id)
    else:
        return catalog.resolve(conn, target)  # refuses removed versions
    if version.removed_at is not None:
        raise NotFound(f"{version.ref} was removed on {version.removed_at:%Y-%m-%d %H:%M} UTC", ref=version.ref)
    return version
