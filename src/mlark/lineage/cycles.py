"""Keeping lineage acyclic: would a new edge ``source -> target`` close a cycle, and along which path?

The check runs in the writer's transaction (writers are serialised, see
docs/design/metadata-db.md), so two writers cannot close a cycle between them.
It asks the database whether ``source`` is reachable from ``target`` with one
recursive query that stops at the first hit: a new run or a new version has
no outgoing edges, so the usual cost is one index look-up. Only when a cycle
is found is the path itself reconstructed (breadth-first, level by level),
for the error message.
"""

from __future__ import annotations

from typing import Sequence

from sqlalchemy import Connection

from mlark.lineage import rawsql

_REACHES = (
    "WITH RECURSIVE reach(id) AS ("
    " SELECT dst_id FROM lineage_edges WHERE src_id = ?"
    " UNION"
    " SELECT e.dst_id FROM lineage_edges e JOIN reach r ON e.src_id = r.id"
    ") SELECT 1 FROM reach WHERE id = ? LIMIT 1"
)


def reaches(conn: Connection, start: str, goal: str) -> bool:
    """True if an edge path leads from ``start`` to ``goal`` (False when ``start == goal``)."""
    if not rawsql.rows(conn, "SELECT 1 FROM lineage_edges WHERE src_id = ? LIMIT 1", (start,)):
        return False
    return bool(rawsql.rows(conn, _REACHES, (start, goal)))


def path(conn: Connection, start: str, goal: str) -> list[tuple[str, str, str]] | None:
    """A shortest edge path from ``start`` to ``goal``: ``[(edge kind, src id, dst id), ...]``, or None."""
    parent: dict[str, tuple[str, str]] = {start: ("", "")}
    frontier = [start]
    while frontier and goal not in parent:
        following: list[str] = []
        for part in rawsql.chunks(frontier):
            marks = ", ".join("?" * len(part))
            for kind, src, dst in rawsql.rows(
                conn, f"SELECT kind, src_id, dst_id FROM lineage_edges WHERE src_id IN ({marks}) ORDER BY id", part
            ):
                if dst not in parent:
                    parent[dst] = (kind, src)
                    following.append(dst)
        frontier = following
    if goal not in parent:
        return None
    steps: list[tuple[str, str, str]] = []
    node = goal
    while node != start:
        kind, src = parent[node]
        steps.append((kind, src, node))
        node = src
    return steps[::-1]


def would_close(conn: Connection, source: str, target: str) -> list[tuple[str, str, str]] | None:
    """If a new edge ``source -> target`` would close a cycle: the existing path ``target -> ... -> source``
    it would close (empty when ``source == target``); else None."""
    if source == target:
        return []
    if not reaches(conn, target, source):
        return None
    return path(conn, target, source) or []


def describe(steps: Sequence[tuple[str, str, str]], new_kind: str, source: str, target: str,
             labels: dict[str, str]) -> str:
    """``a --produced--> b --used--> c --(new) derived_from--> a``: the cycle an edge would close, readably."""
    def name(node_id: str) -> str:
        return labels.get(node_id, node_id)

    text = name(target)
    for kind, _src, dst in steps:
        text += f" --{kind}--> {name(dst)}"
    text += f" --{new_kind} (refused)--> {name(target)}"
    if not steps and source == target:
        text = f"{name(source)} --{new_kind} (refused)--> {name(source)}"
    return text
