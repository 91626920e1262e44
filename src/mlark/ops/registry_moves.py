"""Moving stages and aliases of registered versions, and rolling a move back from the audit record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlark.core.messages import check_message
from mlark.core.refs import REGISTRY_SCHEME
from mlark.errors import Conflict, InvalidInput, NotFound
from mlark.ops.registry_checks import checked_message, model_name, recorded, require_live, version_in
from mlark.registry import lifecycle, store
from mlark.registry.stages import (
    ARCHIVED,
    EXCLUSIVE_STAGES,
    STAGES,
    archive_previous_setting,
    check_alias,
    check_stage,
    is_stage,
)
from mlark.registry.types import ALIAS, REGISTERED, STAGE, ModelVersion, RegistryEvent

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

__all__ = ["promote", "remove_alias", "rollback", "set_alias"]


def promote(repo: "Repo", model: str, version: object, stage: str, message: str, *,
            archive_previous: bool | None = None) -> list[RegistryEvent]:
    """Move a registered version to ``stage``; returns the changes recorded (empty if it was already there).

    Production is held by one version at a time: the previous holder is archived, unless
    ``archive_previous=False`` or (when ``archive_previous`` is None) the model's tag
    ``mlark.archive_previous`` is ``false``. Other stages hold any number of versions.
    """
    name = model_name(model)
    target_stage = check_stage(stage)
    text = checked_message(message)
    if archive_previous is not None and not isinstance(archive_previous, bool):
        raise InvalidInput("archive_previous must be True, False or None (the model's setting)",
                           field="archive_previous")

    def fn(conn: Any) -> list[RegistryEvent]:
        row = store.get_model(conn, name, lock=True)
        mv = version_in(conn, row, version)
        if mv.stage == target_stage:
            return []
        if target_stage != ARCHIVED:
            require_live(mv, f"move to {target_stage}")
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
        return recorded(conn, row, ids)

    return repo.db.run_write(fn)


def _move_stage(conn: Any, repo: "Repo", row: Any, mv: ModelVersion, stage: str, at: Any, message: str) -> str:
    store.update_version(conn, mv.id, stage=stage, stage_changed_at=at)
    return store.add_event(conn, model_id=row.id, rmv_id=mv.id, kind=STAGE, field=stage, from_value=mv.stage,
                           to_value=stage, author=repo.author, at=at, message=message)


# --------------------------------------------------------------------------- aliases


def set_alias(repo: "Repo", model: str, version: object, alias: str, message: str) -> list[RegistryEvent]:
    """Point ``alias`` (``champion``, any name but a stage or ``latest``) at a registered version; the move is recorded."""
    name = model_name(model)
    alias_name = check_alias(alias)
    text = checked_message(message)

    def fn(conn: Any) -> list[RegistryEvent]:
        row = store.get_model(conn, name, lock=True)
        mv = version_in(conn, row, version)
        previous = store.alias_target(conn, row.id, alias_name)
        if previous == mv.id:
            return []
        require_live(mv, f"point @{alias_name} at")
        at = store.event_time(conn, row.id, repo.now())
        return recorded(conn, row, [_move_alias(conn, repo, row, alias_name, previous, mv.id, at, text)])

    return repo.db.run_write(fn)


def remove_alias(repo: "Repo", model: str, alias: str, message: str | None = None) -> list[RegistryEvent]:
    name = model_name(model)
    alias_name = check_alias(alias)
    text = checked_message(message) if message else f"removed @{alias_name}"

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
        return recorded(conn, row, [_move_alias(conn, repo, row, alias_name, previous, None, at, text)])

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
    name = model_name(model)
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
        require_live(mv, f"roll {stage} back to")
    back = ", ".join(str(n) for n in sorted(store.version_by_id(conn, r).number for r in change.before))
    text = f"rollback of {stage} to version {back}" + (f": {extra}" if extra else "")
    at = store.event_time(conn, row.id, repo.now())
    ids = [_move_stage(conn, repo, row, mv, change.stages_before.get(mv.id, ARCHIVED), at, text) for mv in leaving]
    ids += [_move_stage(conn, repo, row, mv, stage, at, text) for mv in coming]
    return recorded(conn, row, ids)


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
    require_live(mv, f"roll @{alias} back to")
    previous = store.alias_target(conn, row.id, alias)
    text = f"rollback of @{alias} to version {mv.number}" + (f": {extra}" if extra else "")
    at = store.event_time(conn, row.id, repo.now())
    return recorded(conn, row, [_move_alias(conn, repo, row, alias, previous, mv.id, at, text)])
