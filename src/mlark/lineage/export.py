"""Lineage graphs as text: an indented tree, Mermaid, Graphviz DOT; SVG/PNG through Graphviz ``dot``.

Node shapes are the same in Mermaid and DOT: versions are boxes, runs rounded
(stadium / ellipse), registered model versions hexagons; registered model
versions in production get a thick red border, removed versions a dashed one.
Edges point from what was used to what was made; ``derived_from`` edges are
dotted, ``registered_as`` edges thick.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING, Callable

from mlark.lineage.errors import GraphvizFailed, GraphvizNotFound
from mlark.lineage.graph import (
    DERIVED_FROM,
    PRODUCED,
    REGISTERED_AS,
    REGISTERED_MODEL_VERSION,
    RUN,
    USED,
    VERSION,
    LineageGraph,
    Node,
)

if TYPE_CHECKING:
    from mlark.lineage.impact import ImpactReport

FORMATS = ("text", "mermaid", "dot", "json", "png", "svg")
IMAGE_FORMATS = ("png", "svg")
#: Mermaid's default ``maxEdges``: renderers (GitHub's among them) refuse larger diagrams.
MERMAID_MAX_EDGES = 500
DOT_TIMEOUT = 300.0

GRAPHVIZ_HINT = (
    "install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
    "https://graphviz.org/download/), or write --format dot and render it elsewhere"
)

_KIND_ORDER = {VERSION: 0, RUN: 1, REGISTERED_MODEL_VERSION: 2}

# ---------------------------------------------------------------------- text tree

# The relation between a tree line and its parent line, by walk direction and edge kind.
_UP_PHRASE = {USED: "used", PRODUCED: "produced by", REGISTERED_AS: "registered from", DERIVED_FROM: "derived from"}
_DOWN_PHRASE = {USED: "used by", PRODUCED: "produced", REGISTERED_AS: "registered as", DERIVED_FROM: "derived into"}


def node_text(node: Node) -> str:
    """A node's label with what else matters on one line: version aliases, run status, removal."""
    text = node.label
    if node.kind == VERSION:
        shown = [a for a in node.aliases if a != "latest"]
        if shown:
            text += " " + " ".join(f"@{a}" for a in shown)
        if node.removed:
            text += " (removed)"
    elif node.kind == RUN and node.status and node.status != "finished":
        text += f" [{node.status}]"
    return text


def to_text(graph: LineageGraph) -> str:
    """The graph as a tree from its root. A node reached again is printed once more as
    ``... (shown above)`` without its subtree; nodes where a depth bound stopped say so."""
    up = graph.direction == "up"
    children: dict[str, list[tuple[str, str]]] = {}
    for e in graph.edges:
        parent, child = (e.target, e.source) if up else (e.source, e.target)
        children.setdefault(parent, []).append((child, e.kind))
    nodes = {n.id: n for n in graph.nodes}
    for kids in children.values():
        kids.sort(key=lambda kid: (_KIND_ORDER.get(nodes[kid[0]].kind, 9), nodes[kid[0]].label))
    phrases = _UP_PHRASE if up else _DOWN_PHRASE

    lines = [node_text(graph.root) + (" (more: raise --depth)" if graph.root.more else "")]
    shown = {graph.root.id}
    # iterative depth-first walk (histories can be thousands of levels deep)
    stack: list[tuple[str, str, str, bool]] = []

    def push(parent: str, prefix: str) -> None:
        kids = children.get(parent, [])
        for k in range(len(kids) - 1, -1, -1):
            child, kind = kids[k]
            stack.append((child, kind, prefix, k == len(kids) - 1))

    push(graph.root.id, "")
    while stack:
        node_id, kind, prefix, last = stack.pop()
        node = nodes[node_id]
        branch = "└── " if last else "├── "
        text = f"{phrases.get(kind, kind)} {node_text(node)}"
        if node_id in shown:
            lines.append(f"{prefix}{branch}{text} (shown above)")
            continue
        shown.add(node_id)
        if node.more:
            text += " (more: raise --depth)"
        lines.append(f"{prefix}{branch}{text}")
        push(node_id, prefix + ("    " if last else "│   "))
    if len(graph.nodes) == 1 and not graph.root.more:
        lines.append("    (no lineage recorded: " + (
            "nothing was made from it)" if not up else "it was not made by a run nor derived from a version)"))
    return "\n".join(lines)


# ---------------------------------------------------------------------- Mermaid

_MERMAID_SHAPES: dict[str, tuple[str, str]] = {VERSION: ("[", "]"), RUN: ("([", "])"),
                                               REGISTERED_MODEL_VERSION: ("{{", "}}")}
_MERMAID_ARROWS = {USED: "-->", PRODUCED: "-->", REGISTERED_AS: "==>", DERIVED_FROM: "-.->"}
_MERMAID_CLASSES = (
    "classDef version fill:#eef4ff,stroke:#4a6fa5,color:#1b2a41",
    "classDef run fill:#fff5e6,stroke:#c77d1a,color:#3d2a0f",
    "classDef model fill:#eaf7ee,stroke:#2f8f4e,color:#123d20",
    "classDef missing fill:#f4f4f4,stroke:#999999,color:#555555",
    "classDef production stroke:#d1242f,stroke-width:3px",
    "classDef removed stroke-dasharray:5 5",
)
_CLASS_OF = {VERSION: "version", RUN: "run", REGISTERED_MODEL_VERSION: "model"}


def _mermaid_text(text: str) -> str:
    return (text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
            .replace("\n", " "))


def to_mermaid(graph: LineageGraph, *, fenced: bool = False) -> str:
    """A Mermaid ``flowchart LR``; ``fenced`` wraps it in a ```mermaid block (GitHub renders those)."""
    key = _short_ids(graph)
    lines = ["flowchart LR"]
    classes: dict[str, list[str]] = {}
    for n in graph.nodes:
        opening, closing = _MERMAID_SHAPES.get(n.kind, ("[", "]"))
        lines.append(f'  {key[n.id]}{opening}"{_mermaid_text(node_text(n))}"{closing}')
        classes.setdefault("missing" if n.missing else _CLASS_OF.get(n.kind, "missing"), []).append(key[n.id])
        if n.in_production:
            classes.setdefault("production", []).append(key[n.id])
        if n.removed:
            classes.setdefault("removed", []).append(key[n.id])
    for e in graph.edges:
        lines.append(f"  {key[e.source]} {_MERMAID_ARROWS.get(e.kind, '-->')}|{_mermaid_text(e.kind)}| {key[e.target]}")
    lines.extend(f"  {c}" for c in _MERMAID_CLASSES)
    for name, members in classes.items():
        lines.append(f"  class {','.join(members)} {name}")
    text = "\n".join(lines) + "\n"
    return f"```mermaid\n{text}```\n" if fenced else text


# ---------------------------------------------------------------------- Graphviz DOT

_DOT_STYLE = {
    VERSION: 'shape=box, style="filled", fillcolor="#eef4ff", color="#4a6fa5"',
    RUN: 'shape=box, style="rounded,filled", fillcolor="#fff5e6", color="#c77d1a"',
    REGISTERED_MODEL_VERSION: 'shape=hexagon, style="filled", fillcolor="#eaf7ee", color="#2f8f4e"',
}
_DOT_EDGE = {REGISTERED_AS: ", penwidth=2", DERIVED_FROM: ", style=dashed"}


def dot_string(text: str) -> str:
    """``text`` as a quoted DOT string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: LineageGraph) -> str:
    key = _short_ids(graph)
    lines = [
        "digraph lineage {",
        '  graph [rankdir=LR, fontname="Helvetica", label=' + dot_string(
            f"lineage of {graph.root.ref} ({graph.direction}"
            + (f", depth {graph.depth}" if graph.depth is not None else "") + ")") + ", labelloc=t];",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9, color="#666666"];',
    ]
    for n in graph.nodes:
        style = _DOT_STYLE.get(n.kind, 'shape=box, style="dashed"')
        if n.missing:
            style = 'shape=box, style="dashed", color="#999999"'
        if n.in_production:
            style += ', penwidth=3, color="#d1242f"'
        if n.removed:
            style += ', style="dashed,filled"'
        if n.id == graph.root.id:
            style += ", peripheries=2"
        lines.append(f"  {key[n.id]} [label={dot_string(node_text(n))}, {style}, tooltip={dot_string(n.ref)}];")
    for e in graph.edges:
        lines.append(f"  {key[e.source]} -> {key[e.target]} [label={dot_string(e.kind)}{_DOT_EDGE.get(e.kind, '')}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _short_ids(graph: LineageGraph) -> dict[str, str]:
    return {n.id: f"n{i}" for i, n in enumerate(graph.nodes)}


# ---------------------------------------------------------------------- images


def dot_program() -> str | None:
    return shutil.which("dot")


def render(dot_source: str, format: str, *, program: Callable[[], str | None] = dot_program) -> bytes:
    """``dot_source`` drawn as ``format`` (``svg`` or ``png``) by Graphviz ``dot``."""
    if format not in IMAGE_FORMATS:
        raise ValueError(f"render() draws {', '.join(IMAGE_FORMATS)}, not {format!r}")
    dot = program()
    if dot is None:
        raise GraphvizNotFound(
            f"{format.upper()} output needs Graphviz's dot program, which is not on PATH: {GRAPHVIZ_HINT}",
            field="format", value=format, allowed=["text", "mermaid", "dot", "json"],
        )
    try:
        done = subprocess.run([dot, f"-T{format}"], input=dot_source.encode("utf-8"), capture_output=True,
                              timeout=DOT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraphvizFailed(f"Graphviz dot could not draw the graph: {exc}", program=dot) from exc
    if done.returncode != 0 or not done.stdout:
        reason = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
        raise GraphvizFailed(f"Graphviz dot could not draw the graph: {reason}", program=dot)
    return done.stdout


# ---------------------------------------------------------------------- impact


def impact_text(report: "ImpactReport", *, limit: int = 50) -> str:
    source = node_text(report.source)
    if not report.affected:
        return f"nothing was made from {source}: no run used it, no version was derived from it, no model registers it"
    lines = [
        f"impact of {source}: {_count(report.runs, 'run')}, {_count(report.versions, 'version')}, "
        f"{_count(report.model_versions, 'registered model version')} depend on it"
    ]
    production = report.production
    if production:
        lines += ["", "PRODUCTION depends on it:"]
        for hit in production:
            chain = " -> ".join(n.label for n in report.path_to(hit.target))
            lines.append(f"  {hit.ref} -> {hit.target.ref}")
            lines.append(f"      via {chain}")
    if report.model_versions:
        lines += ["", "registered model versions:"]
        for n in report.model_versions:
            steps = n.distance
            lines.append(f"  {n.label}  ({'directly' if steps <= 1 else f'{steps} steps'}, from {n.version})")
    if report.aliases:
        lines += ["", "stages and aliases pointing at affected versions:"]
        width = max(len(h.ref) for h in report.aliases)
        for hit in report.aliases:
            lines.append(f"  {hit.ref.ljust(width)} -> {hit.target.ref}")
    for title, items in (("runs", report.runs), ("versions", report.versions)):
        if not items:
            continue
        lines += ["", f"{title} ({len(items)}):"]
        lines.extend(f"  {node_text(n)}" for n in items[:limit])
        if len(items) > limit:
            lines.append(f"  ... and {len(items) - limit} more (--json lists all)")
    return "\n".join(lines)


def _count(items: tuple[Node, ...], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"
