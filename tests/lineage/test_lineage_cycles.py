"""Lineage stays acyclic: every way of recording an edge refuses one that would close a cycle, with
an error naming the path; derive records version -> version edges, with a message."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

import mlark
from lineage_testkit import QUIET, Churn, write_folder
from mlark.core.ids import new_id
from mlark.errors import Conflict, InvalidInput
from mlark.lineage import edges
from mlark.lineage.errors import CycleRefused
from mlark.meta.db import Database
from mlark.meta.schema import lineage_edges
from mlark.ops import lineage as ops
from mlark.ops import run_start
from mlark.ops.add import VagueMessageWarning

NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


def edge_count(repo: Any) -> int:
    with repo.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(lineage_edges)).scalar() or 0)


def test_derive_records_a_version_to_version_edge_with_its_message(fresh_churn: Churn) -> None:
    repo, root = fresh_churn.repo, fresh_churn.root
    fixed = repo.add(write_folder(root / "fixed", {"train.csv": "tenure,churned\n1,0\n"}), name="churn-data-fixed",
                     type="dataset", message="Labels checked by hand")
    done = ops.derive(repo, "churn-data-fixed:v1", "churn-data:v2", "Relabelled 12 rows the May export got wrong")
    assert (done.child, done.parent, done.created) == ("churn-data-fixed:v1", "churn-data:v2", True)
    assert done.child_id == fixed.id and done.author == "alice"
    assert done.message == "Relabelled 12 rows the May export got wrong"
    with repo.db.read() as conn:
        row = conn.execute(select(lineage_edges).where(lineage_edges.c.kind == "derived_from")).one()
    assert (row.src_id, row.dst_id, row.src_type, row.dst_type) == (fresh_churn.vid("churn-data:v2"), fixed.id,
                                                                     "version", "version")
    assert (row.message, row.author) == (done.message, "alice")
    up = ops.lineage(repo, "churn-data-fixed:v1", "up")
    assert [(e.kind, up.node(e.source).ref) for e in up.edges] == [("derived_from", "churn-data:v2")]
    down = ops.impact(repo, "churn-data:v2")
    assert [n.ref for n in down.versions] == ["churn-data-fixed:v1"]
    again = ops.derive(repo, "churn-data-fixed:v1", "churn-data:v2", "Recorded twice by a script")
    assert not again.created and again.message == done.message  # the first record stands
    assert edge_count(repo) == 10  # 9 of the pipeline + 1


def test_a_run_cannot_use_a_version_derived_from_its_own_output(fresh_churn: Churn) -> None:
    repo, root = fresh_churn.repo, fresh_churn.root
    repo.add(write_folder(root / "relabelled", {"features.csv": "x\n"}), name="churn-features-fixed",
             type="dataset", message="Features with the leaking column dropped")
    ops.derive(repo, "churn-features-fixed:v1", "churn-features:v1", "Dropped the leaking column")
    before = edge_count(repo)
    with run_start.resume_run(repo, fresh_churn.rid("featurize")) as run:
        with pytest.raises(Conflict) as caught:
            run.use("churn-features-fixed:v1")
    message = str(caught.value)
    assert "cannot use churn-features-fixed:v1" in message and "acyclic" in message
    assert ("cycle: run featurize (" in message and "--produced--> churn-features:v1 --derived_from--> "
            "churn-features-fixed:v1 --used (refused)--> run featurize (") in message
    cause = caught.value.__cause__
    assert isinstance(cause, CycleRefused)
    assert cause.fields["cycle"][1:3] == ["churn-features:v1", "churn-features-fixed:v1"]
    assert cause.fields["cycle_ids"][0] == cause.fields["cycle_ids"][-1] == fresh_churn.rid("featurize")
    assert edge_count(repo) == before


def test_a_run_cannot_use_its_own_output_through_other_runs(fresh_churn: Churn) -> None:
    with run_start.resume_run(fresh_churn.repo, fresh_churn.rid("featurize")) as run:
        with pytest.raises(Conflict, match=r"cycle: run featurize .* --used--> run rf-depth-8 .* --produced--> "
                                           r"churn-rf:v1 --used \(refused\)--> run featurize"):
            run.use("churn-rf:v1")


def test_a_run_cannot_log_what_it_was_made_from(fresh_churn: Churn) -> None:
    repo, root = fresh_churn.repo, fresh_churn.root
    with mlark.start_run("churn", "relog", repo=repo, capture=QUIET) as run:
        run.use("churn-data:v1")
        same_as_v1 = write_folder(root / "again", {"train.csv": "tenure,churned\n1,1\n40,0\n3,1\n"})
        with pytest.raises(Conflict, match=r"cannot have produced churn-data:v1.*cycle: churn-data:v1 --used--> "
                                           r"run relog \(.*\) --produced \(refused\)--> churn-data:v1"):
            run.log_artifact(same_as_v1, name="churn-data", message="Re-logged the May export")


def test_derive_refuses_cycles_and_self_loops(fresh_churn: Churn) -> None:
    repo = fresh_churn.repo
    before = edge_count(repo)
    with pytest.raises(CycleRefused) as caught:
        ops.derive(repo, "churn-data:v1", "churn-rf:v1", "The model's predictions became the labels")
    assert str(caught.value).startswith("churn-data:v1 cannot be derived from churn-rf:v1: churn-rf:v1 was itself "
                                        "made from churn-data:v1")
    assert caught.value.fields["cycle"][0] == caught.value.fields["cycle"][-1] == "churn-data:v1"
    assert "churn-rf:v1 --derived_from (refused)--> churn-data:v1" in caught.value.fields["cycle_text"]
    with pytest.raises(CycleRefused, match="cannot be derived from itself"):
        ops.derive(repo, "churn-data:v2", "churn-data:v2", "Nothing changed at all")
    assert edge_count(repo) == before


def test_derive_links_versions_only_and_needs_a_message(fresh_churn: Churn) -> None:
    repo = fresh_churn.repo
    with pytest.raises(InvalidInput, match="derive links two versions; the parent .* is a run"):
        ops.derive(repo, "churn-data:v2", f"run:{fresh_churn.rid('featurize')}", "From a run")
    with pytest.raises(InvalidInput, match="the child models:/churn/1 is a registered model version"):
        ops.derive(repo, "models:/churn/1", "churn-data:v2", "From a model")
    with pytest.raises(InvalidInput, match="a message is required"):
        ops.derive(repo, "churn-data:v2", "churn-data:v1", "  ")
    with pytest.warns(VagueMessageWarning, match="does not say what changed"):
        ops.derive(repo, "churn-data:v2", "churn-data:v1", "update")
    assert mlark.lineage.derive("churn-rf:v2", "churn-data:v2", "Retrained on the June export",
                                repo=repo).created


def test_the_message_of_a_refused_edge_names_records_even_without_rows(database_url: str) -> None:
    db = Database.open(database_url, create=True)
    try:
        v, r = new_id(), new_id()
        db.run_write(lambda c: edges.record_produced(c, r, v, now=NOW))
        with pytest.raises(CycleRefused, match=rf"^run {r} cannot use version {v}: .*\(cycle: run {r} --produced--> version {v} --used \(refused\)--> run {r}\)$"):
            db.run_write(lambda c: edges.record_used(c, v, r, now=NOW))
    finally:
        db.close()


# --------------------------------------------------------------------------- property: random graphs


@st.composite
def dags(draw: Any) -> tuple[int, list[tuple[int, int]]]:
    """A random DAG over versions and runs (edges from lower to higher numbers only) and extra edges to try."""
    n = draw(st.integers(min_value=2, max_value=14))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=30))
    return n, pairs


def _reaches(adj: dict[int, set[int]], a: int, b: int) -> bool:
    stack, seen = [a], {a}
    while stack:
        u = stack.pop()
        if u == b:
            return True
        for v in adj.get(u, ()):
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(graph=dags())
def test_random_edges_are_refused_exactly_when_they_close_a_cycle(database_url: str, graph: Any) -> None:
    """Against a reference: every edge is accepted iff no path leads back; walks match; topological holds."""
    n, pairs = graph
    db = Database.open(database_url, create=True)
    try:
        ids = [new_id() for _ in range(n)]
        adj: dict[int, set[int]] = {}
        with db.write() as conn:
            conn.execute(lineage_edges.delete())
        for a, b in pairs:
            closes = a == b or _reaches(adj, b, a)
            try:
                db.run_write(lambda c: edges.record_derived(c, ids[a], ids[b], now=NOW, message="m", author="t"))
                accepted = True
            except CycleRefused as exc:
                accepted = False
                path = exc.fields["cycle_ids"]
                assert path[0] == path[-1] == ids[b] and ids[a] in path
            assert accepted == (not closes), (a, b)
            if accepted:
                adj.setdefault(a, set()).add(b)
        from mlark.lineage.index import build, stamp
        from mlark.lineage.walk import walk

        with db.read() as conn:
            index = build(conn, "test", stamp(conn)[1])
        for start in range(n):
            pos = index.position(ids[start])
            if pos is None:
                continue
            down = {index.ids[i] for i in walk(index, pos, "down").order}
            assert down == {ids[j] for j in range(n) if _reaches(adj, start, j)}
    finally:
        db.close()
