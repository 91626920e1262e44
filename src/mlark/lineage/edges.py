"""Lineage edges: ``used`` (version -> run) and ``produced`` (run -> version), queried both ways;
``registered_as`` (version -> registered model version) is written by the model registry;
``derived_from`` (parent version -> derived version) by ``mlark.lineage.derive``.

Edges are unique per (kind, source, destination): recording one twice is a
no-op. An edge that would close a cycle (a run using a version it produced,
directly or through other runs and derived versions) is refused with
:class:`~mlark.lineage.errors.CycleRefused` (a ``Conflict``) naming the path it
would close (:mod:`mlark.lineage.cycles`); the check and the insert run in the
caller's write transaction, so two writers cannot close a cycle between them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import Connection, select

from mlark.core.ids import new_id
from mlark.lineage import cycles
from mlark.lineage.errors import CycleRefused
from mlark.lineage.nodes import labels
from mlark.meta.db import insert_ignore
from mlark.meta.schema import lineage_edges

USED = "used"
PRODUCED = "produced"
REGISTERED_AS = "registered_as"
DERIVED_FROM = "derived_from"
VERSION = "version"
RUN = "run"
REGISTERED_MODEL_VERSION = "registered_model_version"
_IN_CHUNK = 400
#: What each kind of edge joins: (source type, destination type).
_ENDS = {USED: (VERSION, RUN), PRODUCED: (RUN, VERSION), REGISTERED_AS: (VERSION, REGISTERED_MODEL_VERSION),
         DERIVED_FROM: (VERSION, VERSION)}


def record_used(conn: Connection, version_id: str, run_id: str, *, now: datetime) -> bool:
    """Record that run ``run_id`` used version ``version_id``; False if already recorded."""
    return _add(conn, USED, VERSION, version_id, RUN, run_id, now)


def record_produced(conn: Connection, run_id: str, version_id: str, *, now: datetime) -> bool:
    """Record that run ``run_id`` produced version ``version_id``; False if already recorded."""
    return _add(conn, PRODUCED, RUN, run_id, VERSION, version_id, now)


def record_registered_as(conn: Connection, version_id: str, rmv_id: str, *, now: datetime) -> bool:
    """Record that version ``version_id`` was registered as registered model version ``rmv_id``."""
    return _add(conn, REGISTERED_AS, VERSION, version_id, REGISTERED_MODEL_VERSION, rmv_id, now)


def record_derived(conn: Connection, parent_id: str, child_id: str, *, now: datetime, message: str,
                   author: str) -> bool:
    """Record that version ``child_id`` was derived from version ``parent_id`` (why: ``message``)."""
    return _add(conn, DERIVED_FROM, VERSION, parent_id, VERSION, child_id, now, message=message, author=author)


def _add(conn: Connection, kind: str, src_type: str, src_id: str, dst_type: str, dst_id: str, now: datetime,
         *, message: str | None = None, author: str | None = None) -> bool:
    e = lineage_edges.c
    if conn.execute(
        select(e.id).where(e.kind == kind, e.src_id == src_id, e.dst_id == dst_id)
    ).first() is not None:
        return False
    steps = cycles.would_close(conn, src_id, dst_id)
    if steps is not None:
        raise _cycle_error(conn, kind, src_id, dst_id, steps)
    stmt = insert_ignore(lineage_edges, dialect=conn.dialect.name).values(
        id=new_id(), kind=kind, src_type=src_type, src_id=src_id, dst_type=dst_type, dst_id=dst_id, created_at=now,
        message=message, author=author,
    )
    return bool(conn.execute(stmt).rowcount)


def _cycle_error(conn: Connection, kind: str, src_id: str, dst_id: str,
                 steps: Sequence[tuple[str, str, str]]) -> CycleRefused:
    kinds = {src_id: _ENDS.get(kind, ("", ""))[0], dst_id: _ENDS.get(kind, ("", ""))[1]}
    for step_kind, step_src, step_dst in steps:
        ends = _ENDS.get(step_kind, ("", ""))
        kinds.setdefault(step_src, ends[0])
        kinds.setdefault(step_dst, ends[1])
    names = labels(conn, [src_id, dst_id, *(s[2] for s in steps)], {k: v for k, v in kinds.items() if v})
    src, dst = names[src_id], names[dst_id]
    cycle = cycles.describe(steps, kind, src_id, dst_id, names)
    if kind == USED:
        message = (f"{dst} cannot use {_version(src)}: the run produced it, directly or through what was made from "
                   f"its outputs, and lineage must stay acyclic (cycle: {cycle})")
    elif kind == PRODUCED:
        message = (f"{src} cannot have produced {_version(dst)}: the run used it, directly or through what it was "
                   f"made from, and lineage must stay acyclic (cycle: {cycle})")
    elif kind == DERIVED_FROM and src_id == dst_id:
        message = f"{dst} cannot be derived from itself: lineage must stay acyclic"
    elif kind == DERIVED_FROM:
        message = (f"{dst} cannot be derived from {src}: {src} was itself made from {dst}, and lineage must stay "
                   f"acyclic (cycle: {cycle})")
    else:
        message = f"a {kind} edge from {src} to {dst} would close a cycle, and lineage must stay acyclic ({cycle})"
    path_ids = [dst_id, *(s[2] for s in steps), dst_id]
    return CycleRefused(message, kind=kind, src=src_id, dst=dst_id, cycle=[names.get(i, i) for i in path_ids],
                        cycle_ids=path_ids, cycle_text=cycle)


def _version(label: str) -> str:
    return label if label.startswith(f"{VERSION} ") else f"{VERSION} {label}"


def _step(conn: Connection, ids: Sequence[str], *, forward: bool) -> set[str]:
    e = lineage_edges.c
    here, there = (e.src_id, e.dst_id) if forward else (e.dst_id, e.src_id)
    out: set[str] = set()
    for i in range(0, len(ids), _IN_CHUNK):
        out.update(conn.execute(select(there).where(here.in_(ids[i : i + _IN_CHUNK]))).scalars())
    return out


def _walk(conn: Connection, start: Iterable[str], *, forward: bool) -> set[str]:
    seen: set[str] = set()
    frontier = list(dict.fromkeys(start))
    while frontier:
        found = _step(conn, frontier, forward=forward) - seen
        seen |= found
        frontier = list(found)
    return seen


def downstream(conn: Connection, ids: Iterable[str]) -> set[str]:
    """Every run and version reachable from ``ids`` along the edges (what was made from them)."""
    return _walk(conn, ids, forward=True)


def upstream(conn: Connection, ids: Iterable[str]) -> set[str]:
    """Every run and version ``ids`` were made from."""
    return _walk(conn, ids, forward=False)


def _ids(conn: Connection, kind: str, *, where_src: str | None = None, where_dst: str | None = None) -> list[str]:
    e = lineage_edges.c
    query = select(e.dst_id if where_src is not None else e.src_id).where(e.kind == kind)
    if where_src is not None:
        query = query.where(e.src_id == where_src)
    if where_dst is not None:
        query = query.where(e.dst_id == where_dst)
    return list(conn.execute(query.order_by(e.created_at, e.id)).scalars())


def runs_using(conn: Connection, version_id: str) -> list[str]:
    """Ids of the runs that used ``version_id``, oldest edge first."""
    return _ids(conn, USED, where_src=version_id)


def versions_used(conn: Connection, run_id: str) -> list[str]:
    """Ids of the versions run ``run_id`` used, in the order it used them."""
    return _ids(conn, USED, where_dst=run_id)


def versions_produced(conn: Connection, run_id: str) -> list[str]:
    """Ids of the versions run ``run_id`` produced, in order."""
    return _ids(conn, PRODUCED, where_src=run_id)


def producers_of(conn: Connection, version_id: str) -> list[str]:
    """Ids of the runs that produced ``version_id`` (several when runs logged identical content), oldest first."""
    return _ids(conn, PRODUCED, where_dst=version_id)


def producer_of(conn: Connection, version_id: str) -> str | None:
    """The run that first produced ``version_id``, or None."""
    found = producers_of(conn, version_id)
    return found[0] if found else None
