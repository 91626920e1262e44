"""The registry tables: queries and writes on a Connection inside a transaction the caller holds.

Every change a verb makes goes through :func:`add_event`, in the same transaction as the change
itself, so the audit record and the state can never disagree. Events of one model are strictly
ordered in time: :func:`event_time` returns a time after the model's last event, and every event one
verb writes carries that same time (a verb's changes form one group, which ``rollback`` relies on).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import Connection, Row, and_, func, select, update

from mlark.core.ids import new_id
from mlark.core.refs import REGISTRY_SCHEME, RegistryRef
from mlark.errors import NotFound
from mlark.meta.schema import (
    artifacts,
    registered_model_aliases,
    registered_model_versions,
    registered_models,
    registry_events,
    versions,
)
from mlark.registry.stages import DEVELOPMENT, STAGES, is_stage
from mlark.registry.types import ModelVersion, RegisteredModel, RegistryEvent

rm_t = registered_models
rmv_t = registered_model_versions
alias_t = registered_model_aliases
ev_t = registry_events
_IN_CHUNK = 400


# --------------------------------------------------------------------------- models


def find_model(conn: Connection, name: str, *, lock: bool = False) -> Row[Any] | None:
    query = select(rm_t).where(rm_t.c.name == name)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def get_model(conn: Connection, name: str, *, lock: bool = False) -> Row[Any]:
    row = find_model(conn, name, lock=lock)
    if row is None:
        known = conn.execute(select(rm_t.c.name).order_by(rm_t.c.name).limit(20)).scalars().all()
        hint = (f"; registered models: {', '.join(known)}" if known
                else "; nothing is registered yet (mlark models register NAME REF -m MESSAGE)")
        raise NotFound(f"no registered model named {name!r}{hint}", kind="registered model", name=name)
    return row


def create_model(conn: Connection, name: str, *, author: str, now: datetime, description: str | None = None,
                 tags: dict[str, str] | None = None) -> Row[Any]:
    conn.execute(rm_t.insert().values(id=new_id(), name=name, description=description, tags=dict(tags or {}),
                                      created_at=now, created_by=author, next_number=1))
    return get_model(conn, name, lock=True)


def update_model(conn: Connection, model_id: str, **values: Any) -> None:
    conn.execute(update(rm_t).where(rm_t.c.id == model_id).values(**values))


# --------------------------------------------------------------------------- versions


def _versions_query() -> Any:
    return (
        select(
            rmv_t,
            rm_t.c.name.label("model_name"),
            artifacts.c.name.label("artifact_name"),
            versions.c.number.label("artifact_number"),
            versions.c.digest.label("digest"),
            versions.c.removed_at.label("version_removed_at"),
        )
        .join(rm_t, rm_t.c.id == rmv_t.c.model_id)
        .join(versions, versions.c.id == rmv_t.c.version_id)
        .join(artifacts, artifacts.c.id == versions.c.artifact_id)
    )


def _aliases_by_rmv(conn: Connection, rmv_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in range(0, len(rmv_ids), _IN_CHUNK):
        rows = conn.execute(
            select(alias_t.c.rmv_id, alias_t.c.alias)
            .where(alias_t.c.rmv_id.in_(rmv_ids[i : i + _IN_CHUNK]))
            .order_by(alias_t.c.alias)
        )
        for rmv_id, alias in rows:
            out.setdefault(rmv_id, []).append(alias)
    return out


def _to_versions(conn: Connection, rows: Sequence[Row[Any]]) -> list[ModelVersion]:
    names = _aliases_by_rmv(conn, [r.id for r in rows])
    return [
        ModelVersion(
            id=r.id,
            model=r.model_name,
            number=r.number,
            version=f"{r.artifact_name}:v{r.artifact_number}",
            version_id=r.version_id,
            digest=r.digest,
            stage=r.stage,
            stage_changed_at=r.stage_changed_at,
            aliases=tuple(names.get(r.id, ())),
            description=r.description,
            tags=dict(r.tags or {}),
            created_at=r.created_at,
            created_by=r.created_by,
            source_run_id=r.source_run_id,
            version_removed=r.version_removed_at is not None,
        )
        for r in rows
    ]


def versions_of(conn: Connection, model_id: str) -> list[ModelVersion]:
    """Every version of a registered model, by number."""
    rows = conn.execute(_versions_query().where(rmv_t.c.model_id == model_id).order_by(rmv_t.c.number)).all()
    return _to_versions(conn, rows)


def version_by_id(conn: Connection, rmv_id: str) -> ModelVersion:
    rows = conn.execute(_versions_query().where(rmv_t.c.id == rmv_id)).all()
    if not rows:
        raise NotFound(f"no registered model version with id {rmv_id}", kind="registered model version", id=rmv_id)
    return _to_versions(conn, rows)[0]


def _numbers(conn: Connection, model_id: str) -> list[int]:
    return list(conn.execute(select(rmv_t.c.number).where(rmv_t.c.model_id == model_id)
                             .order_by(rmv_t.c.number)).scalars())


def _number_list(numbers: Sequence[int]) -> str:
    if not numbers:
        return "it has no versions"
    if len(numbers) > 12:
        return f"its versions are 1 to {numbers[-1]}"
    return f"its versions: {', '.join(str(n) for n in numbers)}"


def version_by_number(conn: Connection, model: Row[Any], number: int) -> ModelVersion:
    rows = conn.execute(_versions_query().where(rmv_t.c.model_id == model.id, rmv_t.c.number == number)).all()
    if not rows:
        raise NotFound(
            f"registered model {model.name} has no version {number}; {_number_list(_numbers(conn, model.id))}",
            kind="registered model version",
            ref=f"{REGISTRY_SCHEME}{model.name}/{number}",
        )
    return _to_versions(conn, rows)[0]


def registrations_of(conn: Connection, version_id: str) -> list[ModelVersion]:
    """Where an artifact version is registered (in any model)."""
    rows = conn.execute(_versions_query().where(rmv_t.c.version_id == version_id)
                        .order_by(rm_t.c.name, rmv_t.c.number)).all()
    return _to_versions(conn, rows)


def insert_version(conn: Connection, model: Row[Any], *, version_id: str, author: str, now: datetime,
                   description: str | None, tags: dict[str, str], source_run_id: str | None) -> tuple[str, int]:
    number = int(model.next_number)
    rmv_id = new_id()
    conn.execute(rmv_t.insert().values(
        id=rmv_id, model_id=model.id, number=number, version_id=version_id, stage=DEVELOPMENT,
        stage_changed_at=now, description=description, tags=dict(tags), created_at=now, created_by=author,
        source_run_id=source_run_id,
    ))
    update_model(conn, model.id, next_number=number + 1)
    return rmv_id, number


def update_version(conn: Connection, rmv_id: str, **values: Any) -> None:
    conn.execute(update(rmv_t).where(rmv_t.c.id == rmv_id).values(**values))


def stage_holders(conn: Connection, model_id: str, stage: str) -> list[ModelVersion]:
    """Versions in ``stage``, the one that entered it last first."""
    rows = conn.execute(
        _versions_query()
        .where(rmv_t.c.model_id == model_id, rmv_t.c.stage == stage)
        .order_by(rmv_t.c.stage_changed_at.desc(), rmv_t.c.number.desc())
    ).all()
    return _to_versions(conn, rows)


# --------------------------------------------------------------------------- aliases


def alias_target(conn: Connection, model_id: str, alias: str) -> str | None:
    return conn.execute(
        select(alias_t.c.rmv_id).where(alias_t.c.model_id == model_id, alias_t.c.alias == alias)
    ).scalar()


def aliases_of_model(conn: Connection, model_id: str) -> dict[str, int]:
    rows = conn.execute(
        select(alias_t.c.alias, rmv_t.c.number)
        .join(rmv_t, rmv_t.c.id == alias_t.c.rmv_id)
        .where(alias_t.c.model_id == model_id)
        .order_by(alias_t.c.alias)
    )
    return {alias: number for alias, number in rows}


def set_alias_target(conn: Connection, model_id: str, alias: str, rmv_id: str | None, *, now: datetime) -> None:
    where = and_(alias_t.c.model_id == model_id, alias_t.c.alias == alias)
    previous = alias_target(conn, model_id, alias)
    if rmv_id is None:
        conn.execute(alias_t.delete().where(where))
    elif previous is None:
        conn.execute(alias_t.insert().values(model_id=model_id, alias=alias, rmv_id=rmv_id, updated_at=now))
    else:
        conn.execute(update(alias_t).where(where).values(rmv_id=rmv_id, updated_at=now))


# --------------------------------------------------------------------------- resolving references


def resolve(conn: Connection, ref: RegistryRef) -> ModelVersion:
    """The registered version ``ref`` names: by number, ``latest``, a stage (its most recent holder) or an alias."""
    model = get_model(conn, ref.model)
    if ref.number is not None:
        return version_by_number(conn, model, ref.number)
    name = ref.effective_alias
    assert name is not None
    if name == "latest":
        numbers = _numbers(conn, model.id)
        if not numbers:
            raise NotFound(f"registered model {model.name} has no versions", ref=str(ref))
        return version_by_number(conn, model, numbers[-1])
    if is_stage(name):
        holders = stage_holders(conn, model.id, name.lower())
        if not holders:
            raise NotFound(
                f"no version of registered model {model.name} is in {name.lower()}; {_stage_summary(conn, model)}",
                kind="stage",
                ref=str(ref),
            )
        return holders[0]
    target = alias_target(conn, model.id, name)
    if target is None:
        known = aliases_of_model(conn, model.id)
        hint = f"its aliases: {', '.join(known)}" if known else "it has no aliases"
        raise NotFound(
            f"registered model {model.name} has no alias {name!r} ({hint}; stages: {', '.join(STAGES)})",
            kind="alias",
            ref=str(ref),
        )
    return version_by_id(conn, target)


def _stage_summary(conn: Connection, model: Row[Any]) -> str:
    rows = conn.execute(select(rmv_t.c.stage, rmv_t.c.number).where(rmv_t.c.model_id == model.id)
                        .order_by(rmv_t.c.number)).all()
    if not rows:
        return "it has no versions"
    by_stage: dict[str, list[str]] = {}
    for stage, number in rows:
        by_stage.setdefault(stage, []).append(str(number))
    return "versions by stage: " + "; ".join(f"{s}: {', '.join(by_stage[s])}" for s in STAGES if s in by_stage)


# --------------------------------------------------------------------------- events


def event_time(conn: Connection, model_id: str, now: datetime) -> datetime:
    """``now``, or just after the model's last event if the clock has not moved past it."""
    last = conn.execute(
        select(ev_t.c.at).where(ev_t.c.model_id == model_id).order_by(ev_t.c.at.desc()).limit(1)
    ).scalar()
    if last is not None and now <= last:
        return last + timedelta(microseconds=1)
    return now


def add_event(conn: Connection, *, model_id: str, rmv_id: str | None, kind: str, field: str | None,
              from_value: str | None, to_value: str | None, author: str, at: datetime, message: str) -> str:
    event_id = new_id()
    conn.execute(ev_t.insert().values(
        id=event_id, model_id=model_id, rmv_id=rmv_id, kind=kind, field=field, from_value=from_value,
        to_value=to_value, author=author, at=at, message=message,
    ))
    return event_id


def events(conn: Connection, model: Row[Any], *, kinds: Iterable[str] | None = None, field: str | None = None,
           ids: Sequence[str] | None = None, newest_first: bool = True, limit: int | None = None
           ) -> list[RegistryEvent]:
    query = (
        select(
            ev_t,
            rmv_t.c.number.label("number"),
            artifacts.c.name.label("artifact_name"),
            versions.c.number.label("artifact_number"),
        )
        .outerjoin(rmv_t, rmv_t.c.id == ev_t.c.rmv_id)
        .outerjoin(versions, versions.c.id == rmv_t.c.version_id)
        .outerjoin(artifacts, artifacts.c.id == versions.c.artifact_id)
        .where(ev_t.c.model_id == model.id)
    )
    if kinds is not None:
        query = query.where(ev_t.c.kind.in_(list(kinds)))
    if field is not None:
        query = query.where(ev_t.c.field == field)
    if ids is not None:
        query = query.where(ev_t.c.id.in_(list(ids)))
    if newest_first:
        query = query.order_by(ev_t.c.at.desc(), ev_t.c.id.desc())
    else:
        query = query.order_by(ev_t.c.at, ev_t.c.id)
    if limit is not None:
        query = query.limit(limit)
    return [
        RegistryEvent(
            id=r.id,
            model=model.name,
            number=r.number,
            version=None if r.artifact_name is None else f"{r.artifact_name}:v{r.artifact_number}",
            kind=r.kind,
            field=r.field,
            from_value=r.from_value,
            to_value=r.to_value,
            author=r.author,
            at=r.at,
            message=r.message,
        )
        for r in conn.execute(query)
    ]


def event_rows(conn: Connection, model_id: str, kinds: Iterable[str]) -> list[Row[Any]]:
    """Raw events of some kinds, oldest first (for replaying the stage history)."""
    return list(conn.execute(
        select(ev_t).where(ev_t.c.model_id == model_id, ev_t.c.kind.in_(list(kinds))).order_by(ev_t.c.at, ev_t.c.id)
    ))


# --------------------------------------------------------------------------- listing


def _to_model(row: Row[Any], model_versions: Sequence[ModelVersion]) -> RegisteredModel:
    return RegisteredModel(
        id=row.id,
        name=row.name,
        description=row.description,
        tags=dict(row.tags or {}),
        created_at=row.created_at,
        created_by=row.created_by,
        versions=tuple(model_versions),
    )


def load_model(conn: Connection, row: Row[Any]) -> RegisteredModel:
    return _to_model(row, versions_of(conn, row.id))


def list_models(conn: Connection) -> list[RegisteredModel]:
    rows = conn.execute(select(rm_t).order_by(rm_t.c.name)).all()
    every = conn.execute(_versions_query().order_by(rm_t.c.name, rmv_t.c.number)).all()
    by_model: dict[str, list[ModelVersion]] = {}
    for mv, row in zip(_to_versions(conn, every), every):
        by_model.setdefault(row.model_id, []).append(mv)
    return [_to_model(r, by_model.get(r.id, [])) for r in rows]


def count_versions(conn: Connection, model_id: str) -> int:
    return int(conn.execute(select(func.count()).select_from(rmv_t).where(rmv_t.c.model_id == model_id)).scalar() or 0)
