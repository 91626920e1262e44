"""lineage, impact, derive: walk the graph of versions, runs and registered model versions.

Any reference names a node: a version (``churn-data``, ``churn-data:v3``, ``churn-data@best``,
``churn-data:<digest>``), a run (``run:<id or unique prefix>``) or a registered model version
(``models:/churn/2``, ``models:/churn@production``, ``models:/churn@champion``). Each verb reads
in one transaction. The walk itself runs on the in-memory index of
:mod:`mlark.lineage.index`, kept in ``.mlark/cache/lineage.idx``.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from sqlalchemy import Connection, select

from mlark.core.messages import check_message, vague_message_warning
from mlark.core.refs import REF_FORMS, VersionRef, is_registry_ref, parse_ref, parse_registry_ref
from mlark.core.types import Version
from mlark.errors import InvalidInput, InvalidRef, NotFound
from mlark.lineage import edges, impact as impact_mod, nodes, rawsql
from mlark.core.gcpause import gc_paused
from mlark.lineage.graph import REGISTERED_MODEL_VERSION, RUN, VERSION, Derivation, LineageGraph, Node
from mlark.lineage.impact import ImpactReport
from mlark.lineage.index import FILE_NAME, LineageIndex, current, fill_parts
from mlark.lineage.walk import DIRECTIONS, DOWN, Walk, walk
from mlark.meta import catalog
from mlark.meta.schema import lineage_edges
from mlark.registry import store as registry_store
from mlark.tracking import records

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

__all__ = ["NODE_REF_FORMS", "derive", "impact", "lineage", "resolve_node"]

RUN_SCHEME = "run:"
NODE_REF_FORMS = (
    f"a version ({REF_FORMS}), a run (run:<id or unique prefix of 4+ characters>) or a registered model "
    "version (models:/NAME/N, models:/NAME@ALIAS, models:/NAME@STAGE)"
)


# --------------------------------------------------------------------------- references


def resolve_node(conn: Connection, ref: object) -> tuple[str, str]:
    """``(kind, id)`` of the node ``ref`` names: a reference string, a Version, a Run, a registered
    ModelVersion or a lineage Node."""
    if isinstance(ref, Version):
        return VERSION, ref.id
    if isinstance(ref, Node):
        return ref.kind, ref.id
    kind = _object_kind(ref)
    if kind is not None:
        return kind, str(getattr(ref, "id"))
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidRef(f"empty reference; expected {NODE_REF_FORMS}", field="ref", value=str(ref)[:80])
    text = ref.strip()
    if text.startswith(RUN_SCHEME):
        run_id = text[len(RUN_SCHEME):]
        if not run_id:
            raise InvalidRef(f"{text!r} names no run: write run:<id or unique prefix>", field="ref", value=text)
        return RUN, records.resolve_run_id(conn, run_id)
    if is_registry_ref(text):
        return REGISTERED_MODEL_VERSION, registry_store.resolve(conn, parse_registry_ref(text)).id
    try:
        parsed = parse_ref(text)
    except InvalidRef as exc:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise InvalidRef(f"reference {shown!r} is not {NODE_REF_FORMS}", field="ref", value=shown) from exc
    if parsed.path is not None:
        raise InvalidRef(
            f"{text!r} names a path inside a version; lineage is recorded per version: "
            f"use {parsed.name}@{parsed.alias or 'latest'}",
            field="ref", value=text,
        )
    return VERSION, _version_id(conn, parsed)


def _object_kind(ref: object) -> str | None:
    from mlark.ops.runs import Run
    from mlark.registry.types import ModelVersion

    if isinstance(ref, Run):
        return RUN
    if isinstance(ref, ModelVersion):
        return REGISTERED_MODEL_VERSION
    return None


def _version_id(conn: Connection, parsed: VersionRef) -> str:
    """The version's id; a removed version still has lineage, so ``name:vN`` finds it too."""
    try:
        return catalog.resolve(conn, parsed).id
    except NotFound:
        if parsed.number is None:
            raise
        found = rawsql.rows(
            conn,
            "SELECT v.id FROM versions v JOIN artifacts a ON a.id = v.artifact_id WHERE a.name = ? AND v.number = ?",
            (parsed.name, parsed.number),
        )
        if not found:
            raise
        return str(found[0][0])


def _direction(direction: object) -> str:
    if isinstance(direction, str) and direction.strip().lower() in DIRECTIONS:
        return direction.strip().lower()
    raise InvalidInput(
        f"direction must be 'up' (what it was made from) or 'down' (what was made from it), not {direction!r}",
        field="direction", value=str(direction)[:40], allowed=list(DIRECTIONS),
    )


def _depth(depth: object) -> int | None:
    if depth is None:
        return None
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise InvalidInput(
            f"depth must be a whole number of edges, 0 or more (or None for no bound), not {depth!r}",
            field="depth", value=str(depth)[:40],
        )
    return depth


# --------------------------------------------------------------------------- the index


def index_path(repo: "Repo") -> Path:
    return repo.meta_dir / "cache" / FILE_NAME


def _database(repo: "Repo") -> str:
    return f"{repo.config.id}|{repo.db.safe_url}"


def _start(conn: Connection, repo: "Repo", kind: str, node_id: str) -> tuple[LineageIndex, int]:
    """The current index and the start node's position; a node no edge touches gets an index of its own."""
    index = current(conn, index_path(repo), _database(repo))
    position = index.position(node_id)
    if position is not None:
        return index, position
    alone = LineageIndex(database="", ids=[node_id], kinds=bytearray([0]), parts=[""],
                         fwd_off=[0, 0], back_off=[0, 0])
    alone.kinds[0] = alone.kind_names.index(kind)
    fill_parts(conn, alone, [0])
    return alone, 0


# --------------------------------------------------------------------------- verbs


def lineage(repo: "Repo", ref: object, direction: str = "up", depth: int | None = None) -> LineageGraph:
    """The lineage graph from ``ref``: ``up`` what it was made from, ``down`` what was made from it,
    at most ``depth`` edges away (None: all of it)."""
    way = _direction(direction)
    bound = _depth(depth)
    with repo.db.read() as conn, gc_paused():
        kind, node_id = resolve_node(conn, ref)
        index, start = _start(conn, repo, kind, node_id)
        return nodes.graph(conn, index, walk(index, start, way, bound))


def impact(repo: "Repo", ref: object) -> ImpactReport:
    """Everything made from ``ref``, directly or transitively, down to registered model versions and the
    stages and aliases that point at them now."""
    with repo.db.read() as conn, gc_paused():
        kind, node_id = resolve_node(conn, ref)
        index, start = _start(conn, repo, kind, node_id)
        found = walk(index, start, DOWN)
        return impact_mod.build(nodes.graph(conn, index, found), _reached_from(index, found))


def _reached_from(index: LineageIndex, found: Walk) -> Callable[[str], str | None]:
    """For a node id of the walk, the id of the node it was first reached from (None for the start);
    the lookup table is built on first use."""
    table: dict[str, str] = {}

    def lookup(node_id: str) -> str | None:
        if not table:
            ids = index.ids
            table.update(zip([ids[i] for i in found.order[1:]], [ids[i] for i in found.via[1:]]))
        return table.get(node_id)

    return lookup


def derive(repo: "Repo", child_ref: object, parent_ref: object, message: str) -> Derivation:
    """Record that version ``child_ref`` was derived from version ``parent_ref`` (a ``derived_from`` edge),
    saying why in ``message``. Refused if the parent was itself made from the child (lineage stays
    acyclic: the error names the path). Recording the same derivation again changes nothing."""
    text = check_message(message)
    vague = vague_message_warning(text)
    if vague:
        from mlark.ops.add import VagueMessageWarning

        warnings.warn(vague, VagueMessageWarning, stacklevel=2)

    def fn(conn: Connection) -> Derivation:
        found: list[str] = []
        for role, ref in (("child", child_ref), ("parent", parent_ref)):
            kind, node_id = resolve_node(conn, ref)
            if kind != VERSION:
                raise InvalidInput(
                    f"derive links two versions; the {role} {ref!s:.80} is a "
                    f"{'run' if kind == RUN else 'registered model version'} (use a version reference such as "
                    "churn-data:v3)",
                    field=role, value=str(ref)[:80],
                )
            found.append(node_id)
        child_id, parent_id = found
        now = datetime.now(timezone.utc)
        created = edges.record_derived(conn, parent_id, child_id, now=now, message=text, author=repo.author)
        names = nodes.labels(conn, [child_id, parent_id])
        if not created:
            e = lineage_edges.c
            row = conn.execute(select(e.message, e.author, e.created_at).where(
                e.kind == edges.DERIVED_FROM, e.src_id == parent_id, e.dst_id == child_id)).one()
            return Derivation(names[child_id], names[parent_id], child_id, parent_id, row.message or "",
                              row.author or "", row.created_at, created=False)
        return Derivation(names[child_id], names[parent_id], child_id, parent_id, text, repo.author, now, created=True)

    return repo.db.run_write(fn)

