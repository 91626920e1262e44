"""Turning walked node ids into :class:`~mlark.lineage.graph.Node` values: names, numbers, labels.

What never changes (a version's artifact and number, a registered version's model and number)
comes from the index; what does (run names and status, aliases, stages, removal) is read here,
in the caller's transaction, with one query per table for the whole graph.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Iterable, Sequence

from sqlalchemy import Connection

from mlark.lineage import rawsql
from mlark.lineage.graph import REGISTERED_MODEL_VERSION, RUN, VERSION, LineageGraph, Node
from mlark.lineage.index import LineageIndex
from mlark.lineage.walk import Walk

RUN_ID_WIDTH = 8
REGISTRY_SCHEME = "models:/"

# Values are built from complete tuples in C (``tuple.__new__``): a Python-level constructor per
# node and per edge is most of the time of a 100,000-node walk.
_new_node = partial(tuple.__new__, Node)
_NO_ALIASES: tuple[str, ...] = ()


def run_id_width(run_ids: Iterable[str], minimum: int = RUN_ID_WIDTH) -> int:
    """How many leading characters tell these run ids apart (at least ``minimum``).

    Ids are UUIDv7, whose first characters are a timestamp: runs started within a minute of
    each other share the first 8, so a set of them needs a few more.
    """
    ids = set(run_ids)
    low, high = minimum, 36
    if len({i[:low] for i in ids}) == len(ids):
        return low
    low += 1
    # ids made within one millisecond share 13 characters (the timestamp): try just past it first
    for guess in (13, 15):
        if len({i[:guess] for i in ids}) == len(ids):
            high = guess
            break
        low = guess + 1
    while low < high:  # the shortest width that keeps them apart (more characters never merge two)
        middle = (low + high) // 2
        if len({i[:middle] for i in ids}) == len(ids):
            high = middle
        else:
            low = middle + 1
    return low


#: Up to this many runs, their neighbours in id order are looked up one by one; above, every id is read.
_NEIGHBOUR_LOOKUPS = 50


def unique_run_id_width(conn: Connection, run_ids: Sequence[str], minimum: int = RUN_ID_WIDTH) -> int:
    """How many leading characters make each of ``run_ids`` unique among *all* runs, so that the
    shortened id shown in a label works as ``run:<prefix>``.

    For a graph of more than ``_NEIGHBOUR_LOOKUPS`` runs, unique among those runs only (reading
    every run id of a large repository would cost more than the walk); a prefix that another run
    shares is refused by ``run:<prefix>`` as ambiguous, never taken for the wrong run."""
    if not run_ids:
        return minimum
    if len(run_ids) > _NEIGHBOUR_LOOKUPS:
        return run_id_width(run_ids, minimum)
    width = minimum
    for run_id in run_ids:
        for sql in ("SELECT max(id) FROM runs WHERE id < ?", "SELECT min(id) FROM runs WHERE id > ?"):
            other = rawsql.rows(conn, sql, (run_id,))[0][0]
            if other:
                width = max(width, len(os.path.commonprefix([run_id, other])) + 1)
    return min(width, 36)


def run_label(name: str, run_id: str, width: int = RUN_ID_WIDTH) -> str:
    return f"run {name} ({run_id[:width]})"


def model_version_label(model: str, number: int, stage: str | None, aliases: Sequence[str]) -> str:
    tags = ([stage] if stage else []) + [a for a in aliases if a != stage]
    ref = f"{REGISTRY_SCHEME}{model}/{number}"
    return f"{ref} [{', '.join(tags)}]" if tags else ref


class Described:
    """The nodes at ``positions`` of ``index`` (graph order), with everything live read now, in the
    caller's transaction: :class:`Node` values are built from it when asked for (one, some, or all)."""

    def __init__(self, conn: Connection, index: LineageIndex, positions: Sequence[int],
                 distances: Sequence[int] | None = None, more: Iterable[int] = ()) -> None:
        self.index = index
        self.positions = positions
        self.distances = distances if distances is not None else [0] * len(positions)
        self.flagged = set(more)
        self.more = bool(self.flagged)
        ids, parts, kinds, kind_names = index.ids, index.parts, index.kinds, index.kind_names
        self.ids = [ids[i] for i in positions]
        self.codes = {kind: kind_names.index(kind) if kind in kind_names else -1
                      for kind in (VERSION, RUN, REGISTERED_MODEL_VERSION)}
        by_kind = {kind: [ids[i] for i in positions if kinds[i] == code and parts[i]]
                   for kind, code in self.codes.items()}
        versions = by_kind[VERSION]
        self.removed = {r[0] for r in rawsql.rows_for(conn, "SELECT id FROM versions", "id", versions,
                                                      where="removed_at IS NOT NULL")}
        self.version_aliases = {k: tuple(sorted(v)) for k, v in rawsql.grouped(
            (vid, name) for vid, name in rawsql.rows_for(conn, "SELECT version_id, name FROM aliases",
                                                         "version_id", versions)).items()}
        self.runs = {r[0]: r[1:] for r in rawsql.rows_for(conn, "SELECT id, name, project, status FROM runs", "id",
                                                          by_kind[RUN])}
        self.width = unique_run_id_width(conn, list(self.runs))
        rmvs = by_kind[REGISTERED_MODEL_VERSION]
        self.stages = dict(rawsql.rows_for(conn, "SELECT id, stage FROM registered_model_versions", "id", rmvs))
        self.rmv_aliases = {k: tuple(sorted(v)) for k, v in rawsql.grouped(
            (rid, alias) for rid, alias in rawsql.rows_for(
                conn, "SELECT rmv_id, alias FROM registered_model_aliases", "rmv_id", rmvs)).items()}
        position = index.positions() if rmvs else {}
        self.registered = _registered_refs(conn, index, [parts[position[r]].split("\t")[2] for r in rmvs])

    def __len__(self) -> int:
        return len(self.positions)

    def kind(self, k: int) -> str:
        return self.index.kind_of(self.positions[k])

    def positions_of(self, kind: str) -> list[int]:
        code, kinds, positions = self.codes.get(kind, -2), self.index.kinds, self.positions
        if code == -2:
            code = self.index.kind_names.index(kind) if kind in self.index.kind_names else -1
        return [k for k, i in enumerate(positions) if kinds[i] == code]

    def positions_with_aliases(self) -> list[int]:
        holders = set(self.version_aliases) | set(self.stages)
        return [k for k, node_id in enumerate(self.ids) if node_id in holders]

    def node(self, k: int) -> Node:
        return _new_node(self._row(self.positions[k], self.distances[k]))

    def all(self) -> list[Node]:
        return list(map(_new_node, map(self._row, self.positions, self.distances)))

    def _row(self, i: int, distance: int) -> tuple[object, ...]:
        index = self.index
        node_id, code, split = index.ids[i], index.kinds[i], index.fields()[i]
        has_more = i in self.flagged if self.flagged else False
        if code == self.codes[VERSION] and split is not None:
            name, number, type_, ref = split
            return (node_id, VERSION, ref, ref, distance, has_more, name, int(number), type_, None, None, None,
                    self.version_aliases.get(node_id, _NO_ALIASES), None, node_id in self.removed, False)
        run = self.runs.get(node_id) if code == self.codes[RUN] else None
        if run is not None:
            name, project, status = run
            return (node_id, RUN, "run:" + node_id, f"run {name} ({node_id[:self.width]})", distance, has_more, name,
                    None, None, project, status, None, _NO_ALIASES, None, False, False)
        stage = self.stages.get(node_id) if split is not None else None
        if stage is not None:  # a registered model version
            model, number, version_id, ref = split  # type: ignore[misc]
            aliases = self.rmv_aliases.get(node_id, _NO_ALIASES)
            return (node_id, REGISTERED_MODEL_VERSION, ref, model_version_label(model, int(number), stage, aliases),
                    distance, has_more, model, int(number), None, None, None, stage, aliases,
                    self.registered.get(version_id), False, False)
        kind = index.kind_names[code]
        return (node_id, kind, f"{kind}:{node_id}", f"{kind} {node_id[:RUN_ID_WIDTH]} (no record)", distance,
                has_more, None, None, None, None, None, None, _NO_ALIASES, None, False, True)


def describe(conn: Connection, index: LineageIndex, positions: Sequence[int],
             distances: Sequence[int] | None = None, more: Iterable[int] = ()) -> list[Node]:
    """Nodes for ``positions`` of ``index`` (in that order), with live names, status, aliases and stages."""
    return Described(conn, index, positions, distances, more).all()


def _registered_refs(conn: Connection, index: LineageIndex, version_ids: Sequence[str]) -> dict[str, str]:
    """``name:vN`` of the artifact versions registered models point at (from the index when it has them)."""
    out: dict[str, str] = {}
    unknown: list[str] = []
    for vid in version_ids:
        i = index.position(vid)
        if i is not None and index.parts[i]:
            name, number, _ = index.parts[i].split("\t")
            out[vid] = f"{name}:v{number}"
        else:
            unknown.append(vid)
    for vid, name, number in rawsql.rows_for(
        conn, "SELECT v.id, a.name, v.number FROM versions v JOIN artifacts a ON a.id = v.artifact_id", "v.id",
        unknown,
    ):
        out[vid] = f"{name}:v{number}"
    return out


def graph(conn: Connection, index: LineageIndex, found: Walk) -> LineageGraph:
    """The :class:`LineageGraph` of a walk (its values are built when first asked for)."""
    described = Described(conn, index, found.order, found.distance, found.more)
    rank = dict(zip(found.order, range(len(found.order))))  # index position -> position in the graph
    src, dst, ekind, names = index.src, index.dst, index.ekind, index.edge_kind_names
    chosen = found.edges
    ends = ([rank[src[e]] for e in chosen], [rank[dst[e]] for e in chosen], [names[ekind[e]] for e in chosen])
    return LineageGraph(direction=found.direction, depth=found.depth, source=described, edge_ends=ends)


def labels(conn: Connection, ids: Iterable[str], kinds: dict[str, str] | None = None) -> dict[str, str]:
    """Readable labels for node ids of any kind (for messages). An id with no record is shown whole,
    after its kind when ``kinds`` names it (``run 01a1...-...``)."""
    wanted = list(dict.fromkeys(ids))
    out: dict[str, str] = {}
    for vid, name, number in rawsql.rows_for(
        conn, "SELECT v.id, a.name, v.number FROM versions v JOIN artifacts a ON a.id = v.artifact_id", "v.id", wanted
    ):
        out[vid] = f"{name}:v{number}"
    runs = {rid: name for rid, name in rawsql.rows_for(conn, "SELECT id, name FROM runs", "id", wanted)}
    width = unique_run_id_width(conn, list(runs))
    for rid, name in runs.items():
        out[rid] = run_label(name, rid, width)
    for rid, model, number in rawsql.rows_for(
        conn,
        "SELECT r.id, m.name, r.number FROM registered_model_versions r JOIN registered_models m ON m.id = r.model_id",
        "r.id", wanted,
    ):
        out[rid] = f"{REGISTRY_SCHEME}{model}/{number}"
    for node_id in wanted:
        if node_id not in out:
            kind = (kinds or {}).get(node_id)
            out[node_id] = f"{kind.replace('_', ' ')} {node_id}" if kind else node_id
    return out
