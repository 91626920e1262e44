"""Artifacts, versions and aliases: the queries behind every verb. Each function takes a Connection
inside a transaction the caller holds, so a verb can do several of them atomically."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Sequence

from sqlalchemy import Connection, Row, and_, func, select, update

from mlark.core.ids import new_id
from mlark.core.refs import VersionRef
from mlark.core.types import AliasMove, Artifact, Version
from mlark.errors import Conflict, InvalidRef, NotFound
from mlark.meta.schema import alias_log, aliases, artifacts, versions


def find_artifact(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(select(artifacts).where(artifacts.c.name == name)).first()


def get_artifact(conn: Connection, name: str) -> Row[Any]:
    row = find_artifact(conn, name)
    if row is None:
        known = conn.execute(select(artifacts.c.name).order_by(artifacts.c.name).limit(20)).scalars().all()
        hint = f"; known artifacts: {', '.join(known)}" if known else "; the repository has no artifacts yet"
        raise NotFound(f"no artifact named {name!r}{hint}", kind="artifact", name=name)
    return row


def lock_artifact(conn: Connection, name: str, *, type: str | None, author: str, now: datetime) -> Row[Any]:
    """The artifact row, created if needed, locked for this transaction (version numbering)."""
    row = conn.execute(select(artifacts).where(artifacts.c.name == name).with_for_update()).first()
    if row is None:
        conn.execute(
            artifacts.insert().values(
                id=new_id(), name=name, type=type or "dataset", created_at=now, created_by=author, next_number=1
            )
        )
        row = conn.execute(select(artifacts).where(artifacts.c.name == name).with_for_update()).one()
    elif type is not None and type != row.type:
        raise Conflict(
            f"artifact {name!r} has type {row.type!r}, not {type!r}; an artifact keeps the type of its first version",
            name=name,
            type=row.type,
        )
    return row


def list_artifacts(conn: Connection) -> list[Artifact]:
    counts = (
        select(
            versions.c.artifact_id,
            func.count().label("n"),
            func.max(versions.c.number).label("latest"),
        )
        .where(versions.c.removed_at.is_(None))
        .group_by(versions.c.artifact_id)
        .subquery()
    )
    rows = conn.execute(
        select(artifacts, counts.c.n, counts.c.latest)
        .outerjoin(counts, counts.c.artifact_id == artifacts.c.id)
        .order_by(artifacts.c.name)
    )
    return [
        Artifact(r.id, r.name, r.type, r.created_at, r.created_by, int(r.n or 0), r.latest) for r in rows
    ]


def _versions_query() -> Any:
    parent = versions.alias("parent")
    return select(
        versions,
        artifacts.c.name.label("artifact_name"),
        artifacts.c.type.label("artifact_type"),
        parent.c.number.label("parent_number"),
    ).join(artifacts, artifacts.c.id == versions.c.artifact_id).outerjoin(parent, parent.c.id == versions.c.parent_id)


def _to_versions(conn: Connection, rows: Sequence[Row[Any]]) -> list[Version]:
    names = aliases_of(conn, [r.id for r in rows])
    return [
        Version(
            id=r.id,
            artifact_id=r.artifact_id,
            name=r.artifact_name,
            type=r.artifact_type,
            number=r.number,
            digest=r.digest,
            message=r.message,
            author=r.author,
            created_at=r.created_at,
            size=r.size,
            new_bytes=r.new_bytes,
            file_count=r.file_count,
            metadata=dict(r.metadata or {}),
            tags=tuple(r.tags or ()),
            parent_number=r.parent_number,
            aliases=tuple(names.get(r.id, ())),
            removed_at=r.removed_at,
        )
        for r in rows
    ]


def aliases_of(conn: Connection, version_ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(version_ids)
    out: dict[str, list[str]] = {}
    for i in range(0, len(ids), 500):
        rows = conn.execute(
            select(aliases.c.version_id, aliases.c.name)
            .where(aliases.c.version_id.in_(ids[i : i + 500]))
            .order_by(aliases.c.name)
        )
        for version_id, name in rows:
            out.setdefault(version_id, []).append(name)
    return out


def version_by_id(conn: Connection, version_id: str) -> Version:
    rows = conn.execute(_versions_query().where(versions.c.id == version_id)).all()
    if not rows:
        raise NotFound(f"no version with id {version_id}", kind="version", id=version_id)
    return _to_versions(conn, rows)[0]


def find_by_digest(conn: Connection, artifact_id: str, digest: str) -> Version | None:
    rows = conn.execute(
        _versions_query()
        .where(versions.c.artifact_id == artifact_id, versions.c.digest == digest, versions.c.removed_at.is_(None))
        .order_by(versions.c.number)
        .limit(1)
    ).all()
    return _to_versions(conn, rows)[0] if rows else None


def resolve(conn: Connection, ref: VersionRef) -> Version:
    art = get_artifact(conn, ref.name)
    query = _versions_query().where(versions.c.artifact_id == art.id)
    alias = ref.effective_alias
    if ref.number is not None:
        rows = conn.execute(query.where(versions.c.number == ref.number)).all()
        if not rows:
            last = conn.execute(select(func.max(versions.c.number)).where(versions.c.artifact_id == art.id)).scalar()
            raise NotFound(
                f"{ref} does not exist; {ref.name} has versions v1 to v{last}" if last else f"{ref.name} has no versions",
                kind="version",
                ref=str(ref),
            )
    elif ref.digest_prefix is not None:
        rows = conn.execute(query.where(versions.c.digest.like(ref.digest_prefix + "%")).limit(2)).all()
        if not rows:
            raise NotFound(f"no version of {ref.name} has a digest starting {ref.digest_prefix}", ref=str(ref))
        if len(rows) > 1:
            raise InvalidRef(
                f"digest prefix {ref.digest_prefix} matches several versions of {ref.name}; give more characters",
                ref=str(ref),
            )
    else:
        assert alias is not None
        target = conn.execute(
            select(aliases.c.version_id).where(aliases.c.artifact_id == art.id, aliases.c.name == alias)
        ).scalar()
        if target is None:
            known = conn.execute(
                select(aliases.c.name).where(aliases.c.artifact_id == art.id).order_by(aliases.c.name)
            ).scalars().all()
            raise NotFound(
                f"{ref.name} has no alias {alias!r}" + (f"; its aliases: {', '.join(known)}" if known else ""),
                kind="alias",
                ref=str(ref),
            )
        rows = conn.execute(query.where(versions.c.id == target)).all()
    version = _to_versions(conn, rows)[0]
    if version.removed_at is not None:
        raise NotFound(f"{version.ref} was removed on {version.removed_at:%Y-%m-%d %H:%M} UTC", ref=str(ref))
    return version


def history(conn: Connection, name: str, *, include_removed: bool = False, limit: int | None = None) -> list[Version]:
    art = get_artifact(conn, name)
    query = _versions_query().where(versions.c.artifact_id == art.id).order_by(versions.c.number.desc())
    if not include_removed:
        query = query.where(versions.c.removed_at.is_(None))
    if limit is not None:
        query = query.limit(limit)
    return _to_versions(conn, conn.execute(query).all())


def insert_version(
    conn: Connection,
    art: Row[Any],
    *,
    digest: str,
    message: str,
    author: str,
    now: datetime,
    metadata: dict[str, Any],
    tags: Sequence[str],
    size: int,
    new_bytes: int,
    file_count: int,
) -> str:
    number = art.next_number
    parent = conn.execute(
        select(versions.c.id)
        .where(versions.c.artifact_id == art.id, versions.c.removed_at.is_(None))
        .order_by(versions.c.number.desc())
        .limit(1)
    ).scalar()
    version_id = new_id()
    conn.execute(
        versions.insert().values(
            id=version_id,
            artifact_id=art.id,
            number=number,
            digest=digest,
            message=message,
            author=author,
            created_at=now,
            metadata=metadata,
            tags=list(tags),
            parent_id=parent,
            size=size,
            new_bytes=new_bytes,
            file_count=file_count,
        )
    )
    conn.execute(update(artifacts).where(artifacts.c.id == art.id).values(next_number=number + 1))
    return version_id


def current_alias(conn: Connection, artifact_id: str, alias: str) -> str | None:
    return conn.execute(
        select(aliases.c.version_id).where(aliases.c.artifact_id == artifact_id, aliases.c.name == alias)
    ).scalar()


def move_alias(
    conn: Connection,
    artifact_id: str,
    alias: str,
    version_id: str | None,
    *,
    author: str,
    now: datetime,
    message: str,
) -> bool:
    """Point alias at version_id (None removes it) and log the move. False if nothing changed."""
    previous = current_alias(conn, artifact_id, alias)
    if previous == version_id:
        return False
    where = and_(aliases.c.artifact_id == artifact_id, aliases.c.name == alias)
    if version_id is None:
        conn.execute(aliases.delete().where(where))
    elif previous is None:
        conn.execute(aliases.insert().values(artifact_id=artifact_id, name=alias, version_id=version_id, updated_at=now))
    else:
        conn.execute(update(aliases).where(where).values(version_id=version_id, updated_at=now))
    conn.execute(
        alias_log.insert().values(
            id=new_id(),
            artifact_id=artifact_id,
            alias=alias,
            from_version_id=previous,
            to_version_id=version_id,
            author=author,
            at=now,
            message=message,
        )
    )
    return True


def alias_moves(conn: Connection, name: str, alias: str | None = None) -> list[AliasMove]:
    art = get_artifact(conn, name)
    src = versions.alias("src")
    dst = versions.alias("dst")
    query = (
        select(alias_log, src.c.number.label("from_number"), dst.c.number.label("to_number"))
        .outerjoin(src, src.c.id == alias_log.c.from_version_id)
        .outerjoin(dst, dst.c.id == alias_log.c.to_version_id)
        .where(alias_log.c.artifact_id == art.id)
        .order_by(alias_log.c.at.desc(), alias_log.c.id.desc())
    )
    if alias is not None:
        query = query.where(alias_log.c.alias == alias)
    return [
        AliasMove(r.id, name, r.alias, r.from_number, r.to_number, r.author, r.at, r.message)
        for r in conn.execute(query)
    ]


def alias_targets(conn: Connection, artifact_id: str) -> dict[str, int]:
    rows = conn.execute(
        select(aliases.c.name, versions.c.number)
        .join(versions, versions.c.id == aliases.c.version_id)
        .where(aliases.c.artifact_id == artifact_id)
        .order_by(aliases.c.name)
    )
    return {name: number for name, number in rows}


def mark_removed(conn: Connection, version_id: str, *, author: str, now: datetime) -> None:
    conn.execute(update(versions).where(versions.c.id == version_id).values(removed_at=now, removed_by=author))


def live_digests(conn: Connection) -> set[str]:
    """Tree digests of every version that is not removed (the roots of reachability)."""
    return set(conn.execute(select(versions.c.digest).where(versions.c.removed_at.is_(None))).scalars())


def all_versions(conn: Connection) -> list[Version]:
    return _to_versions(conn, conn.execute(_versions_query().order_by(versions.c.artifact_id, versions.c.number)).all())
