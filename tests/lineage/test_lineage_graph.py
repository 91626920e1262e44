"""Lineage graphs of a real pipeline (real runs, real registry) on both databases: up, down, depth
bounds, topological order, impact, references, and the public API."""

from __future__ import annotations

from typing import Any

import pytest

import mlark
from mlark.errors import InvalidInput, InvalidRef, NotFound
from mlark.lineage.graph import LineageGraph, Node
from mlark.ops import lineage as ops

from lineage_testkit import Churn


def labels(graph: LineageGraph) -> set[str]:
    return {n.label for n in graph.nodes}


def edge_set(graph: LineageGraph) -> set[tuple[str, str, str]]:
    by_id = {n.id: n for n in graph.nodes}
    return {(by_id[e.source].ref, e.kind, by_id[e.target].ref) for e in graph.edges}


def refs(nodes: Any) -> list[str]:
    return [n.ref for n in nodes]


def run_ref(churn: Churn, name: str) -> str:
    return f"run:{churn.rid(name)}"


# --------------------------------------------------------------------------- up and down


def test_upstream_of_the_production_model_reaches_back_to_the_raw_data(churn: Churn) -> None:
    graph = ops.lineage(churn.repo, "models:/churn@production", "up")
    assert graph.root.ref == "models:/churn/1"
    assert graph.root.label == "models:/churn/1 [production, champion]"
    assert graph.root.stage == "production" and graph.root.aliases == ("champion",)
    assert graph.root.version == "churn-rf:v1" and graph.root.in_production
    f, r8 = run_ref(churn, "featurize"), run_ref(churn, "rf-depth-8")
    assert edge_set(graph) == {
        ("churn-rf:v1", "registered_as", "models:/churn/1"),
        (r8, "produced", "churn-rf:v1"),
        ("churn-features:v1", "used", r8),
        ("churn-data:v1", "used", r8),
        (f, "produced", "churn-features:v1"),
        ("churn-data:v1", "used", f),
    }
    assert len(graph) == 6 and not graph.truncated
    # nothing that merely sits beside the pipeline
    assert "churn-data:v2" not in graph and "churn-rf:v2" not in graph and run_ref(churn, "rf-depth-3") not in graph
    distances = {n.ref: n.distance for n in graph.nodes}
    assert distances == {"models:/churn/1": 0, "churn-rf:v1": 1, r8: 2, "churn-features:v1": 3, "churn-data:v1": 3,
                         f: 4}
    assert [n.distance for n in graph.nodes] == sorted(n.distance for n in graph.nodes)  # breadth-first order


def test_node_details_and_labels(churn: Churn) -> None:
    graph = ops.lineage(churn.repo, "churn-rf:v1", "up")
    run = graph.node(run_ref(churn, "rf-depth-8"))
    assert run.kind == "run" and run.name == "rf-depth-8" and run.project == "churn" and run.status == "finished"
    assert run.label.startswith("run rf-depth-8 (") and run.label.endswith(")")
    shown = run.label[len("run rf-depth-8 ("):-1]
    assert churn.rid("rf-depth-8").startswith(shown) and len(shown) >= 8
    # the shortened id is a usable reference: unique among every run of the repository
    assert ops.lineage(churn.repo, f"run:{shown}").root.id == run.id
    version = graph.node("churn-rf:v1")
    assert (version.kind, version.name, version.number, version.type) == ("version", "churn-rf", 1, "model")
    assert set(version.aliases) == {"best"} and not version.removed
    data = graph.node("churn-data:v1")
    assert data.label == "churn-data:v1" and data.type == "dataset" and data.aliases == ()
    assert graph.node(data.id) is data and graph.node(data.label) is data
    assert graph.sources_of(run) and {n.ref for n in graph.sources_of(run)} == {"churn-features:v1", "churn-data:v1"}
    assert [n.ref for n in graph.targets_of(run)] == ["churn-rf:v1"]
    with pytest.raises(NotFound, match="not in this lineage graph"):
        graph.node("churn-data:v2")


def test_downstream_of_the_raw_data_reaches_every_registered_model(churn: Churn) -> None:
    graph = ops.lineage(churn.repo, "churn-data:v1", "down")
    assert graph.root.ref == "churn-data:v1"
    assert {n.ref for n in graph.model_versions} == {"models:/churn/1", "models:/churn/2"}
    assert {n.ref for n in graph.versions} == {"churn-data:v1", "churn-features:v1", "churn-rf:v1", "churn-rf:v2"}
    assert {n.name for n in graph.runs} == {"featurize", "rf-depth-8", "rf-depth-3"}
    assert len(graph.edges) == 9
    assert graph.node("models:/churn/2").label == "models:/churn/2 [staging]"
    assert ops.lineage(churn.repo, "churn-data:v2", "down").nodes == (ops.lineage(churn.repo, "churn-data:v2").root,)


@pytest.mark.parametrize("depth, expected, stopped", [
    (0, {"models:/churn/1"}, {"models:/churn/1"}),
    (1, {"models:/churn/1", "churn-rf:v1"}, {"churn-rf:v1"}),
    (2, {"models:/churn/1", "churn-rf:v1", "rf-depth-8"}, {"rf-depth-8"}),
    # the raw data is at the bound too, but nothing is further up: only the features were cut short
    (3, {"models:/churn/1", "churn-rf:v1", "rf-depth-8", "churn-features:v1", "churn-data:v1"}, {"churn-features:v1"}),
])
def test_depth_bounds_the_walk_and_marks_where_it_stopped(churn: Churn, depth: int, expected: set[str],
                                                         stopped: set[str]) -> None:
    graph = ops.lineage(churn.repo, "models:/churn@production", "up", depth=depth)
    assert {n.name if n.kind == "run" else n.ref for n in graph.nodes} == expected
    assert all(n.distance <= depth for n in graph.nodes)
    assert graph.truncated
    assert {n.name if n.kind == "run" else n.ref for n in graph.nodes if n.more} == stopped
    ids = {n.id for n in graph.nodes}
    assert all(e.source in ids and e.target in ids for e in graph.edges)
    assert graph.depth == depth


def test_a_bound_beyond_the_graph_is_the_whole_graph(churn: Churn) -> None:
    whole = ops.lineage(churn.repo, "models:/churn/1", "up")
    bounded = ops.lineage(churn.repo, "models:/churn/1", "up", depth=4)
    assert bounded.nodes == whole.nodes and set(bounded.edges) == set(whole.edges)
    assert not bounded.truncated and not ops.lineage(churn.repo, "models:/churn/1", "up", depth=50).truncated


def test_edges_among_reached_nodes_are_kept_at_the_bound(churn: Churn) -> None:
    # depth 1 down from run featurize's output: both rf runs; depth 2 from the raw data reaches
    # rf-depth-8 twice (directly and through the features): both edges are there.
    graph = ops.lineage(churn.repo, "churn-data:v1", "down", depth=2)
    r8 = run_ref(churn, "rf-depth-8")
    assert ("churn-data:v1", "used", r8) in edge_set(graph)
    assert ("churn-features:v1", "used", r8) in edge_set(graph)


def test_topological_order_puts_every_dependency_first(churn: Churn) -> None:
    for ref, direction in (("models:/churn/1", "up"), ("churn-data:v1", "down"), ("churn-features:v1", "down")):
        graph = ops.lineage(churn.repo, ref, direction)
        order = graph.topological()
        assert sorted(n.id for n in order) == sorted(n.id for n in graph.nodes)
        position = {n.id: i for i, n in enumerate(order)}
        assert all(position[e.source] < position[e.target] for e in graph.edges)
    up = ops.lineage(churn.repo, "models:/churn@production", "up").topological()
    assert up[0].ref == "churn-data:v1" and up[-1].ref == "models:/churn/1"


def test_a_node_without_lineage_is_a_graph_of_one(repo: Any, tmp_path: Any) -> None:
    (tmp_path / "x").write_text("x")
    version = repo.add(tmp_path / "x", name="lonely", message="Nothing uses it")
    for direction in ("up", "down"):
        graph = ops.lineage(repo, "lonely", direction)
        assert graph.nodes == (graph.root,) and graph.edges == () and graph.root.ref == "lonely:v1"
        assert graph.root.id == version.id and graph.topological() == [graph.root]
    assert not ops.impact(repo, "lonely").affected


# --------------------------------------------------------------------------- impact


def test_impact_of_the_raw_data_reaches_production(churn: Churn) -> None:
    report = ops.impact(churn.repo, "churn-data:v1")
    assert report.source.ref == "churn-data:v1" and report.affected
    assert {n.name for n in report.runs} == {"featurize", "rf-depth-8", "rf-depth-3"}
    assert set(refs(report.versions)) == {"churn-features:v1", "churn-rf:v1", "churn-rf:v2"}
    assert refs(report.model_versions) == ["models:/churn/1", "models:/churn/2"]  # production first
    assert report.registered_models == ["churn"]
    assert [h.ref for h in report.production] == ["models:/churn@production"]
    assert report.production[0].target.ref == "models:/churn/1"
    hits = {(h.ref, h.kind, h.target.ref) for h in report.aliases}
    assert hits == {
        ("models:/churn@production", "stage", "models:/churn/1"),
        ("models:/churn@champion", "alias", "models:/churn/1"),
        ("models:/churn@staging", "stage", "models:/churn/2"),
        ("churn-rf@best", "version alias", "churn-rf:v1"),
        ("churn-rf@latest", "version alias", "churn-rf:v2"),
        ("churn-features@latest", "version alias", "churn-features:v1"),
    }  # churn-data@latest points at v2, which nothing was made from
    assert report.aliases[0].ref == "models:/churn@production"
    # the shortest path: rf-depth-8 used the raw data directly
    path = report.path_to("models:/churn/1")
    assert refs(path) == ["churn-data:v1", run_ref(churn, "rf-depth-8"), "churn-rf:v1", "models:/churn/1"]
    assert report.path_to(report.model_versions[1])[-2].ref == "churn-rf:v2"


def test_impact_of_a_middle_version_and_of_a_run(churn: Churn) -> None:
    report = ops.impact(churn.repo, "churn-features:v1")
    assert {n.name for n in report.runs} == {"rf-depth-8", "rf-depth-3"}
    assert [h.ref for h in report.production] == ["models:/churn@production"]
    by_run = ops.impact(churn.repo, run_ref(churn, "rf-depth-3"))
    assert refs(by_run.model_versions) == ["models:/churn/2"] and by_run.production == []
    assert {h.ref for h in by_run.aliases} == {"models:/churn@staging", "churn-rf@latest"}


def test_impact_of_an_unused_version_is_empty(churn: Churn) -> None:
    report = ops.impact(churn.repo, "churn-data:v2")
    assert not report.affected and report.production == [] and report.model_versions == ()
    assert [h.ref for h in report.aliases] == ["churn-data@latest"]  # the source's own alias
    assert "nothing was made from churn-data:v2" in report.to_text()


def test_impact_report_as_json(churn: Churn) -> None:
    doc = ops.impact(churn.repo, "churn-data:v1").to_dict()
    assert doc["schema"] == "mlark.impact/1"
    assert doc["counts"] == {"runs": 3, "versions": 3, "registered_model_versions": 2}
    assert doc["production"][0]["ref"] == "models:/churn@production" and doc["production"][0]["production"]
    first = doc["registered_model_versions"][0]
    assert first["ref"] == "models:/churn/1" and first["in_production"] and first["stage"] == "production"
    assert first["path"][0] == "churn-data:v1" and first["path"][-1] == "models:/churn/1"
    assert len(doc["edges"]) == 9
    text = ops.impact(churn.repo, "churn-data:v1").to_text()
    assert "PRODUCTION depends on it" in text and "models:/churn@production -> models:/churn/1" in text


# --------------------------------------------------------------------------- references


def test_every_kind_of_reference_names_a_node(churn: Churn) -> None:
    repo = churn.repo
    rf = churn.versions["churn-rf:v1"]
    cases: list[tuple[Any, str]] = [
        ("churn-rf:v1", rf.id), ("churn-rf@best", rf.id), (f"churn-rf:{rf.digest[:10]}", rf.id),
        ("churn-rf", churn.vid("churn-rf:v2")), (rf, rf.id),
        ("models:/churn/1", None), ("models:/churn@champion", None), ("models:/churn@production", None),
        (run_ref(churn, "featurize"), churn.rid("featurize")), (f"run:{churn.rid('featurize')[:13]}", churn.rid("featurize")),
        (churn.runs["featurize"], churn.rid("featurize")),
    ]
    for ref, expected in cases:
        root = ops.lineage(repo, ref).root
        if expected is None:
            assert root.ref == "models:/churn/1"
        else:
            assert root.id == expected, ref
    node = ops.lineage(repo, "churn-rf:v1").root
    assert ops.lineage(repo, node).root == node
    assert ops.lineage(repo, "models:/churn").root.ref == "models:/churn/2"  # latest registered


@pytest.mark.parametrize("ref, error, match", [
    ("nope:v3", NotFound, "no artifact named 'nope'"),
    ("churn-data:v9", NotFound, "churn-data:v9 does not exist"),
    ("churn-data@gold", NotFound, "no alias 'gold'"),
    ("run:0123456789", NotFound, "no run with id"),
    ("run:", InvalidRef, "names no run"),
    ("models:/nope@production", NotFound, "no registered model named 'nope'"),
    ("models:/churn/7", NotFound, "has no version 7"),
    ("models:/churn@archived", NotFound, "no version of registered model churn is in archived"),
    ("bad name!", InvalidRef, "is not a version .* a run \\(run:<id"),
    ("churn-data:train.csv@latest", InvalidRef, "lineage is recorded per version"),
    ("", InvalidRef, "empty reference"),
])
def test_bad_references_get_clear_errors(churn: Churn, ref: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        ops.lineage(churn.repo, ref)
    with pytest.raises(error, match=match):
        ops.impact(churn.repo, ref)


@pytest.mark.parametrize("kwargs, match", [
    ({"direction": "sideways"}, "direction must be 'up'"),
    ({"depth": -1}, "depth must be a whole number"),
    ({"depth": 1.5}, "depth must be a whole number"),
    ({"depth": True}, "depth must be a whole number"),
])
def test_bad_direction_or_depth(churn: Churn, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        ops.lineage(churn.repo, "churn-rf:v1", **kwargs)


def test_a_removed_version_keeps_its_lineage(fresh_churn: Churn) -> None:
    repo = fresh_churn.repo
    repo.rm("churn-features:v1", force=True, message="Leaked the label column")
    with pytest.raises(NotFound):
        repo.resolve("churn-features:v1")
    graph = ops.lineage(repo, "churn-features:v1", "down")
    assert graph.root.removed
    assert "(removed)" in graph.to_text().splitlines()[0]
    assert [h.ref for h in ops.impact(repo, "churn-features:v1").production] == ["models:/churn@production"]
    assert ops.lineage(repo, "churn-rf:v1", "up").node("churn-features:v1").removed


# --------------------------------------------------------------------------- the public API


def test_mlark_lineage_and_impact(churn: Churn) -> None:
    graph = mlark.lineage("models:/churn@production", repo=churn.repo)
    assert isinstance(graph, mlark.LineageGraph) and isinstance(graph.root, Node)
    assert graph == ops.lineage(churn.repo, "models:/churn@production")
    down = mlark.lineage("churn-data:v1", direction="down", depth=1, repo=churn.repo)
    assert {n.name for n in down.runs} == {"featurize", "rf-depth-8"}
    report = mlark.impact("churn-data:v1", repo=churn.repo)
    assert isinstance(report, mlark.ImpactReport)
    assert [h.ref for h in report.production] == ["models:/churn@production"]
    import importlib

    importlib.import_module("mlark.lineage.edges")  # the package stays callable once its modules are imported
    assert callable(mlark.lineage) and mlark.lineage("churn-rf:v1", repo=churn.repo).root.ref == "churn-rf:v1"
    assert {"lineage", "impact", "LineageGraph", "ImpactReport"} <= set(mlark.__all__)


def test_mlark_lineage_finds_the_repository_from_the_environment(churn: Churn, monkeypatch: Any) -> None:
    from mlark.api import _forget_repos

    monkeypatch.setenv("MLARK_REPO", str(churn.repo.root))
    try:
        assert mlark.lineage("churn-rf:v1").root.ref == "churn-rf:v1"
        assert mlark.impact("churn-rf:v1").model_versions[0].ref == "models:/churn/1"
    finally:
        _forget_repos()


def test_values_are_built_when_first_used(churn: Churn) -> None:
    graph = ops.lineage(churn.repo, "churn-data:v1", "down")
    assert len(graph) == 9 and "nodes=9, edges=9" in repr(graph)
    assert [n.ref for n in graph.model_versions] == ["models:/churn/1", "models:/churn/2"]
    report = ops.impact(churn.repo, "churn-data:v1")
    assert [h.ref for h in report.production] == ["models:/churn@production"]
    assert report.graph._nodes is None and report.graph._edges is None  # nothing else was built
    assert graph._nodes is None and graph._edges is None
    eager = LineageGraph(root=graph.nodes[0], direction="down", depth=None, nodes=graph.nodes, edges=graph.edges)
    assert eager == graph and eager.topological() == graph.topological()
    assert [n.ref for n in eager.model_versions] == [n.ref for n in graph.model_versions]
    assert {n.ref for n in eager.with_aliases()} == {n.ref for n in graph.with_aliases()}
    with pytest.raises(ValueError, match="takes nodes or a source"):
        LineageGraph(direction="up", edges=())
