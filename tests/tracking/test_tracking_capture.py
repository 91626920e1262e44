"""Capture: git state with the uncommitted diff stored as a blob, command, Python, packages, host, user; seeds."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlark.ops import run_search, run_start
from mlark.ops.repo import Repo
from mlark.tracking.capture import Capture, capture, git_state, installed_packages
from mlark.tracking.seeds import seed_everything

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=T", "-c", "init.defaultBranch=main"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def code(tmp_path: Path) -> Path:
    """A git work tree with one commit, a remote with credentials in its URL, then a tracked file edited."""
    folder = tmp_path / "code"
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / "train.py").write_text("lr = 0.1\n")
    git(folder, "add", "train.py")
    git(folder, "commit", "-q", "-m", "first")
    git(folder, "remote", "add", "origin", "https://bob:s3cret@example.com/team/churn.git")
    (folder / "train.py").write_text("lr = 0.2\n")
    (folder / "notes.txt").write_text("untracked\n")
    return folder


def test_git_state_of_a_dirty_tree(code: Path) -> None:
    info, diff = git_state(str(code))
    assert info is not None and diff is not None
    assert info["commit"] == git(code, "rev-parse", "HEAD")
    assert info["branch"] == "main"
    assert info["remote"] == "https://example.com/team/churn.git"  # the password is not kept
    assert info["dirty"] is True
    assert info["untracked"] == ["notes.txt"]
    assert b"-lr = 0.1" in diff and b"+lr = 0.2" in diff


def test_a_clean_tree_has_no_diff(code: Path) -> None:
    git(code, "checkout", "-q", "train.py")
    info, diff = git_state(str(code))
    assert info is not None and info["dirty"] is False and diff is None


def test_outside_git_there_is_nothing(tmp_path: Path) -> None:
    assert git_state(str(tmp_path)) == (None, None)


def test_a_run_stores_the_diff_as_a_blob_that_survives_gc_and_fsck(code: Path, repo: Repo) -> None:
    with run_start.start_run(repo, "churn", capture_options=Capture(code_dir=str(code))) as run:
        pass
    stored = run_search.get_run(repo, run.id)
    git_info = stored.git
    assert git_info is not None and git_info["dirty"] is True and len(git_info["diff"]) == 64
    assert b"+lr = 0.2" in (stored.git_diff() or b"")
    repo.gc()
    assert b"+lr = 0.2" in (run_search.get_run(repo, run.id).git_diff() or b"")
    report = repo.fsck()
    assert report.ok, report.errors


def test_a_run_captures_command_environment_host_and_user(repo: Repo) -> None:
    with run_start.start_run(repo, "churn", capture_options=Capture(git=False)) as run:
        pass
    stored = run_search.get_run(repo, run.id)
    assert stored.command == [str(a) for a in sys.orig_argv]
    env = stored.environment or {}
    assert env["python"] == ".".join(str(n) for n in sys.version_info[:3])
    assert env["packages"]["numpy"] == np.__version__
    assert "sqlalchemy" in env["packages"]
    assert stored.host and stored.user == "alice"
    assert stored.git is None


def test_each_part_can_be_turned_off(repo: Repo, code: Path) -> None:
    with run_start.start_run(repo, "churn", capture_options=Capture.none()) as run:
        pass
    stored = run_search.get_run(repo, run.id)
    assert (stored.git, stored.command, stored.environment, stored.host, stored.user) == (None, None, None, None, None)
    got = capture(Capture(code_dir=str(code)).without("packages", "command"))
    assert got.command is None and got.git is not None and "packages" not in (got.environment or {})
    with pytest.raises(ValueError, match="unknown capture part"):
        Capture().without("gpu")


def test_installed_packages_match_importlib_metadata() -> None:
    import importlib.metadata as md

    expected: dict[str, str] = {}
    for dist in md.distributions():
        expected.setdefault(dist.metadata["Name"].lower().replace("_", "-").replace(".", "-"), dist.version)
    assert installed_packages() == dict(sorted(expected.items()))


def test_child_runs_share_the_parents_capture(code: Path, repo: Repo) -> None:
    with run_start.start_run(repo, "churn", capture_options=Capture(code_dir=str(code))) as parent:
        with parent.child("fold-0") as child:
            pass
    assert run_search.get_run(repo, child.id).git == run_search.get_run(repo, parent.id).git
    assert run_search.get_run(repo, child.id).environment == run_search.get_run(repo, parent.id).environment


def test_seed_everything_seeds_random_and_numpy() -> None:
    seeds = seed_everything(1234)
    a = (random.random(), np.random.rand())
    seed_everything(1234)
    assert (random.random(), np.random.rand()) == a
    assert seeds["random"] == 1234 and seeds["numpy"] == 1234
    try:
        import torch
    except ImportError:
        assert "torch" not in seeds
    else:
        assert seeds["torch"] == 1234 and torch.initial_seed() == 1234
    assert seed_everything(2**40)["numpy"] == 2**40 % 2**32
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)
