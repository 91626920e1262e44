"""Matching the operator nodes of two graphs.

1. By name: a non-empty name that occurs once in each graph, on nodes of the same operator
   (``op_type`` and domain), pairs them.
2. By position: the nodes left over on each side, in topological order, are aligned as two
   sequences of operator types (longest matching blocks, ``difflib``); aligned nodes pair up.
   So exporters that name nodes differently, or not at all, still match, and an inserted node
   shifts nothing.
"""

from __future__ import annotations

import difflib
from collections import Counter

from mlark.diff.onnxgraph.graph import Graph


def match_nodes(a: Graph, b: Graph) -> tuple[dict[int, int], dict[int, str]]:
    """``(pairs, how)``: node index in ``a`` -> node index in ``b``, and ``"name"`` or ``"position"``."""
    pairs: dict[int, int] = {}
    how: dict[int, str] = {}
    count_a = Counter(n.name for n in a.nodes if n.name)
    count_b = Counter(n.name for n in b.nodes if n.name)
    by_name_b = {n.name: n for n in b.nodes if n.name and count_b[n.name] == 1}
    for n in a.nodes:
        if not n.name or count_a[n.name] != 1:
            continue
        m = by_name_b.get(n.name)
        if m is not None and (m.op_type, m.domain) == (n.op_type, n.domain):
            pairs[n.index] = m.index
            how[n.index] = "name"
    taken_b = set(pairs.values())
    rest_a = [n for n in a.nodes if n.index not in pairs]
    rest_b = [n for n in b.nodes if n.index not in taken_b]
    keys_a = [f"{n.domain}::{n.op_type}" for n in rest_a]
    keys_b = [f"{n.domain}::{n.op_type}" for n in rest_b]
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            na, nb = rest_a[block.a + k], rest_b[block.b + k]
            pairs[na.index] = nb.index
            how[na.index] = "position"
    return pairs, how
