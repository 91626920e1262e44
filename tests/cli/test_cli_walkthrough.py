"""The real `mlark` console script, run as a subprocess, through the whole walkthrough and its error cases."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlark.cli.exit import ExitStatus
from mlark.ops.repo import Repo

MLARK = str(Path(sys.executable).with_name("mlark"))  # the console script of the interpreter running the tests
AUTHOR = "erin@example"


def mlark(cwd: Path, *args: str, check: int | None = ExitStatus.OK, **env: str) -> subprocess.CompletedProcess[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLARK_")}
    environment.update({"MLARK_AUTHOR": AUTHOR, "COLUMNS": "200", "NO_COLOR": "1"}, **env)
    proc = subprocess.run([MLARK, *args], cwd=cwd, env=environment, capture_output=True, timeout=120)
    if check is not None:
        assert proc.returncode == check, (args, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc


def as_json(proc: subprocess.CompletedProcess[bytes]) -> Any:
    return json.loads(proc.stdout)


def assert_one_line_error(proc: subprocess.CompletedProcess[bytes], status: ExitStatus, fragment: str) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == status, (proc.returncode, err)
    assert "Traceback" not in err and "Traceback" not in proc.stdout.decode()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mlark: "), err
    assert fragment in lines[0], err
    return lines[0]


def repo_state(root: Path) -> dict[str, Any]:
    """History (with removed versions), alias logs, pack files and fsck, read through the API."""
    with Repo.open(root) as repo:
        arts = repo.artifacts()
        return {
            "artifacts": [(a.name, a.type, a.version_count, a.latest) for a in arts],
            "history": {a.name: [v.to_dict() for v in repo.history(a.name, include_removed=True)] for a in arts},
            "alias_log": {a.name: [m.to_dict() for m in repo.alias_log(a.name)] for a in arts},
            "packs": sorted(p.name for p in (repo.meta_dir / "packs").rglob("*.pack")),
            "fsck": repo.fsck().to_dict(),
        }


def make_data(root: Path) -> Path:
    data = root / "data"
    (data / "nested").mkdir(parents=True)
    (data / "train.csv").write_bytes(b"id,churned\n" + b"".join(b"%d,%d\n" % (i, i % 2) for i in range(20_000)))
    (data / "nested" / "blob.bin").write_bytes(random.Random(1).randbytes(300_000))
    (data / "empty.txt").write_bytes(b"")
    (data / "run.sh").write_bytes(b"#!/bin/sh\n")
    os.chmod(data / "run.sh", 0o755)
    return data


def test_help_exits_zero(tmp_path: Path) -> None:
    proc = mlark(tmp_path, "--help")
    text = proc.stdout.decode()
    for command in ("init", "add", "log", "show", "get", "status", "rm", "gc", "fsck", "alias"):
        assert command in text
    assert mlark(tmp_path, "alias", "--help").returncode == 0


def test_walkthrough(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    # init
    doc = as_json(mlark(root, "init", "--json"))
    assert doc["format"] == 1 and doc["path"] == str(root / ".mlark")
    assert (root / ".mlark" / "repo.json").is_file()
    data = make_data(root)
    v1_blob = (data / "nested" / "blob.bin").read_bytes()

    # add
    out = as_json(mlark(root, "add", "data", "-n", "churn", "-m", "May export from the CRM", "--meta", "rows=20000",
                        "--meta", "source=crm", "--tag", "raw", "--alias", "candidate", "--json"))
    assert out["created"] is True
    v1 = out["version"]
    assert (v1["ref"], v1["number"], v1["author"], v1["file_count"], v1["parent"]) == ("churn:v1", 1, AUTHOR, 4, None)
    assert v1["metadata"] == {"rows": 20000, "source": "crm"} and v1["tags"] == ["raw"]
    assert v1["aliases"] == ["candidate", "latest"]
    assert out["bytes_new"] > 0 and out["warnings"] == []

    # add again: identical content, no new version
    again = as_json(mlark(root, "add", "data", "-n", "churn", "-m", "same export again", "--json"))
    assert again["created"] is False and again["version"]["ref"] == "churn:v1" and again["bytes_new"] == 0

    # a real change, with a vague message: warned, still committed
    (data / "train.csv").write_bytes((data / "train.csv").read_bytes() + b"20000,1\n")
    (data / "nested" / "blob.bin").write_bytes(random.Random(99).randbytes(300_000))
    proc = mlark(root, "add", "data", "-n", "churn", "-m", "update")
    assert "churn:v2" in proc.stdout.decode()
    assert "warning:" in proc.stderr.decode() and "does not say what changed" in proc.stderr.decode()

    # log
    log = as_json(mlark(root, "log", "churn", "--json"))
    assert [v["ref"] for v in log] == ["churn:v2", "churn:v1"]
    assert [v["parent"] for v in log] == ["churn:v1", None]
    assert [v["message"] for v in log] == ["update", "May export from the CRM"]
    assert all({"author", "created_at", "size", "new_bytes", "file_count", "digest"} <= set(v) for v in log)
    assert log[0]["new_bytes"] > 0 and log[1]["new_bytes"] > 0
    assert "churn:v2" in mlark(root, "log", "churn").stdout.decode()

    # show
    show = as_json(mlark(root, "show", "churn:v1", "--json"))
    assert show["ref"] == "churn:v1" and show["metadata"] == {"rows": 20000, "source": "crm"}
    entries = {e["path"]: e for e in show["entries"]}
    assert set(entries) == {"empty.txt", "nested/blob.bin", "run.sh", "train.csv"}
    assert entries["run.sh"]["mode"] == 0o755 and entries["empty.txt"]["size"] == 0
    assert entries["nested/blob.bin"]["chunks"] >= 2
    assert as_json(mlark(root, "show", f"churn:{show['digest'][:10]}", "--json"))["ref"] == "churn:v1"
    assert as_json(mlark(root, "show", "churn@candidate", "--json"))["ref"] == "churn:v1"

    # get --to
    got = as_json(mlark(root, "get", "churn:v1", "--to", "restored", "--json"))
    assert got["ref"] == "churn:v1" and got["files_written"] == 4 and got["files_unchanged"] == 0
    assert (root / "restored" / "nested" / "blob.bin").read_bytes() == v1_blob
    assert (root / "restored" / "train.csv").read_bytes() != (data / "train.csv").read_bytes()  # v1, not v2
    assert (root / "restored" / "run.sh").stat().st_mode & 0o777 == 0o755
    regot = as_json(mlark(root, "get", "churn:v1", "--to", "restored", "--json"))
    assert regot["files_written"] == 0 and regot["files_unchanged"] == 4

    # alias set / log / ls
    move = as_json(mlark(root, "alias", "set", "churn:v1", "production", "-m", "v1 passed review", "--json"))
    assert (move["alias"], move["from"], move["to"], move["author"], move["message"]) == (
        "production", None, "churn:v1", AUTHOR, "v1 passed review")
    alias_log = as_json(mlark(root, "alias", "log", "churn", "--json"))
    assert alias_log[0]["alias"] == "production" and alias_log[0]["to"] == "churn:v1"
    assert {m["alias"] for m in alias_log} == {"latest", "candidate", "production"}
    assert all({"from", "to", "author", "at", "message"} <= set(m) for m in alias_log)
    only = as_json(mlark(root, "alias", "log", "churn", "--alias", "latest", "--json"))
    assert [(m["from"], m["to"]) for m in only] == [("churn:v1", "churn:v2"), (None, "churn:v1")]
    assert as_json(mlark(root, "alias", "ls", "churn", "--json")) == {
        "candidate": "churn:v1", "latest": "churn:v2", "production": "churn:v1"}

    # status
    status = as_json(mlark(root, "status", "data", "--json"))
    assert status["clean"] is True and status["ref"] == "churn:v2"
    (data / "run.sh").write_bytes(b"#!/bin/sh\necho changed\n")
    (data / "extra.txt").write_bytes(b"new")
    status = as_json(mlark(root, "status", "data", "--json"))
    assert status["clean"] is False and status["modified"] == ["run.sh"] and status["added"] == ["extra.txt"]
    mlark(root, "status", "data", "--exit-code", check=ExitStatus.DIFFERS)
    assert as_json(mlark(root, "status", "restored", "--ref", "churn:v1", "--json"))["clean"] is True

    # rm: refused while production points at v1, then forced
    before = repo_state(root)
    proc = mlark(root, "rm", "churn:v1", check=None)
    assert_one_line_error(proc, ExitStatus.CONFLICT, "churn@production")
    assert repo_state(root) == before
    removed = as_json(mlark(root, "rm", "churn:v1", "--force", "-m", "v1 had personal data", "--json"))
    assert removed["ref"] == "churn:v1" and removed["removed_at"] is not None
    assert [v["ref"] for v in as_json(mlark(root, "log", "churn", "--all", "--json"))] == ["churn:v2", "churn:v1"]
    last = as_json(mlark(root, "alias", "log", "churn", "--alias", "production", "--json"))[0]
    assert (last["from"], last["to"], last["message"]) == ("churn:v1", None, "v1 had personal data")

    # gc
    gc = as_json(mlark(root, "gc", "--json"))
    assert {"packs_deleted", "packs_rewritten", "bytes_freed", "live_chunks"} <= set(gc)
    assert gc["bytes_freed"] > 200_000 and gc["live_chunks"] > 0  # v1's blob.bin is gone
    assert gc["packs_deleted"] + gc["packs_rewritten"] >= 1

    # fsck
    fsck = as_json(mlark(root, "fsck", "--json"))
    assert fsck["ok"] is True and fsck["errors"] == [] and fsck["versions_checked"] == 1
    assert mlark(root, "fsck").stdout.decode().strip().endswith("ok")
    got = as_json(mlark(root, "get", "churn", "--to", "v2copy", "--json"))
    assert got["files_written"] == 4
    assert (root / "v2copy" / "train.csv").read_bytes() == (data / "train.csv").read_bytes()

    # ls
    arts = as_json(mlark(root, "ls", "--json"))
    assert [(a["name"], a["type"], a["versions"], a["latest"]) for a in arts] == [("churn", "dataset", 1, "churn:v2")]


def test_get_to_stdout_is_byte_identical(tmp_path: Path) -> None:
    mlark(tmp_path, "init")
    payload = random.Random(2).randbytes(700_000) + b"\x00\r\n\xff" * 100
    (tmp_path / "model.bin").write_bytes(payload)
    mlark(tmp_path, "add", "model.bin", "-n", "model", "-t", "model", "-m", "first trained model")
    assert mlark(tmp_path, "get", "model", "--to", "-").stdout == payload
    (tmp_path / "empty.bin").write_bytes(b"")
    mlark(tmp_path, "add", "empty.bin", "-n", "nothing", "-m", "an empty file on purpose")
    assert mlark(tmp_path, "get", "nothing", "--to", "-").stdout == b""
    # A folder version has several files: say which one.
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"a")
    (tmp_path / "d" / "b").write_bytes(b"bb")
    mlark(tmp_path, "add", "d", "-n", "folder", "-m", "two small files")
    assert mlark(tmp_path, "get", "folder", "--to", "-", "--file", "b").stdout == b"bb"
    proc = mlark(tmp_path, "get", "folder", "--to", "-", check=None)
    assert_one_line_error(proc, ExitStatus.USAGE, "holds 2 files")


def test_outside_a_repository(tmp_path: Path) -> None:
    for args in (("log", "x"), ("add", ".", "-n", "x", "-m", "first export")):
        proc = mlark(tmp_path, *args, check=None)
        assert_one_line_error(proc, ExitStatus.NOT_A_REPOSITORY, "not inside an mlark repository")
    proc = mlark(tmp_path, "log", "x", "--json", check=None)
    assert proc.returncode == ExitStatus.NOT_A_REPOSITORY
    doc = as_json(proc)
    assert doc["error"] == "NotARepository" and doc["exit_status"] == "NOT_A_REPOSITORY"
    assert not (tmp_path / ".mlark").exists()


@pytest.fixture(scope="module")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built")
    mlark(root, "init")
    data = make_data(root)
    mlark(root, "add", str(data), "-n", "churn", "-m", "May export from the CRM")
    mlark(root, "alias", "set", "churn:v1", "production", "-m", "serving v1")
    return root


@pytest.fixture
def project(built_project: Path, tmp_path: Path) -> Path:
    """A private copy of a small repository (one version, aliased production) and its data folder."""
    copy = tmp_path / "project"
    shutil.copytree(built_project, copy, symlinks=True)
    return copy


REFUSED = [
    (("add", "data", "-n", "../x", "-m", "first export"), ExitStatus.USAGE, "invalid artifact name '../x'"),
    (("add", "data", "-n", "churn", "-m", ""), ExitStatus.USAGE, "a message is required"),
    (("add", "data", "-n", "churn", "-m", "x", "--alias", "latest"), ExitStatus.USAGE, "kept by mlark itself"),
    (("add", "nowhere", "-n", "churn", "-m", "first export"), ExitStatus.NOT_FOUND, "nowhere does not exist"),
    (("add", "data", "-n", "churn", "-t", "model", "-m", "x"), ExitStatus.CONFLICT, "has type 'dataset'"),
    (("show", "churn:v9"), ExitStatus.NOT_FOUND, "churn:v9 does not exist"),
    (("show", "nope"), ExitStatus.NOT_FOUND, "no artifact named 'nope'"),
    (("show", "churn:v"), ExitStatus.USAGE, "neither v<number> nor a digest prefix"),
    (("get", "churn:v9", "--to", "out"), ExitStatus.NOT_FOUND, "churn:v9 does not exist"),
    (("get", "churn", "--to", "blocked"), ExitStatus.USAGE, "is in the way"),
    (("rm", "churn:v1"), ExitStatus.CONFLICT, "churn@production"),
    (("rm", "churn:v2"), ExitStatus.NOT_FOUND, "churn:v2 does not exist"),
    (("alias", "set", "churn:v1", "latest"), ExitStatus.USAGE, "kept by mlark itself"),
    (("alias", "rm", "churn", "best"), ExitStatus.NOT_FOUND, "has no alias 'best'"),
]


def test_refused_commands_exit_with_their_status_and_change_nothing(project: Path, subtests) -> None:
    before = repo_state(project)
    assert before["fsck"]["ok"]
    (project / "blocked").mkdir()
    (project / "blocked" / "nested").write_bytes(b"a file where churn has a folder")
    for args, status, fragment in REFUSED:
        with subtests.test(args=" ".join(args)):
            proc = mlark(project, *args, check=None)
            assert_one_line_error(proc, status, fragment)
            assert repo_state(project) == before
            assert not (project / "out").exists()
    # With --json the error is also a JSON document on stdout.
    proc = mlark(project, "show", "churn:v9", "--json", check=None)
    doc = as_json(proc)
    assert proc.returncode == ExitStatus.NOT_FOUND
    assert doc["error"] == "NotFound" and doc["exit_status"] == "NOT_FOUND" and "churn:v9" in doc["message"]


def test_click_usage_errors_exit_with_usage(project: Path) -> None:
    before = repo_state(project)
    for args in (("add", "data", "-m", "no name given"), ("nosuchcommand",), ("log", "churn", "--limit", "0")):
        proc = mlark(project, *args, check=None)
        assert proc.returncode == ExitStatus.USAGE, args
        assert b"Traceback" not in proc.stderr
    assert repo_state(project) == before


def test_future_format_is_refused(project: Path) -> None:
    path = project / ".mlark" / "repo.json"
    doc = json.loads(path.read_text())
    doc["format"] = 99
    path.write_text(json.dumps(doc))
    for args in (("log", "churn"), ("add", "data", "-n", "churn", "-m", "try to write anyway")):
        proc = mlark(project, *args, check=None)
        line = assert_one_line_error(proc, ExitStatus.UNSUPPORTED_FORMAT, "format version 99")
        assert "understands format 1" in line
    proc = mlark(project, "log", "churn", "--json", check=None)
    assert as_json(proc)["exit_status"] == "UNSUPPORTED_FORMAT"
    doc["format"] = 1
    path.write_text(json.dumps(doc))
    assert [v["ref"] for v in as_json(mlark(project, "log", "churn", "--json"))] == ["churn:v1"]


def test_damage_is_reported_with_the_integrity_status(project: Path) -> None:
    pack = max((project / ".mlark" / "packs").rglob("*.pack"), key=lambda p: p.stat().st_size)
    raw = bytearray(pack.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    pack.write_bytes(bytes(raw))
    proc = mlark(project, "fsck", check=None)
    assert proc.returncode == ExitStatus.INTEGRITY
    assert pack.stem in proc.stderr.decode()
    doc = as_json(mlark(project, "fsck", "--json", check=ExitStatus.INTEGRITY))
    assert doc["ok"] is False and doc["errors"]
    proc = mlark(project, "get", "churn", "--to", "out", check=None)
    assert_one_line_error(proc, ExitStatus.INTEGRITY, "corrupt")


@pytest.mark.postgres
def test_walkthrough_on_postgresql(pg_cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dbname = pg_cluster.create_database()
    try:
        _postgres_walkthrough(pg_cluster.url(dbname), tmp_path)
    finally:
        pg_cluster.drop_database(dbname)


def _postgres_walkthrough(database_url: str, tmp_path: Path) -> None:
    mlark(tmp_path, "init", "--database", database_url)
    assert json.loads((tmp_path / ".mlark" / "repo.json").read_text())["database"] == database_url
    assert not (tmp_path / ".mlark" / "meta.db").exists()
    data = make_data(tmp_path)
    assert as_json(mlark(tmp_path, "add", "data", "-n", "churn", "-m", "May export", "--json"))["created"]
    assert not as_json(mlark(tmp_path, "add", "data", "-n", "churn", "-m", "again", "--json"))["created"]
    mlark(tmp_path, "alias", "set", "churn:v1", "production")
    assert_one_line_error(mlark(tmp_path, "rm", "churn", check=None), ExitStatus.CONFLICT, "churn@production")
    assert [v["ref"] for v in as_json(mlark(tmp_path, "log", "churn", "--json"))] == ["churn:v1"]
    got = as_json(mlark(tmp_path, "get", "churn", "--to", "out", "--json"))
    assert got["files_written"] == 4
    assert (tmp_path / "out" / "train.csv").read_bytes() == (data / "train.csv").read_bytes()
    assert as_json(mlark(tmp_path, "fsck", "--json"))["ok"] is True
