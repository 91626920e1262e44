"""Aliases and their log, rm, and gc, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

import pytest

from mlark.errors import AliasInUse, Conflict, InvalidName, InvalidRef, NotFound
from mlark.ops.repo import Repo


def _three_versions(repo: Repo, tmp_path: Path) -> Path:
    f = tmp_path / "f.txt"
    for i in (1, 2, 3):
        f.write_bytes(b"content of version %d" % i)
        repo.add(f, name="ds", message=f"export number {i}")
    return f


def _pack_bytes(repo: Repo) -> int:
    return sum(p.stat().st_size for p in (repo.meta_dir / "packs").rglob("*.pack"))


def _pack_names(repo: Repo) -> set[str]:
    return {p.name for p in (repo.meta_dir / "packs").rglob("*.pack")}


def test_alias_set_move_remove_undo_and_the_log(repo: Repo, tmp_path: Path) -> None:
    _three_versions(repo, tmp_path)
    move = repo.alias_set("ds:v1", "production", message="first release after review")
    assert move is not None
    assert (move.artifact, move.alias, move.from_number, move.to_number) == ("ds", "production", None, 1)
    assert (move.author, move.message) == ("alice", "first release after review")
    assert repo.resolve("ds@production").number == 1
    # Setting it where it already is changes nothing and logs nothing.
    assert repo.alias_set("ds:v1", "production") is None
    assert len(repo.alias_log("ds", "production")) == 1

    move = repo.alias_set("ds:v2", "production", message="v2 passed the A/B test")
    assert (move.from_number, move.to_number) == (1, 2)
    assert repo.resolve("ds@production").number == 2
    assert repo.resolve("ds:v2").aliases == ("production",)

    move = repo.alias_remove("ds", "production", message="pause serving")
    assert (move.from_number, move.to_number, move.message) == (2, None, "pause serving")
    with pytest.raises(NotFound, match="no alias 'production'"):
        repo.resolve("ds@production")

    move = repo.alias_undo("ds@production", message="serving again")
    assert (move.from_number, move.to_number, move.message) == (None, 2, "serving again")
    assert repo.resolve("ds@production").number == 2

    move = repo.alias_undo("ds@production")
    assert (move.from_number, move.to_number) == (2, None)
    assert move.message == "undo: back to unset"
    move = repo.alias_undo("ds@production")
    assert (move.from_number, move.to_number) == (None, 2)
    assert move.message == "undo: back to v2"
    repo.alias_set("ds:v3", "production", message="v3 is better")
    move = repo.alias_undo("ds@production", message="v3 broke dashboards")
    assert (move.from_number, move.to_number) == (3, 2)
    assert repo.resolve("ds@production").number == 2

    log = repo.alias_log("ds", "production")
    assert [(m.from_number, m.to_number) for m in log] == [
        (3, 2), (2, 3), (None, 2), (2, None), (None, 2), (2, None), (1, 2), (None, 1)
    ]
    assert [m.message for m in log][-3:] == ["pause serving", "v2 passed the A/B test", "first release after review"]
    assert all(m.author == "alice" and m.alias == "production" and m.artifact == "ds" for m in log)
    assert [m.at for m in log] == sorted((m.at for m in log), reverse=True)
    assert len({m.id for m in log}) == len(log)
    d = log[-1].to_dict()
    assert (d["from"], d["to"], d["alias"], d["author"]) == (None, "ds:v1", "production", "alice")
    # The full log (every alias) includes latest's moves too.
    full = repo.alias_log("ds")
    assert {m.alias for m in full} == {"latest", "production"}
    assert len(full) == len(log) + 3


def test_alias_log_records_who_moved_it(repo: Repo, tmp_path: Path) -> None:
    _three_versions(repo, tmp_path)
    repo.alias_set("ds:v1", "best", message="alice picks v1")
    with Repo.open(repo.root, author="bob") as as_bob:
        as_bob.alias_set("ds:v3", "best", message="bob picks v3")
    log = repo.alias_log("ds", "best")
    assert [(m.author, m.message, m.from_number, m.to_number) for m in log] == [
        ("bob", "bob picks v3", 1, 3),
        ("alice", "alice picks v1", None, 1),
    ]


def test_alias_refusals_change_nothing(repo: Repo, tmp_path: Path, subtests) -> None:
    _three_versions(repo, tmp_path)
    repo.alias_set("ds:v2", "best")
    before = (repo.alias_log("ds"), repo.aliases("ds"))
    cases = [
        (lambda: repo.alias_set("ds:v1", "latest"), InvalidName, "kept by mlark itself"),
        (lambda: repo.alias_set("ds:v1", "v3"), InvalidName, "looks like a version number"),
        (lambda: repo.alias_set("ds:v1", "../x"), InvalidName, "invalid alias"),
        (lambda: repo.alias_set("ds:v9", "best"), NotFound, "ds:v9 does not exist"),
        (lambda: repo.alias_set("nope:v1", "best"), NotFound, "no artifact named 'nope'"),
        (lambda: repo.alias_set("ds:v", "best"), InvalidRef, "neither v<number>"),
        (lambda: repo.alias_remove("ds", "latest"), InvalidName, "kept by mlark itself"),
        (lambda: repo.alias_remove("ds", "never-set"), NotFound, "has no alias 'never-set'"),
        (lambda: repo.alias_undo("ds@never-set"), NotFound, "never been set"),
        (lambda: repo.alias_undo("ds:v1"), InvalidRef, "undo takes NAME@ALIAS"),
        (lambda: repo.alias_undo("ds@latest"), InvalidName, "kept by mlark itself"),
        (lambda: repo.alias_log("../x"), InvalidName, "invalid artifact name"),
    ]
    for i, (call, error, fragment) in enumerate(cases):
        with subtests.test(case=i, fragment=fragment):
            with pytest.raises(error, match=fragment):
                call()
            assert (repo.alias_log("ds"), repo.aliases("ds")) == before


def test_rm_refuses_while_an_alias_points_at_the_version(repo: Repo, tmp_path: Path) -> None:
    _three_versions(repo, tmp_path)
    repo.alias_set("ds:v2", "production", message="serving v2")
    repo.alias_set("ds:v2", "best", message="best so far")
    before = ([v.to_dict() for v in repo.history("ds", include_removed=True)], repo.alias_log("ds"))
    with pytest.raises(AliasInUse) as info:
        repo.rm("ds:v2")
    err = info.value
    assert isinstance(err, Conflict)
    assert "ds@best" in str(err) and "ds@production" in str(err) and "--force" in str(err)
    assert sorted(err.fields["aliases"]) == ["best", "production"]
    assert ([v.to_dict() for v in repo.history("ds", include_removed=True)], repo.alias_log("ds")) == before
    assert repo.resolve("ds@production").number == 2


def test_rm_force_removes_the_aliases_and_logs_them(repo: Repo, tmp_path: Path) -> None:
    _three_versions(repo, tmp_path)
    repo.alias_set("ds:v2", "production", message="serving v2")
    removed = repo.rm("ds:v2", force=True, message="v2 leaked test rows into training")
    assert removed.number == 2 and removed.removed_at is not None
    assert removed.aliases == ()
    assert [v.number for v in repo.history("ds")] == [3, 1]
    assert [v.number for v in repo.history("ds", include_removed=True)] == [3, 2, 1]
    assert repo.aliases("ds") == {"latest": 3}
    with pytest.raises(NotFound, match="was removed"):
        repo.resolve("ds:v2")
    with pytest.raises(NotFound):
        repo.resolve("ds@production")
    last = repo.alias_log("ds", "production")[0]
    assert (last.from_number, last.to_number, last.author, last.message) == (
        2, None, "alice", "v2 leaked test rows into training"
    )
    # Undo cannot bring an alias back onto a removed version.
    with pytest.raises(Conflict, match="was removed"):
        repo.alias_undo("ds@production")


def test_rm_the_newest_moves_latest_back(repo: Repo, tmp_path: Path) -> None:
    f = _three_versions(repo, tmp_path)
    repo.rm("ds:v3", message="v3 was exported from the wrong day")
    assert repo.resolve("ds").number == 2
    assert repo.aliases("ds") == {"latest": 2}
    last = repo.alias_log("ds", "latest")[0]
    assert (last.from_number, last.to_number, last.message) == (3, 2, "v3 was exported from the wrong day")
    # Numbers are never reused; the next version's parent is the newest remaining one.
    f.write_bytes(b"a fourth content")
    v4 = repo.add(f, name="ds", message="re-export from the right day")
    assert (v4.number, v4.parent_number) == (4, 2)
    # Removing a middle version leaves latest alone.
    repo.rm("ds:v1")
    assert repo.resolve("ds").number == 4
    assert [v.number for v in repo.history("ds")] == [4, 2]


def test_rm_every_version_leaves_no_latest(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"only")
    repo.add(f, name="ds", message="the only version")
    repo.rm("ds")
    assert repo.history("ds") == []
    assert repo.aliases("ds") == {}
    with pytest.raises(NotFound):
        repo.resolve("ds")
    # The same content can be added again: a new version, number 2.
    v = repo.add(f, name="ds", message="bring it back")
    assert v.number == 2 and v.parent_number is None


def test_rm_of_unknown_or_removed_versions(repo: Repo, tmp_path: Path) -> None:
    _three_versions(repo, tmp_path)
    repo.rm("ds:v1")
    with pytest.raises(NotFound):
        repo.rm("ds:v1")
    with pytest.raises(NotFound):
        repo.rm("ds:v7")
    with pytest.raises(InvalidRef):
        repo.rm("ds:")


def test_gc_after_rm_reclaims_the_bytes(repo: Repo, tmp_path: Path, snapshot: Callable) -> None:
    rng = random.Random(1)
    data = tmp_path / "data"
    data.mkdir()
    (data / "common.csv").write_bytes(b"id,x\n" + b"1,2\n" * 10_000)
    (data / "part.bin").write_bytes(rng.randbytes(600_000))
    repo.add(data, name="ds", message="first export")
    snaps = {}
    for i in (2, 3):
        (data / "part.bin").write_bytes(rng.randbytes(600_000))
        repo.add(data, name="ds", message=f"export {i} with new random part")
        repo.get(f"ds:v{i}", tmp_path / f"check{i}")
        snaps[i] = snapshot(data)
    nothing = repo.gc()
    assert (nothing.packs_deleted, nothing.packs_rewritten, nothing.bytes_freed) == (0, 0, 0)
    before = _pack_bytes(repo)
    repo.rm("ds:v1", message="v1 had personal data")
    report = repo.gc()
    assert report.bytes_freed > 500_000
    assert report.packs_deleted + report.packs_rewritten >= 1
    assert report.chunks_deleted > 0
    assert _pack_bytes(repo) <= before - 500_000
    for i in (2, 3):
        out = tmp_path / f"after{i}"
        repo.get(f"ds:v{i}", out)
        assert snapshot(out) == snaps[i]
    assert repo.fsck().ok
    # A second gc finds nothing more.
    again = repo.gc()
    assert (again.packs_deleted, again.packs_rewritten, again.bytes_freed) == (0, 0, 0)


def test_gc_rewrites_a_partly_dead_pack(repo: Repo, tmp_path: Path, snapshot: Callable) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin").write_bytes(random.Random(2).randbytes(800_000))
    (data / "small.txt").write_bytes(b"keep me\n" * 100)
    repo.add(data, name="ds", message="big file and small file")
    first_pack = _pack_names(repo)
    assert len(first_pack) == 1
    (data / "big.bin").unlink()
    repo.add(data, name="ds", message="drop the big file")
    expected = snapshot(data)
    repo.rm("ds:v1")
    report = repo.gc()
    assert report.packs_rewritten == 1
    assert report.bytes_freed > 700_000
    # The first pack (big chunks dead, small chunk alive) was replaced by a new, smaller one.
    after = _pack_names(repo)
    assert not (first_pack & after) and len(after) == 2
    assert _pack_bytes(repo) < 100_000
    out = tmp_path / "out"
    repo.get("ds", out)
    assert snapshot(out) == expected
    fsck = repo.fsck()
    assert fsck.ok, fsck.errors
    assert fsck.warnings == []


def test_gc_keeps_what_aliases_and_other_artifacts_use(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    payload = random.Random(3).randbytes(300_000)
    f.write_bytes(payload)
    repo.add(f, name="one", message="shared bytes in artifact one")
    repo.add(f, name="two", message="the same bytes in artifact two")
    f.write_bytes(b"other")
    repo.add(f, name="one", message="replace with something small")
    repo.rm("one:v1")
    repo.gc()
    assert b"".join(repo.read_file("two:v1")) == payload
    assert repo.fsck().ok


def test_gc_removes_packs_an_interrupted_add_left(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"kept")
    repo.add(f, name="ds", message="a real version")
    # A writer that sealed a pack but died before indexing it.
    writer = repo.store.writer()
    writer.put("0" * 64, b"orphan")  # digest does not matter: nothing indexes it
    orphan = writer.finish()[0]
    assert repo.fsck().warnings  # fsck notices the unindexed pack
    report = repo.gc()
    assert report.unindexed_packs_deleted == 1
    assert not repo.backend.exists(f"packs/{orphan.digest[:2]}/{orphan.digest}.pack")
    assert b"".join(repo.read_file("ds")) == b"kept"
    fsck = repo.fsck()
    assert fsck.ok and fsck.warnings == []
