"""add, history, refs and get through the public API, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import random
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

import mlark
from mlark.errors import Conflict, InvalidInput, InvalidName, InvalidPath, InvalidRef, NotFound
from mlark.ops.add import VagueMessageWarning
from mlark.ops.repo import Repo

SAMPLE_FILES = 6  # files in the conftest sample folder (links and folders are not files)


def _history_state(repo: Repo, name: str) -> list[dict[str, object]]:
    try:
        return [v.to_dict() for v in repo.history(name, include_removed=True)]
    except NotFound:
        return []


def test_add_folder_records_a_complete_version(repo: Repo, make_sample, tmp_path: Path) -> None:
    data = make_sample(tmp_path / "data")
    before = datetime.now(timezone.utc)
    outcome = repo.add_outcome(data, name="churn-data", message="May export from the CRM")
    v = outcome.version
    assert outcome.created
    assert isinstance(v, mlark.Version)
    assert (v.name, v.number, v.ref, v.type) == ("churn-data", 1, "churn-data:v1", "dataset")
    assert v.message == "May export from the CRM"
    assert v.author == "alice"
    expected_size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file() and not p.is_symlink())
    assert v.size == expected_size
    assert v.file_count == SAMPLE_FILES
    assert v.parent_number is None
    assert v.aliases == ("latest",)
    assert 0 < v.new_bytes <= expected_size + 10_000
    assert before - timedelta(seconds=1) <= v.created_at <= datetime.now(timezone.utc) + timedelta(seconds=1)
    assert v.created_at.tzinfo is not None
    assert repo.tree(v).digest == v.digest
    assert outcome.stats.bytes_new > 0
    art = repo.artifacts()
    assert [(a.name, a.type, a.version_count, a.latest, a.created_by) for a in art] == [
        ("churn-data", "dataset", 1, 1, "alice")
    ]


def test_add_single_file(repo: Repo, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    payload = random.Random(1).randbytes(300_000)
    path.write_bytes(payload)
    os.chmod(path, 0o640)
    v = repo.add(path, name="churn-model", type="model", message="XGBoost, depth 6")
    assert v.type == "model" and v.file_count == 1 and v.size == len(payload)
    tree = repo.tree(v)
    assert [(e.path, e.type, e.mode) for e in tree.entries] == [("model.onnx", "file", 0o640)]
    assert b"".join(repo.read_file("churn-model")) == payload
    assert b"".join(repo.read_file("churn-model", "model.onnx")) == payload
    out = repo.get("churn-model:v1", tmp_path / "out")
    assert (out / "model.onnx").read_bytes() == payload
    assert (out / "model.onnx").stat().st_mode & 0o777 == 0o640


def test_history_is_newest_first_with_parents_and_sizes(repo: Repo, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    big = random.Random(2).randbytes(1_000_000)
    (data / "big.bin").write_bytes(big)
    v1 = repo.add(data, name="ds", message="first export")
    (data / "big.bin").write_bytes(big[:500_000] + b"EDIT" + big[500_004:])
    v2 = repo.add(data, name="ds", message="fix one record in the middle")
    (data / "extra.txt").write_bytes(b"more")
    v3 = repo.add(data, name="ds", message="add a notes file")
    history = repo.history("ds")
    assert [v.number for v in history] == [3, 2, 1]
    assert [v.id for v in history] == [v3.id, v2.id, v1.id]
    assert [v.parent_number for v in history] == [2, 1, None]
    assert [v.message for v in history] == ["add a notes file", "fix one record in the middle", "first export"]
    assert [v.file_count for v in history] == [2, 1, 1]
    assert [v.size for v in history] == [1_000_004, 1_000_000, 1_000_000]
    assert all(v.author == "alice" for v in history)
    # Only the chunks around the edit are new.
    assert v1.new_bytes > 900_000
    assert v2.new_bytes < 400_000
    assert v3.new_bytes < 10_000
    assert [v.aliases for v in history] == [("latest",), (), ()]
    assert history[0].created_at >= history[1].created_at >= history[2].created_at
    assert repo.history("ds", limit=2) == history[:2]
    d = history[0].to_dict()
    assert d["parent"] == "ds:v2" and d["ref"] == "ds:v3" and d["aliases"] == ["latest"]
    assert len({v.digest for v in history}) == 3


def test_identical_content_makes_no_new_version(repo: Repo, make_sample, tmp_path: Path) -> None:
    data = make_sample(tmp_path / "data")
    first = repo.add_outcome(data, name="ds", message="first export")
    log_before = repo.alias_log("ds")
    again = repo.add_outcome(data, name="ds", message="the same export again, by mistake")
    assert not again.created
    assert again.version.id == first.version.id
    assert again.version.number == 1
    assert again.stats.bytes_new == 0
    assert [v.number for v in repo.history("ds")] == [1]
    assert repo.history("ds")[0].message == "first export"
    assert repo.alias_log("ds") == log_before
    # A copy of the same content elsewhere is the same version too.
    copy = tmp_path / "copy"
    repo.get("ds", copy)
    assert repo.add_outcome(copy, name="ds", message="copied folder").version.id == first.version.id


def test_identical_content_in_another_artifact_is_its_own_version(repo: Repo, make_sample, tmp_path: Path) -> None:
    data = make_sample(tmp_path / "data")
    a = repo.add(data, name="one", message="first export")
    b = repo.add_outcome(data, name="two", message="same bytes under another name")
    assert b.created and b.version.name == "two" and b.version.number == 1
    assert b.version.digest == a.digest
    assert b.stats.bytes_new == 0  # all chunks already stored


def test_latest_moves_with_each_new_version(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    numbers = []
    for i in range(3):
        f.write_bytes(b"content %d" % i)
        repo.add(f, name="ds", message=f"revision {i}")
        numbers.append(repo.resolve("ds").number)
        assert repo.resolve("ds@latest").number == i + 1
    assert numbers == [1, 2, 3]
    assert repo.aliases("ds") == {"latest": 3}
    moves = repo.alias_log("ds", "latest")
    assert [(m.from_number, m.to_number) for m in moves] == [(2, 3), (1, 2), (None, 1)]
    assert [m.message for m in moves] == ["revision 2", "revision 1", "revision 0"]
    assert all(m.author == "alice" for m in moves)


def test_aliases_given_at_add(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"one")
    v1 = repo.add(f, name="ds", message="first export", aliases=["best", "candidate"])
    assert v1.aliases == ("best", "candidate", "latest")
    f.write_bytes(b"two")
    v2 = repo.add(f, name="ds", message="second export", aliases="candidate")
    assert v2.aliases == ("candidate", "latest")
    assert repo.aliases("ds") == {"best": 1, "candidate": 2, "latest": 2}
    assert repo.resolve("ds@best").id == v1.id
    moves = repo.alias_log("ds", "candidate")
    assert [(m.from_number, m.to_number, m.message) for m in moves] == [
        (1, 2, "second export"),
        (None, 1, "first export"),
    ]
    # Identical content with a new alias: no new version, but the alias is set on the existing one.
    out = repo.add_outcome(f, name="ds", message="mark as release", aliases=["release"])
    assert not out.created and out.version.number == 2
    assert repo.aliases("ds")["release"] == 2


def test_bad_aliases_at_add_change_nothing(repo: Repo, tmp_path: Path, subtests) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"one")
    repo.add(f, name="ds", message="first export")
    f.write_bytes(b"two")
    before = _history_state(repo, "ds")
    for alias in ["latest", "v3", "../x", ""]:
        with subtests.test(alias=alias):
            with pytest.raises(InvalidName):
                repo.add(f, name="ds", message="second export", aliases=[alias])
            assert _history_state(repo, "ds") == before
            assert repo.aliases("ds") == {"latest": 1}


def test_every_ref_form_resolves(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"one")
    v1 = repo.add(f, name="ds", message="first export", aliases=["best"])
    f.write_bytes(b"two")
    v2 = repo.add(f, name="ds", message="second export")
    assert repo.resolve("ds").id == v2.id
    assert repo.resolve("ds@latest").id == v2.id
    assert repo.resolve("ds:v1").id == v1.id
    assert repo.resolve("ds:v2").id == v2.id
    assert repo.resolve("ds@best").id == v1.id
    for n in (4, 12, 64):
        assert repo.resolve(f"ds:{v1.digest[:n]}").id == v1.id
        assert repo.resolve(f"ds:{v2.digest[:n]}").id == v2.id


BAD_REFS = [
    ("ds:v9", NotFound, "ds:v9 does not exist; ds has versions v1 to v2"),
    ("nope", NotFound, "no artifact named 'nope'; known artifacts: ds"),
    ("ds@prod", NotFound, "ds has no alias 'prod'; its aliases: latest"),
    ("ds:v0", InvalidRef, "neither v<number> nor a digest prefix"),
    ("../ds", InvalidRef, "invalid artifact name"),
]


def test_unknown_or_bad_refs(repo: Repo, tmp_path: Path, subtests) -> None:
    f = tmp_path / "f.txt"
    for text in (b"one", b"two"):
        f.write_bytes(text)
        repo.add(f, name="ds", message=f"export {text.decode()}")
    digests = {v.digest for v in repo.history("ds")}
    prefix = next(p for p in ("ffffffff", "00000000", "12345678") if not any(d.startswith(p) for d in digests))
    cases = BAD_REFS + [(f"ds:{prefix}", NotFound, f"no version of ds has a digest starting {prefix}")]
    for ref, error, fragment in cases:
        with subtests.test(ref=ref):
            with pytest.raises(error) as info:
                repo.resolve(ref)
            assert fragment in str(info.value)
            with pytest.raises(error):
                repo.get(ref, tmp_path / "out")
            assert not (tmp_path / "out").exists()


def test_get_returns_byte_identical_files_modes_links_and_empty_folders(
    repo: Repo, make_sample, snapshot: Callable, tmp_path: Path
) -> None:
    data = make_sample(tmp_path / "data")
    expected = snapshot(data)
    assert expected["emptydir"] == ("dir", 0o750)
    assert expected["run.sh"][1] == 0o755 and expected["secret.key"][1] == 0o600
    assert expected["empty.txt"] == ("file", expected["empty.txt"][1], b"")
    assert expected["link"] == ("symlink", "a.txt") and expected["sub/up"] == ("symlink", "../a.txt")
    repo.add(data, name="ds", message="first export")
    report = repo.get_report("ds:v1", tmp_path / "out")
    assert report.path == (tmp_path / "out").resolve()
    assert report.files_written == SAMPLE_FILES
    assert report.bytes_written == repo.resolve("ds").size
    assert snapshot(tmp_path / "out") == expected


def test_get_into_a_matching_folder_writes_nothing(repo: Repo, make_sample, snapshot: Callable, tmp_path: Path) -> None:
    data = make_sample(tmp_path / "data")
    repo.add(data, name="ds", message="first export")
    # The folder the version was added from already matches.
    report = repo.get_report("ds", data)
    assert (report.files_written, report.files_unchanged, report.bytes_written) == (0, SAMPLE_FILES, 0)
    out = tmp_path / "out"
    repo.get("ds", out)
    inode = (out / "sub" / "deeper" / "big.bin").stat().st_ino
    again = repo.get_report("ds", out)
    assert (again.files_written, again.files_unchanged, again.bytes_written) == (0, SAMPLE_FILES, 0)
    assert (out / "sub" / "deeper" / "big.bin").stat().st_ino == inode  # not rewritten
    # Damage one file and change another's mode: get repairs exactly that.
    (out / "a.txt").write_bytes(b"HELLO\n")
    os.chmod(out / "run.sh", 0o644)
    fixed = repo.get_report("ds", out)
    assert fixed.files_written == 1 and fixed.bytes_written == len(b"hello\n")
    assert snapshot(out) == snapshot(data)


def test_get_an_older_version_over_a_newer_one(repo: Repo, tmp_path: Path, snapshot: Callable) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_bytes(b"v1 contents")
    repo.add(data, name="ds", message="first export")
    v1_snap = snapshot(data)
    (data / "x.txt").write_bytes(b"v2 contents, longer")
    (data / "y.txt").write_bytes(b"new file")
    repo.add(data, name="ds", message="second export with y")
    out = tmp_path / "out"
    repo.get("ds:v2", out)
    repo.get("ds:v1", out)
    assert (out / "x.txt").read_bytes() == b"v1 contents"
    # get does not delete files the version lacks; everything the version has is exact.
    assert {k: v for k, v in snapshot(out).items() if k in v1_snap} == v1_snap


def test_get_refuses_a_file_as_destination(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"x")
    repo.add(f, name="ds", message="first export")
    with pytest.raises(InvalidInput, match="not a folder"):
        repo.get("ds", f)
    assert f.read_bytes() == b"x"


def test_read_file_of_a_folder_version_needs_a_path(repo: Repo, make_sample, tmp_path: Path) -> None:
    data = make_sample(tmp_path / "data")
    repo.add(data, name="ds", message="first export")
    with pytest.raises(InvalidInput, match="holds 6 files"):
        list(repo.read_file("ds"))
    assert b"".join(repo.read_file("ds", "sub/table.csv")) == (data / "sub" / "table.csv").read_bytes()
    with pytest.raises(NotFound):
        list(repo.read_file("ds", "nope.txt"))
    with pytest.raises(NotFound):
        list(repo.read_file("ds", "emptydir"))


def test_metadata_and_tags_are_stored_and_returned(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"x")
    meta = {"rows": 1000, "source": {"db": "crm", "tables": ["a", "b"]}, "ratio": 0.25, "ok": True, "none": None,
            "unicode": "été"}
    v = repo.add(f, name="ds", message="first export", metadata=meta, tags=["raw", "may-2024"])
    assert v.metadata == meta and v.tags == ("raw", "may-2024")
    again = repo.resolve("ds:v1")
    assert again.metadata == meta and again.tags == ("raw", "may-2024")
    assert repo.history("ds")[0].metadata == meta
    assert v.to_dict()["metadata"] == meta and v.to_dict()["tags"] == ["raw", "may-2024"]


BAD_ADD_INPUT = [
    ({"metadata": {1: "x"}}, InvalidInput),
    ({"metadata": {"x": float("nan")}}, InvalidInput),
    ({"metadata": {"x": object()}}, InvalidInput),
    ({"metadata": ["not", "a", "dict"]}, InvalidInput),
    ({"tags": ["bad tag"]}, InvalidName),
    ({"tags": ["../x"]}, InvalidName),
    ({"name": "../x"}, InvalidName),
    ({"name": ""}, InvalidName),
    ({"name": "a/b"}, InvalidName),
    ({"name": "ds\n"}, InvalidName),
    ({"type": "bad type"}, InvalidName),
    ({"message": ""}, InvalidInput),
    ({"message": "   \n  "}, InvalidInput),
    ({"message": None}, InvalidInput),
    ({"message": "x" * 10_001}, InvalidInput),
]


def test_bad_add_input_is_refused_and_changes_nothing(repo: Repo, tmp_path: Path, subtests) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"x")
    repo.add(f, name="ds", message="first export")
    f.write_bytes(b"y")
    packs_before = sorted(p.name for p in (repo.meta_dir / "packs").rglob("*.pack"))
    for kwargs, error in BAD_ADD_INPUT:
        with subtests.test(kwargs=repr(kwargs)[:60]):
            args = {"name": "ds", "message": "second export"} | kwargs
            with pytest.raises(error) as info:
                repo.add(f, **args)
            assert "\n" not in str(info.value).replace(repr(kwargs.get("name", "")), "")
            assert [v.number for v in repo.history("ds", include_removed=True)] == [1]
            assert [a.name for a in repo.artifacts()] == ["ds"]
            assert sorted(p.name for p in (repo.meta_dir / "packs").rglob("*.pack")) == packs_before
    assert repo.fsck().ok


def test_empty_message_is_refused_with_a_hint(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"x")
    with pytest.raises(InvalidInput, match="a message is required: say what changed and why"):
        repo.add(f, name="ds", message="")
    assert repo.artifacts() == []


def test_vague_messages_warn_but_still_commit(repo: Repo, tmp_path: Path, subtests) -> None:
    f = tmp_path / "f.txt"
    for i, message in enumerate(["update", "wip", "Update.", "changes", "added file", "WIP", "fix"]):
        with subtests.test(message=message):
            f.write_bytes(b"x%d" % i)
            with pytest.warns(VagueMessageWarning, match="does not say what changed or why"):
                outcome = repo.add_outcome(f, name="ds", message=message)
            assert outcome.created and outcome.version.message == message
            assert outcome.version.number == i + 1
            assert outcome.warnings and "does not say" in outcome.warnings[0]
    assert [v.message for v in repo.history("ds")][:2] == ["fix", "WIP"]


def test_specific_messages_do_not_warn(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"x")
    with warnings.catch_warnings():
        warnings.simplefilter("error", VagueMessageWarning)
        out = repo.add_outcome(f, name="ds", message="update tenure buckets to match finance's definition")
    assert out.warnings == []


def test_an_artifact_keeps_its_type(repo: Repo, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"x")
    repo.add(f, name="m", type="model", message="first model")
    f.write_bytes(b"y")
    with pytest.raises(Conflict, match="has type 'model', not 'dataset'"):
        repo.add(f, name="m", type="dataset", message="second model")
    assert repo.add(f, name="m", message="second model").type == "model"


def test_adding_what_cannot_be_stored_is_refused(repo: Repo, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        repo.add(tmp_path / "missing", name="ds", message="first export")
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.txt").write_bytes(b"x")
    os.symlink("../../etc/passwd", data / "escape")
    with pytest.raises(InvalidPath, match="outside the added folder"):
        repo.add(data, name="ds", message="first export")
    (data / "escape").unlink()
    os.symlink("/etc/passwd", data / "absolute")
    with pytest.raises(InvalidPath):
        repo.add(data, name="ds", message="first export")
    (data / "absolute").unlink()
    os.mkfifo(data / "pipe")
    with pytest.raises(InvalidInput, match="special file"):
        repo.add(data, name="ds", message="first export")
    assert repo.artifacts() == []
    assert list((repo.meta_dir / "packs").rglob("*.pack")) == []


def test_get_refuses_a_file_where_the_version_has_a_folder(repo: Repo, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub" / "deeper").mkdir(parents=True)
    (data / "sub" / "deeper" / "f.txt").write_bytes(b"inside")
    (data / "empty").mkdir()
    repo.add(data, name="ds", message="nested folders")
    for blocker in ("sub", "sub/deeper", "empty"):
        out = tmp_path / f"out-{blocker.replace('/', '-')}"
        (out / blocker).parent.mkdir(parents=True, exist_ok=True)
        (out / blocker).write_bytes(b"a file in the way")
        with pytest.raises(InvalidInput, match="is in the way"):
            repo.get("ds", out)
        assert (out / blocker).read_bytes() == b"a file in the way"


def test_get_never_writes_through_a_link_out_of_the_destination(repo: Repo, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub" / "deeper").mkdir(parents=True)
    (data / "sub" / "deeper" / "f.txt").write_bytes(b"inside")
    repo.add(data, name="ds", message="nested folders")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(elsewhere, out / "sub")
    with pytest.raises(InvalidInput, match="outside"):
        repo.get("ds", out)
    assert list(elsewhere.iterdir()) == []  # not even a folder was created there
