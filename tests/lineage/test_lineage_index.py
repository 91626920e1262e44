"""The in-memory index and its file: built once, extended with new edges, rebuilt whenever it cannot be
trusted (damaged, from another database, edges out of id order), and never required."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import mlark
from lineage_testkit import QUIET, Churn, write_folder
from mlark.core.ids import new_id
from mlark.lineage import index
from mlark.lineage.index import LineageIndex
from mlark.meta.schema import lineage_edges
from mlark.ops import lineage as ops


def upstream_refs(repo: Any, ref: str) -> set[str]:
    return {n.ref for n in ops.lineage(repo, ref, "up").nodes}


def forbid_rebuilds(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the index was rebuilt from the table")

    monkeypatch.setattr(index, "build", refuse)


def test_the_index_is_saved_and_read_back_without_a_rebuild(fresh_churn: Churn, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = fresh_churn.repo
    path = ops.index_path(repo)
    expected = upstream_refs(repo, "models:/churn/1")
    assert path.is_file()
    index.forget()  # as in a new process
    forbid_rebuilds(monkeypatch)
    assert upstream_refs(repo, "models:/churn/1") == expected
    loaded = index.load(path, ops._database(repo))
    assert loaded is not None and loaded.edge_count == 9
    again = LineageIndex.from_bytes(loaded.to_bytes(), loaded.database)
    assert again is not None and again.ids == loaded.ids and again.fwd == loaded.fwd and again.parts == loaded.parts


def test_new_edges_are_appended_without_a_rebuild(fresh_churn: Churn, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, root = fresh_churn.repo, fresh_churn.root
    ops.lineage(repo, "churn-data:v1")  # the index is built and saved once
    forbid_rebuilds(monkeypatch)
    with mlark.start_run("churn", "evaluate", repo=repo, capture=QUIET) as run:
        run.use("churn-rf:v1")
        run.log_artifact(write_folder(root / "report", {"auc.txt": "0.91\n"}), name="churn-eval",
                         message="Offline evaluation of rf-depth-8")
    assert "churn-data:v1" in upstream_refs(repo, "churn-eval:v1")
    index.forget()
    assert "churn-features:v1" in upstream_refs(repo, "churn-eval:v1")
    assert index.load(ops.index_path(repo), ops._database(repo)).edge_count == 11  # type: ignore[union-attr]


def test_a_damaged_file_is_rebuilt(fresh_churn: Churn) -> None:
    repo = fresh_churn.repo
    path = ops.index_path(repo)
    expected = upstream_refs(repo, "models:/churn/1")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    assert index.load(path, ops._database(repo)) is None
    index.forget()
    assert upstream_refs(repo, "models:/churn/1") == expected
    assert index.load(path, ops._database(repo)) is not None  # written again
    for junk in (b"", b"MLARK-LINEAGE-INDEX\n\x05\x00\x00\x00{bad}", path.read_bytes()[:100]):
        path.write_bytes(junk)
        index.forget()
        assert upstream_refs(repo, "models:/churn/1") == expected


def test_an_index_of_another_database_is_not_used(fresh_churn: Churn) -> None:
    repo = fresh_churn.repo
    path = ops.index_path(repo)
    ops.lineage(repo, "churn-data:v1")
    assert index.load(path, "another repository|sqlite:///elsewhere.db") is None


def test_edges_arriving_out_of_id_order_force_a_rebuild(fresh_churn: Churn) -> None:
    """An edge whose id sorts below the newest one (recorded on another machine, say) is not missed."""
    repo, root = fresh_churn.repo, fresh_churn.root
    ops.lineage(repo, "churn-data:v2", "down")  # the index now holds every edge so far
    late = repo.add(write_folder(root / "late", {"x.csv": "x\n"}), name="churn-late", message="Arrived late")
    old_id = "00000000-0000-7000-8000-000000000001"
    with repo.db.write() as conn:
        conn.execute(lineage_edges.insert().values(
            id=old_id, kind="derived_from", src_type="version", src_id=fresh_churn.vid("churn-data:v2"),
            dst_type="version", dst_id=late.id, created_at=datetime.now(timezone.utc)))
    down = ops.lineage(repo, "churn-data:v2", "down")
    assert [n.ref for n in down.nodes] == ["churn-data:v2", "churn-late:v1"]


def test_an_unwritable_cache_is_not_an_error(fresh_churn: Churn) -> None:
    repo = fresh_churn.repo
    path = ops.index_path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.mkdir()  # a folder where the file should be: it can be neither read nor replaced
    index.forget()
    assert upstream_refs(repo, "models:/churn/1") >= {"churn-data:v1", "churn-rf:v1"}
    assert path.is_dir()


def test_csr_groups_edges_by_node() -> None:
    built = LineageIndex(database="t")
    ids = [new_id() for _ in range(4)]
    rows = [(new_id(), "used", "version", ids[0], "run", ids[1]),
            (new_id(), "produced", "run", ids[1], "version", ids[2]),
            (new_id(), "used", "version", ids[0], "run", ids[3]),
            (new_id(), "used", "version", ids[2], "run", ids[3])]
    built._add_edges(rows)
    pos = built.positions()
    out = {built.ids[i]: sorted(built.ids[built.dst[e]] for e in built.fwd[built.fwd_off[i]:built.fwd_off[i + 1]])
           for i in range(len(built))}
    assert out == {ids[0]: sorted([ids[1], ids[3]]), ids[1]: [ids[2]], ids[2]: [ids[3]], ids[3]: []}
    into = {built.ids[i]: sorted(built.ids[built.src[e]] for e in built.back[built.back_off[i]:built.back_off[i + 1]])
            for i in range(len(built))}
    assert into[ids[3]] == sorted([ids[0], ids[2]]) and into[ids[0]] == []
    assert built.kind_of(pos[ids[1]]) == "run" and built.edge_kind(1) == "produced"


def test_the_index_file_lives_in_the_cache_folder(fresh_churn: Churn) -> None:
    path = ops.index_path(fresh_churn.repo)
    ops.lineage(fresh_churn.repo, "churn-data:v1", "down")
    assert path == Path(fresh_churn.repo.meta_dir) / "cache" / "lineage.idx"
    assert path.read_bytes().startswith(index.MAGIC)
