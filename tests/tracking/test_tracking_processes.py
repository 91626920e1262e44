"""Real processes: SIGTERM and SIGINT end a run as killed, kill -9 leaves it crashed with its points up to the
last second, eight processes log at once without losing a point, and finish() means durable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from mlark.ops import run_search
from mlark.ops.repo import Repo

pytestmark = pytest.mark.slow


def child_env(repo: Repo) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MLARK_REPO=str(repo.root), MLARK_AUTHOR="child", MLARK_CAPTURE_GIT="0", MLARK_CAPTURE_PACKAGES="0")
    return env


def spawn(repo: Repo, code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], env=child_env(repo), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def first_line(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """The child's first line of output (a run id), or fail with its stderr."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline().strip()
    if not line or time.monotonic() > deadline:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the child printed nothing; stderr:\n{err}")
    return line


# Logs the wall-clock time at every step, forever, so the test can tell which points came before a moment.
LOG_FOREVER = """
    import time, mlark
    run = mlark.start_run("procs", name="victim")
    with run:
        run.log({"t": time.time()})
        print(run.id, flush=True)
        while True:
            run.log({"t": time.time()})
            time.sleep(0.001)
"""


def check_points_until(repo: Repo, run_id: str, moment: float) -> np.ndarray:
    """Every point the child logged is there without a gap up to at least ``moment``; returns the times."""
    history = run_search.get_run(repo, run_id).history("t")
    assert history.steps.tolist() == list(range(len(history)))  # contiguous: nothing lost in between
    assert history.values[-1] >= moment, f"last point at {history.values[-1]:.3f}, expected one after {moment:.3f}"
    return history.values


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_run_as_killed_with_its_points(sqlite_repo: Repo, signum: int) -> None:
    proc = spawn(sqlite_repo, LOG_FOREVER)
    run_id = first_line(proc)
    time.sleep(1.0)
    sent = time.time()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    if signum == signal.SIGTERM:
        assert proc.returncode == -signal.SIGTERM, err  # the default action still ends the process
    else:
        assert "KeyboardInterrupt" in err
    run = run_search.get_run(sqlite_repo, run_id)
    assert run.status == "killed", err
    assert run.end_time is not None
    check_points_until(sqlite_repo, run_id, sent - 0.5)  # everything up to the signal was flushed


def test_kill_9_leaves_a_crashed_run_with_all_but_the_last_second(sqlite_repo: Repo) -> None:
    proc = spawn(sqlite_repo, LOG_FOREVER)
    run_id = first_line(proc)
    time.sleep(2.5)
    killed_at = time.time()
    proc.kill()
    proc.wait(timeout=60)
    run = run_search.get_run(sqlite_repo, run_id)
    assert run.status == "crashed"
    assert run.end_time is not None
    times = check_points_until(sqlite_repo, run_id, killed_at - 1.0)
    assert len(times) > 100


def test_eight_processes_log_to_one_repository_at_once(database_url: str, tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "project", database=database_url, author="alice")
    try:
        code = """
            import sys, mlark
            n = int(sys.argv[1])
            with mlark.start_run("parallel", name=f"worker-{n}", params={"worker": n}) as run:
                for i in range(3000):
                    run.log({"loss": 1.0 / (i + 1), "worker": float(n)})
                    if i % 1000 == 0:
                        run.set_tag("progress", str(i))
                        run.summary["last_i"] = i
            print(run.id, flush=True)
        """
        procs = [
            subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(n)], env=child_env(repo),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n in range(8)
        ]
        outputs = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, outputs):
            assert p.returncode == 0, err
            assert err.strip() == "", err  # no error, no warning reached the processes
        found = run_search.search(repo, project="parallel")
        assert len(found) == 8 and {r.status for r in found} == {"finished"}
        for run in found:
            n = run.params["worker"]
            summaries = run.metric_summaries()
            assert summaries["loss"].count == 3000 and summaries["worker"].count == 3000
            history = run.history("loss")
            assert history.steps.tolist() == list(range(3000))
            assert run.history("worker").values.tolist() == [float(n)] * 3000
            assert run.summary["last_i"] == 2000 and run.tags["progress"] == "2000"
    finally:
        repo.close()


def test_what_is_logged_before_finish_returns_is_durable(sqlite_repo: Repo) -> None:
    code = """
        import os, mlark
        run = mlark.start_run("durable")
        for i in range(20_000):
            run.log({"x": float(i)})
        run.summary["done"] = True
        run.finish()
        print(run.id, flush=True)
        os._exit(0)  # no interpreter shutdown, no exit hooks: only what finish() did counts
    """
    proc = spawn(sqlite_repo, code)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    fresh = Repo.open(sqlite_repo.root)
    try:
        run = run_search.get_run(fresh, out.strip())
        assert run.status == "finished" and run.summary["done"] is True
        assert run.history("x").values.tolist() == [float(i) for i in range(20_000)]
    finally:
        fresh.close()


def test_a_run_never_finished_is_finished_at_exit(sqlite_repo: Repo) -> None:
    code = """
        import mlark
        run = mlark.start_run("atexit")
        run.log({"x": 1.0})
        print(run.id, flush=True)
    """
    proc = spawn(sqlite_repo, code)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    run = run_search.get_run(sqlite_repo, out.strip())
    assert run.status == "finished" and run.metrics == {"x": 1.0}


def test_an_unhandled_exception_without_with_fails_the_run_at_exit(sqlite_repo: Repo) -> None:
    code = """
        import mlark
        run = mlark.start_run("atexit")
        print(run.id, flush=True)
        raise RuntimeError("boom")
    """
    proc = spawn(sqlite_repo, code)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "RuntimeError: boom" in err
    run = run_search.get_run(sqlite_repo, out.strip())
    assert run.status == "failed" and "RuntimeError: boom" in (run.error or "")
