"""Breadth-first walks over a :class:`~mlark.lineage.index.LineageIndex`, up or down, with a depth bound."""

from __future__ import annotations

from dataclasses import dataclass

from mlark.lineage.index import LineageIndex

UP = "up"
DOWN = "down"
DIRECTIONS = (UP, DOWN)


@dataclass(frozen=True)
class Walk:
    """What a walk reached: nodes in breadth-first order with their distance, and the edges among them.

    ``edges`` are edge indices of the index, every edge whose two ends were reached (the induced
    subgraph); ``more`` are the nodes at the depth bound that have neighbours the bound left out;
    ``via[k]`` is the node through which ``order[k]`` was first reached (-1 for the start), so
    following ``via`` back gives a shortest path to the start.
    """

    start: int
    direction: str
    depth: int | None
    order: list[int]
    distance: list[int]  # parallel to order
    via: list[int]  # parallel to order
    edges: list[int]
    more: frozenset[int]


def walk(index: LineageIndex, start: int, direction: str, depth: int | None = None) -> Walk:
    """Every node reachable from ``start`` against the edges (``up``: what it was made from) or along
    them (``down``: what was made from it), at most ``depth`` edges away (None: no bound)."""
    if direction == UP:
        offsets, slots, far = index.back_off, index.back, index.src
    elif direction == DOWN:
        offsets, slots, far = index.fwd_off, index.fwd, index.dst
    else:
        raise ValueError(f"direction must be {UP!r} or {DOWN!r}, not {direction!r}")
    seen = bytearray(len(index.ids))
    seen[start] = 1
    order = [start]
    distance = [0]
    via = [-1]
    edges: list[int] = []
    frontier = [start]
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        following: list[int] = []
        for u in frontier:
            reached = slots[offsets[u] : offsets[u + 1]]
            edges.extend(reached)
            for e in reached:
                v = far[e]
                if not seen[v]:
                    seen[v] = 1
                    following.append(v)
                    via.append(u)
        order.extend(following)
        distance.extend([level] * len(following))
        frontier = following
    more: set[int] = set()
    for u in frontier:  # nodes at the bound: keep edges among reached nodes, flag the rest
        for p in range(offsets[u], offsets[u + 1]):
            e = slots[p]
            if seen[far[e]]:
                edges.append(e)
            else:
                more.add(u)
    return Walk(start, direction, depth, order, distance, via, edges, frozenset(more))
