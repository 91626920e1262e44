"""Exports of lineage graphs: the text tree, Mermaid, Graphviz DOT (checked by Graphviz itself when
installed), JSON, and SVG/PNG drawn by ``dot`` (with a clear error when it is missing)."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess


import pytest

from lineage_testkit import Churn
from mlark.errors import InvalidInput
from mlark.lineage.errors import GraphvizFailed, GraphvizNotFound
from mlark.lineage.export import node_text, render
from mlark.lineage.graph import Edge, LineageGraph, Node
from mlark.ops import lineage as ops

DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz dot is not installed")

_NODE_LINE = re.compile(r'^  (n\d+)(\[|\(\[|\{\{)"(.*)"(\]|\]\)|\}\})$')
_EDGE_LINE = re.compile(r"^  (n\d+) (-->|==>|-\.->)\|([a-z_]+)\| (n\d+)$")


def parse_mermaid(text: str) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str, str, str]], dict[str, set[str]]]:
    """Node ids -> (shape opening, label); edges (source, arrow, kind, target); class -> node ids."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str, str, str]] = []
    classes: dict[str, set[str]] = {}
    for line in lines[1:]:
        if m := _NODE_LINE.match(line):
            nodes[m.group(1)] = (m.group(2), m.group(3))
        elif m := _EDGE_LINE.match(line):
            edges.append((m.group(1), m.group(2), m.group(3), m.group(4)))
        elif line.startswith("  class "):
            _, members, name = line.split()
            classes.setdefault(name, set()).update(members.split(","))
        else:
            assert line.startswith("  classDef "), line
    return nodes, edges, classes


def test_mermaid_has_every_node_and_edge_with_shapes_and_classes(churn: Churn) -> None:
    graph = ops.lineage(churn.repo, "churn-data:v1", "down")
    nodes, edges, classes = parse_mermaid(graph.to_mermaid())
    assert len(nodes) == len(graph.nodes) and len(edges) == len(graph.edges)
    by_label = {label: (key, shape) for key, (shape, label) in nodes.items()}
    assert by_label["churn-data:v1"][1] == "[" and by_label["churn-rf:v1 @best"][1] == "["
    assert by_label["models:/churn/1 [production, champion]"][1] == "{{"
    run_key = next(key for label, (key, _) in by_label.items() if label.startswith("run featurize ("))
    assert nodes[run_key][0] == "(["
    production = by_label["models:/churn/1 [production, champion]"][0]
    assert classes["production"] == {production}
    assert classes["model"] == {production, by_label["models:/churn/2 [staging]"][0]}
    assert len(classes["run"]) == 3 and len(classes["version"]) == 4
    key_of = {n.id: by_label[node_text(n)][0] for n in graph.nodes}
    arrows = {"used": "-->", "produced": "-->", "registered_as": "==>", "derived_from": "-.->"}
    assert sorted(edges) == sorted((key_of[e.source], arrows[e.kind], e.kind, key_of[e.target]) for e in graph.edges)
    fenced = graph.to_mermaid(fenced=True)
    assert fenced.startswith("```mermaid\nflowchart LR\n") and fenced.endswith("\n```\n")
    assert graph._repr_markdown_() == fenced


def _odd_graph() -> LineageGraph:
    """Labels with the characters each format must escape."""
    a = Node("id-a", "version", 'x:v1', 'say "hi" <b>\\ & more', name="x", number=1, type="dataset")
    b = Node("id-b", "run", "run:id-b", "run {braces} [brackets] (parens)", distance=1, name="r", status="failed")
    return LineageGraph(root=a, direction="down", depth=None, nodes=(a, b), edges=(Edge("id-a", "id-b", "used"),))


def test_mermaid_escapes_labels() -> None:
    text = _odd_graph().to_mermaid()
    assert 'n0["say #quot;hi#quot; #lt;b#gt;\\ #amp; more"]' in text
    assert 'n1(["run {braces} [brackets] (parens) [failed]"])' in text
    parse_mermaid(text)


def test_dot_escapes_labels() -> None:
    text = _odd_graph().to_dot()
    assert 'label="say \\"hi\\" <b>\\\\ & more"' in text
    if DOT is not None:
        subprocess.run([DOT, "-Tsvg"], input=text.encode(), check=True, capture_output=True)


@needs_dot
def test_dot_is_accepted_by_graphviz(churn: Churn) -> None:
    graph = ops.lineage(churn.repo, "models:/churn@production", "up")
    text = graph.to_dot()
    assert text.startswith("digraph lineage {") and text.rstrip().endswith("}")
    assert text.count(" -> ") == len(graph.edges)
    done = subprocess.run([DOT, "-Tsvg"], input=text.encode(), capture_output=True, check=True)
    svg = html.unescape(done.stdout.decode())
    for n in graph.nodes:
        assert f">{node_text(n)}</text>" in svg
    plain = subprocess.run([DOT, "-Tplain"], input=text.encode(), capture_output=True, check=True).stdout.decode()
    assert sum(1 for line in plain.splitlines() if line.startswith("node ")) == len(graph.nodes)
    assert sum(1 for line in plain.splitlines() if line.startswith("edge ")) == len(graph.edges)
    assert 'penwidth=3, color="#d1242f"' in text  # production stands out


@needs_dot
def test_render_svg_and_png(churn: Churn) -> None:
    graph = ops.lineage(churn.repo, "models:/churn/1", "up")
    svg = graph.render("svg")
    assert b"<svg" in svg[:400] and ">churn-data:v1</text>" in html.unescape(svg.decode())
    assert graph.render("png").startswith(b"\x89PNG\r\n\x1a\n")


def test_rendering_without_graphviz_says_how_to_get_it() -> None:
    with pytest.raises(GraphvizNotFound, match="needs Graphviz's dot program, which is not on PATH: install "
                                               "Graphviz .*apt-get install graphviz.*or write --format dot"):
        render("digraph { a }", "png", program=lambda: None)
    assert issubclass(GraphvizNotFound, InvalidInput)
    with pytest.raises(GraphvizFailed, match="Graphviz dot could not draw the graph"):
        render("digraph { a }", "svg", program=lambda: shutil.which("false"))
    with pytest.raises(ValueError):
        render("digraph { a }", "pdf")


def test_json_follows_its_schema(churn: Churn) -> None:
    graph = ops.lineage(churn.repo, "churn-data:v1", "down", depth=3)
    doc = json.loads(graph.to_json())
    assert set(doc) == {"schema", "root", "direction", "depth", "truncated", "nodes", "edges"}
    assert doc["schema"] == "mlark.lineage/1" and doc["direction"] == "down" and doc["depth"] == 3
    assert doc["root"] == doc["nodes"][0]["id"] and isinstance(doc["truncated"], bool)
    common = {"id", "kind", "ref", "label", "distance"}
    specific = {"version": {"artifact", "number", "type", "aliases", "removed"},
                "run": {"name", "project", "status"},
                "registered_model_version": {"model", "number", "stage", "aliases", "version"}}
    ids = set()
    for node in doc["nodes"]:
        assert common | specific[node["kind"]] <= set(node) <= common | specific[node["kind"]] | {"more"}
        assert isinstance(node["distance"], int) and 0 <= node["distance"] <= 3
        ids.add(node["id"])
    assert len(ids) == len(doc["nodes"])
    for edge in doc["edges"]:
        assert set(edge) == {"source", "target", "kind"}
        assert edge["source"] in ids and edge["target"] in ids
        assert edge["kind"] in {"used", "produced", "registered_as", "derived_from"}
    assert doc == graph.to_dict()


def test_text_tree_of_the_production_model(churn: Churn) -> None:
    graph = ops.lineage(churn.repo, "models:/churn@production", "up")
    r8, f = graph.node(f"run:{churn.rid('rf-depth-8')}"), graph.node(f"run:{churn.rid('featurize')}")
    assert graph.to_text().splitlines() == [
        "models:/churn/1 [production, champion]",
        "└── registered from churn-rf:v1 @best",
        f"    └── produced by {r8.label}",
        "        ├── used churn-data:v1",
        "        └── used churn-features:v1",
        f"            └── produced by {f.label}",
        "                └── used churn-data:v1 (shown above)",
    ]


def test_text_tree_downstream_with_a_bound(churn: Churn) -> None:
    graph = ops.lineage(churn.repo, "churn-data:v1", "down", depth=2)
    lines = graph.to_text().splitlines()
    assert lines[0] == "churn-data:v1"
    assert any(line.endswith("produced churn-features:v1 (more: raise --depth)") for line in lines)
    assert any("used by run rf-depth-8" in line for line in lines)
    lonely = ops.lineage(churn.repo, "churn-data:v2", "down")
    assert lonely.to_text().splitlines() == ["churn-data:v2", "    (no lineage recorded: nothing was made from it)"]


def test_exports_of_a_graph_with_a_missing_record() -> None:
    ghost = Node("0190-ghost", "run", "run:0190-ghost", "run 0190-gho (no record)", missing=True)
    graph = LineageGraph(root=ghost, direction="up", depth=None, nodes=(ghost,), edges=())
    assert graph.to_dict()["nodes"] == [{"id": "0190-ghost", "kind": "run", "ref": "run:0190-ghost",
                                         "label": "run 0190-gho (no record)", "distance": 0, "missing": True}]
    assert "class n0 missing" in graph.to_mermaid()
    assert 'style="dashed"' in graph.to_dot()


def test_impact_text(churn: Churn) -> None:
    text = ops.impact(churn.repo, "churn-data:v1").to_text(limit=1)
    lines = text.splitlines()
    assert lines[0] == ("impact of churn-data:v1: 3 runs, 3 versions, 2 registered model versions depend on it")
    assert lines[2] == "PRODUCTION depends on it:"
    assert lines[3] == "  models:/churn@production -> models:/churn/1"
    assert lines[4].startswith("      via churn-data:v1 -> run rf-depth-8 (") and lines[4].endswith(
        "-> churn-rf:v1 -> models:/churn/1 [production, champion]")
    assert "  ... and 2 more (--json lists all)" in lines


