"""Committing content identical to an older version is a revert: no new version, latest follows."""

from __future__ import annotations

from pathlib import Path

from mlark.core.ids import new_id
from mlark.ops.repo import Repo


def test_revert_moves_latest_back_and_logs_it(repo: Repo, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.csv").write_text("a,b\n1,2\n")
    v1 = repo.add(data, name="d", message="First export of the table")
    (data / "f.csv").write_text("a,b\n1,3\n")
    v2 = repo.add(data, name="d", message="Correct b in row 1")
    (data / "f.csv").write_text("a,b\n1,2\n")
    outcome = repo.add_outcome(data, name="d", message="Undo the correction: the source was right")
    assert not outcome.created
    assert outcome.version.number == v1.number
    assert repo.resolve("d").number == v1.number
    assert [v.number for v in repo.history("d")] == [v2.number, v1.number]
    move = repo.alias_log("d", "latest")[0]
    assert (move.from_number, move.to_number) == (v2.number, v1.number)
    assert "identical to d:v1" in move.message


def test_identical_readd_of_latest_moves_nothing(repo: Repo, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.csv").write_text("x\n")
    repo.add(data, name="d", message="First export of the table")
    before = repo.alias_log("d")
    outcome = repo.add_outcome(data, name="d", message="Same content again")
    assert not outcome.created
    assert repo.alias_log("d") == before


def test_ids_strictly_increase_within_a_process() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i[14] == "7" for i in ids)  # UUID version 7
