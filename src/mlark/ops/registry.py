"""registry: register model versions under a task-level name; move stages and aliases; history; rollback.

Every verb runs in one write transaction: it validates, changes the registry tables and records
each change in ``registry_events`` (who, when, from, to, why) together, so a refused request
changes nothing and the record never disagrees with the state. Value types and the rules
(stages, aliases, the replay behind rollback) live in :mod:`mlark.registry`.
"""

from __future__ import annotations

import fnmatch
import warnings
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from mlark.core.messages import check_message, vague_message_warning
from mlark.core.names import validate_name
from mlark.core.refs import REGISTRY_SCHEME, RegistryRef, VersionRef, is_registry_ref, parse_any_ref, parse_registry_ref
from mlark.core.types import Version
from mlark.errors import Conflict, InvalidInput, InvalidRef, MlarkError, NotFound
from mlark.lineage import edges
from mlark.meta import catalog
from mlark.registry import lifecycle, store
from mlark.registry import provenance
from mlark.registry.stages import (
    ARCHIVED,
    EXCLUSIVE_STAGES,
    STAGES,
    archive_previous_setting,
    check_alias,
    check_description,
    check_stage,
    check_tags,
    is_stage,
)
from mlark.registry.types import (
    ALIAS,
    DESCRIPTION,
    REGISTERED,
    STAGE,
    TAGS,
    ModelLineage,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
)

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

MODEL_TYPE = "model"

__all__ = [
    "history", "lineage", "list_models", "promote", "register", "remove_alias", "resolve", "rollback", "search",
    "set_alias", "set_description", "set_tags", "show",
]


def _model_name(name: object) -> str:
    return validate_name(name, kind="registered model name")


def _message(message: object) -> str:
    text = check_message(message)
    vague = vague_message_warning(text)
    if vague:
        from mlark.ops.add import VagueMessageWarning

        warnings.warn(vague, VagueMessageWarning, stacklevel=4)
    return text


def _recorded(conn: Any, model: Any, ids: Sequence[str]) -> list[RegistryEvent]:
    return store.events(conn, model, ids=ids) if ids else []


# --------------------------------------------------------------------------- register


def register(repo: "Repo", model: str, version: str | Version, message: str, *, description: str | None = None,
             tags: Mapping[str, str] | None = None) -> int:
    """Register an artifact version of type ``model`` as the next version of registered model ``model``.

    Creates the registered model on first use. Returns the registered version number. The version's
    stage starts as ``development``; its source run is the run that produced it (lineage) or the
    run named in its manifest. A ``registered_as`` lineage edge links the artifact version to it.
    """
    name = _model_name(model)
    text = _message(message)
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


# --------------------------------------------------------------------------- versions of one model


def _version_in(conn: Any, model: Any, version: object) -> ModelVersion:
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
        return _version_in(conn, model, int(text))
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


def _require_live(mv: ModelVersion, what: str) -> None:
    if mv.version_removed:
        raise Conflict(
            f"cannot {what} {mv.ref}: its artifact version {mv.version} was removed",
            ref=mv.ref,
            version=mv.version,
        )


# --------------------------------------------------------------------------- stages


def promote(repo: "Repo", model: str, version: object, stage: str, message: str, *,
            archive_previous: bool | None = None) -> list[RegistryEvent]:
    """Move a registered version to ``stage``; returns the changes recorded (empty if it was already there).

    Production is held by one version at a time: the previous holder is archived, unless
    ``archive_previous=False`` or (when ``archive_previous`` is None) the model's tag
    ``mlark.archive_previous`` is ``false``. Other stages hold any number of versions.
    """
    name = _model_name(model)
    target_stage = check_stage(stage)
    text = _message(message)
    if archive_previous is not None and not isinstance(archive_previous, bool):
        raise InvalidInput("archive_previous must be True, False or None (the model's setting)",
                           field="archive_previous")

    def fn(conn: Any) -> list[RegistryEvent]:
        row = store.get_model(conn, name, lock=True)
        mv = _version_in(conn, row, version)
        if mv.stage == target_stage:
            return []
        if target_stage != ARCHIVED:
            _require_live(mv, f"move to {target_stage}")
        archive = archive_previous if archive_previous is not None else archive_previous_setting(row.tags or {})
        at = store.event_time(conn, row.id, repo.now())
        ids: list[str] = []
        if target_stage in EXCLUSIVE_STAGES and archive:
            for other in store.stage_holders(conn, row.id, target_stage):
                if other.id == mv.id:
                    continue
                ids.append(_move_stage(conn, repo, row, other, ARCHIVED, at,
                                       f"archived: version {mv.number} moved to {target_stage} ({text})"))
        ids.append(_move_stage(conn, repo, row, mv, target_stage, at, text))
        return _recorded(conn, row, ids)

    return repo.db.run_write(fn)


def _move_stage(conn: Any, repo: "Repo", row: Any, mv: ModelVersion, stage: str, at: Any, message: str) -> str:
    store.update_version(conn, mv.id, stage=stage, stage_changed_at=at)
    return store.add_event(conn, model_id=row.id, rmv_id=mv.id, kind=STAGE, field=stage, from_value=mv.stage,
                           to_value=stage, author=repo.author, at=at, message=message)


# --------------------------------------------------------------------------- aliases


def set_alias(repo: "Repo", model: str, version: object, alias: str, message: str) -> list[RegistryEvent]:
    """Point ``alias`` (``champion``, any name but a stage or ``latest``) at a registered version; the move is recorded."""
    name = _model_name(model)
    alias_name = check_alias(alias)
    text = _message(message)

    def fn(conn: Any) -> list[RegistryEvent]:
        row = store.get_model(conn, name, lock=True)
        mv = _version_in(conn, row, version)
        previous = store.alias_target(conn, row.id, alias_name)
        if previous == mv.id:
            return []
        _require_live(mv, f"point @{alias_name} at")
        at = store.event_time(conn, row.id, repo.now())
        return _recorded(conn, row, [_move_alias(conn, repo, row, alias_name, previous, mv.id, at, text)])

    return repo.db.run_write(fn)


def remove_alias(repo: "Repo", model: str, alias: str, message: str | None = None) -> list[RegistryEvent]:
    name = _model_name(model)
    alias_name = check_alias(alias)
    text = _message(message) if message else f"removed @{alias_name}"

    def fn(conn: Any) -> list[RegistryEvent]:
        row = store.get_model(conn, name, lock=True)
        previous = store.alias_target(conn, row.id, alias_name)
        if previous is None:
            known = store.aliases_of_model(conn, row.id)
            raise NotFound(
                f"registered model {name} has no alias {alias_name!r}"
                + (f"; its aliases: {', '.join(known)}" if known else ""),
                kind="alias",
                ref=f"{REGISTRY_SCHEME}{name}@{alias_name}",
            )
        at = store.event_time(conn, row.id, repo.now())
        return _recorded(conn, row, [_move_alias(conn, repo, row, alias_name, previous, None, at, text)])

    return repo.db.run_write(fn)


def _move_alias(conn: Any, repo: "Repo", row: Any, alias: str, previous: str | None, rmv_id: str | None, at: Any,
                message: str) -> str:
    before = None if previous is None else store.version_by_id(conn, previous).number
    after = None if rmv_id is None else store.version_by_id(conn, rmv_id).number
    store.set_alias_target(conn, row.id, alias, rmv_id, now=at)
    return store.add_event(conn, model_id=row.id, rmv_id=rmv_id or previous, kind=ALIAS, field=alias,
                           from_value=None if before is None else str(before),
                           to_value=None if after is None else str(after),
                           author=repo.author, at=at, message=message)


# --------------------------------------------------------------------------- rollback


def rollback(repo: "Repo", model: str, stage_or_alias: str, message: str | None = None) -> list[RegistryEvent]:
    """Move a stage or an alias back to the version(s) that held it before its last move.

    Read from the audit record; the rollback is itself recorded (so a second rollback undoes the
    first). A stage: the versions that entered it in its last change go back to the stage they had
    before, and the versions that left it come back. An error, changing nothing, if there is no
    earlier holder.
    """
    name = _model_name(model)
    if not isinstance(stage_or_alias, str) or not stage_or_alias.strip():
        raise InvalidInput(f"rollback takes a stage ({', '.join(STAGES)}) or an alias", field="target")
    target = stage_or_alias.strip()
    stage = check_stage(target) if is_stage(target) else None
    alias_name = None if stage is not None else check_alias(target)
    extra = check_message(message) if message else None

    def fn(conn: Any) -> list[RegistryEvent]:
        row = store.get_model(conn, name, lock=True)
        if stage is not None:
            return _rollback_stage(conn, repo, row, stage, extra)
        assert alias_name is not None
        return _rollback_alias(conn, repo, row, alias_name, extra)

    return repo.db.run_write(fn)


def _rollback_stage(conn: Any, repo: "Repo", row: Any, stage: str, extra: str | None) -> list[RegistryEvent]:
    change = lifecycle.last_change(store.event_rows(conn, row.id, (REGISTERED, STAGE)), stage)
    if change is None:
        raise NotFound(f"no version of {row.name} has ever been in {stage}; nothing to roll back",
                       kind="stage", ref=f"{REGISTRY_SCHEME}{row.name}@{stage}")
    current = {mv.id for mv in store.stage_holders(conn, row.id, stage)}
    if current != set(change.after):
        raise Conflict(  # cannot happen while every change goes through the verbs above
            f"the recorded history of {row.name}@{stage} does not match its state; refusing to roll back",
            ref=f"{REGISTRY_SCHEME}{row.name}@{stage}",
        )
    if not change.before:
        numbers = ", ".join(str(store.version_by_id(conn, r).number) for r in sorted(change.after))
        raise Conflict(
            f"{row.name}@{stage} has no earlier holder: before its last move (to version {numbers} on "
            f"{change.at:%Y-%m-%d %H:%M:%S} UTC) no version was in {stage}; nothing to roll back to",
            ref=f"{REGISTRY_SCHEME}{row.name}@{stage}",
        )
    leaving = [store.version_by_id(conn, r) for r in sorted(change.after - change.before)]
    coming = [store.version_by_id(conn, r) for r in sorted(change.before - change.after)]
    for mv in coming:
        _require_live(mv, f"roll {stage} back to")
    back = ", ".join(str(n) for n in sorted(store.version_by_id(conn, r).number for r in change.before))
    text = f"rollback of {stage} to version {back}" + (f": {extra}" if extra else "")
    at = store.event_time(conn, row.id, repo.now())
    ids = [_move_stage(conn, repo, row, mv, change.stages_before.get(mv.id, ARCHIVED), at, text) for mv in leaving]
    ids += [_move_stage(conn, repo, row, mv, stage, at, text) for mv in coming]
    return _recorded(conn, row, ids)


def _rollback_alias(conn: Any, repo: "Repo", row: Any, alias: str, extra: str | None) -> list[RegistryEvent]:
    moves = store.events(conn, row, kinds=(ALIAS,), field=alias, limit=1)
    if not moves:
        raise NotFound(f"{row.name}@{alias} has never been set; nothing to roll back",
                       kind="alias", ref=f"{REGISTRY_SCHEME}{row.name}@{alias}")
    last = moves[0]
    if last.from_value is None:
        raise Conflict(
            f"{row.name}@{alias} has no earlier holder: it was first set to version {last.to_value} on "
            f"{last.at:%Y-%m-%d %H:%M:%S} UTC; nothing to roll back to (remove it with unalias)",
            ref=f"{REGISTRY_SCHEME}{row.name}@{alias}",
        )
    mv = store.version_by_number(conn, row, int(last.from_value))
    _require_live(mv, f"roll @{alias} back to")
    previous = store.alias_target(conn, row.id, alias)
    text = f"rollback of @{alias} to version {mv.number}" + (f": {extra}" if extra else "")
    at = store.event_time(conn, row.id, repo.now())
    return _recorded(conn, row, [_move_alias(conn, repo, row, alias, previous, mv.id, at, text)])


# --------------------------------------------------------------------------- descriptions and tags


def set_description(repo: "Repo", model: str, description: str | None, message: str, *,
                    version: object = None) -> list[RegistryEvent]:
    """Set the description of the registered model (``version=None``) or of one of its versions."""
    name = _model_name(model)
    desc = check_description(description)
    text = _message(message)

    def fn(conn: Any) -> list[RegistryEvent]:
        row = store.get_model(conn, name, lock=True)
        mv = None if version is None else _version_in(conn, row, version)
        before = row.description if mv is None else mv.description
        if before == desc:
            return []
        at = store.event_time(conn, row.id, repo.now())
        if mv is None:
            store.update_model(conn, row.id, description=desc)
        else:
            store.update_version(conn, mv.id, description=desc)
        event = store.add_event(conn, model_id=row.id, rmv_id=None if mv is None else mv.id, kind=DESCRIPTION,
                                field=None, from_value=before, to_value=desc, author=repo.author, at=at, message=text)
        return _recorded(conn, row, [event])

    return repo.db.run_write(fn)


def set_tags(repo: "Repo", model: str, tags: Mapping[str, str | None], message: str, *,
             version: object = None) -> list[RegistryEvent]:
    """Set (or, with a None value, remove) tags of the registered model or of one of its versions.

    The model tag ``mlark.archive_previous`` (``true``/``false``) sets whether promoting to
    production archives the previous holder.
    """
    name = _model_name(model)
    changes = check_tags(tags, allow_delete=True)
    text = _message(message)

    def fn(conn: Any) -> list[RegistryEvent]:
        row = store.get_model(conn, name, lock=True)
        mv = None if version is None else _version_in(conn, row, version)
        current: dict[str, str] = dict((row.tags if mv is None else mv.tags) or {})
        updated = dict(current)
        for key, value in changes.items():
            if value is None:
                updated.pop(key, None)
            else:
                updated[key] = value
        if updated == current:
            return []
        at = store.event_time(conn, row.id, repo.now())
        if mv is None:
            store.update_model(conn, row.id, tags=updated)
        else:
            store.update_version(conn, mv.id, tags=updated)
        ids = [
            store.add_event(conn, model_id=row.id, rmv_id=None if mv is None else mv.id, kind=TAGS, field=key,
                            from_value=current.get(key), to_value=updated.get(key), author=repo.author, at=at,
                            message=text)
            for key in sorted(set(current) | set(updated))
            if current.get(key) != updated.get(key)
        ]
        return _recorded(conn, row, ids)

    return repo.db.run_write(fn)


# --------------------------------------------------------------------------- reading


def history(repo: "Repo", model: str, *, limit: int | None = None) -> list[RegistryEvent]:
    """Every recorded change of a registered model, newest first."""
    name = _model_name(model)
    with repo.db.read() as conn:
        return store.events(conn, store.get_model(conn, name), limit=limit)


def show(repo: "Repo", model: str) -> RegisteredModel:
    """A registered model with every version: stage, aliases, source run and the versions that run used."""
    name = _model_name(model)
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
