"""Runs on both metadata databases: params write-once, tags, statuses, summary, nesting, resume, stale runs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from mlark.errors import Conflict, InvalidInput, InvalidName, NotFound
from mlark.meta.schema import runs as runs_table
from mlark.ops import run_search, run_start
from mlark.ops import runs as ops_runs
from mlark.ops.repo import Repo
from mlark.ops.run_lifecycle import active
from mlark.tracking.capture import Capture

#: Record nothing slow or machine-specific except the host (the crash check compares it).
QUIET = replace(Capture.none(), host=True)


def start(repo: Repo, project: str = "churn", **kwargs: object) -> ops_runs.Run:
    return run_start.start_run(repo, project, capture_options=QUIET, **kwargs)  # type: ignore[arg-type]


def test_a_run_has_an_id_a_generated_name_and_a_status(repo: Repo) -> None:
    with start(repo) as run:
        assert len(run.id) == 36 and run.project == "churn"
        adjective, noun, number = run.name.split("-")
        assert adjective.isalpha() and noun.isalpha() and len(number) == 2 and number.isdigit()
        assert run.status == "running" and run.end_time is None and run.is_live
        assert run.start_time.tzinfo is not None
    assert run.status == "finished" and run.end_time is not None and not run.is_live
    stored = run_search.get_run(repo, run.id)
    assert (stored.status, stored.name, stored.end_time) == ("finished", run.name, run.end_time)


def test_bad_project_and_run_names_are_refused(repo: Repo) -> None:
    with pytest.raises(InvalidName, match="project"):
        start(repo, "../x")
    with pytest.raises(InvalidName, match="run name"):
        start(repo, name="has space")
    assert run_search.search(repo) == []


def test_params_are_write_once(repo: Repo) -> None:
    with start(repo, params={"max_depth": 8, "optimizer": "adam"}) as run:
        run.log_param("max_depth", 8)  # the same value again is fine
        run.log_params({"max_depth": 8.0, "lr": 0.1})  # 8.0 == 8
        with pytest.raises(Conflict, match="param 'max_depth'.*already '8'.*write-once.*'9'") as info:
            run.log_params({"max_depth": 9, "new_key": 1})
        assert info.value.fields["keys"] == ["max_depth"]
        assert "new_key" not in run.params  # nothing of a refused call is written
        with pytest.raises(Conflict):
            run.log_param("optimizer", "sgd")
    stored = run_search.get_run(repo, run.id)
    assert stored.params == {"lr": 0.1, "max_depth": 8, "optimizer": "adam"}


def test_tags_are_mutable(repo: Repo) -> None:
    with start(repo, tags={"stage": "dev"}) as run:
        run.set_tag("stage", "review")
        run.set_tags({"owner": "alice", "gpu": 1})
        run.delete_tag("owner")
        assert run.tags == {"gpu": "1", "stage": "review"}
    assert run_search.get_run(repo, run.id).tags == {"gpu": "1", "stage": "review"}
    view = run_search.get_run(repo, run.id)
    view.set_tag("stage", "prod")  # a finished run can still be tagged
    assert run_search.get_run(repo, run.id).tags["stage"] == "prod"


def test_summary_assignments_are_recorded(repo: Repo) -> None:
    with start(repo) as run:
        run.summary["best_val_auc"] = 0.93
        run.summary["notes"] = {"epochs": [1, 2], "worst": float("-inf")}
        run.summary.update({"tmp": 1})
        del run.summary["tmp"]
        assert dict(run.summary) == {"best_val_auc": 0.93, "notes": {"epochs": [1, 2], "worst": -math.inf}}
        with pytest.raises(InvalidInput, match="summary 'x'"):
            run.summary["x"] = object()
    stored = run_search.get_run(repo, run.id)
    assert dict(stored.summary) == {"best_val_auc": 0.93, "notes": {"epochs": [1, 2], "worst": -math.inf}}
    stored.summary["later"] = "ok"
    assert run_search.get_run(repo, run.id).summary["later"] == "ok"


def test_an_exception_inside_with_fails_the_run_and_keeps_the_error(repo: Repo) -> None:
    with pytest.raises(ZeroDivisionError):
        with start(repo) as run:
            run.log({"loss": 1.0})
            1 / 0
    stored = run_search.get_run(repo, run.id)
    assert stored.status == "failed"
    assert "ZeroDivisionError: division by zero" in (stored.error or "")
    assert stored.metrics == {"loss": 1.0}  # what was logged before the error is kept


def test_keyboard_interrupt_inside_with_kills_the_run(repo: Repo) -> None:
    with pytest.raises(KeyboardInterrupt):
        with start(repo) as run:
            raise KeyboardInterrupt
    assert run_search.get_run(repo, run.id).status == "killed"


def test_finish_with_a_status(repo: Repo) -> None:
    run = start(repo)
    with pytest.raises(InvalidInput, match="finished, failed, killed"):
        run.finish("crashed")
    run.finish("failed", error="diverged")
    run.finish()  # a second finish does nothing
    stored = run_search.get_run(repo, run.id)
    assert (stored.status, stored.error) == ("failed", "diverged")
    with pytest.raises(Conflict, match="finished"):
        run.log({"loss": 1.0})
    with pytest.raises(Conflict, match="not live"):
        stored.finish()


def test_nested_runs(repo: Repo) -> None:
    with start(repo, name="cv") as parent:
        assert active() is parent
        for fold in range(3):
            with parent.child(name=f"fold-{fold}", params={"fold": fold}) as child:
                assert active() is child
                assert child.parent_id == parent.id and child.project == "churn"
                child.log({"auc": 0.8 + fold / 100})
        assert active() is parent
    assert active() is None
    children = parent.children()
    assert [c.name for c in children] == ["fold-0", "fold-1", "fold-2"]
    assert [c.params for c in children] == [{"fold": 0}, {"fold": 1}, {"fold": 2}]
    assert children[0].parent().id == parent.id  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        start(repo, parent="01234567-89ab-7cde-8f01-23456789abcd")


def test_resume_by_id_continues_the_run(repo: Repo) -> None:
    with start(repo, name="long", params={"lr": 0.1}) as run:
        for i in range(10):
            run.log({"loss": 1 / (i + 1)})
    resumed = run_start.resume_run(repo, run.id[:13], params={"lr": 0.1})
    try:
        assert resumed.id == run.id and resumed.status == "running" and resumed.end_time is None
        assert resumed.params == {"lr": 0.1}
        resumed.log({"loss": 0.01})  # the next step after the last one stored
        with pytest.raises(Conflict):
            resumed.log_param("lr", 0.2)
        with pytest.raises(Conflict, match="already live"):
            run_start.resume_run(repo, run.id)
    finally:
        resumed.finish()
    history = run_search.get_run(repo, run.id).history("loss")
    assert history.steps.tolist() == list(range(11))
    assert run_search.get_run(repo, run.id).status == "finished"
    with pytest.raises(Conflict, match="project"):
        run_start.resume_run(repo, run.id, project="other")
    assert run_search.get_run(repo, run.id).status == "finished"  # the refused resume changed nothing


def test_a_run_still_running_elsewhere_cannot_be_resumed(repo: Repo) -> None:
    run = start(repo)
    abandon(run)
    # another live process on this host runs it
    other = os.getppid()
    repo.db.run_write(lambda c: c.execute(update(runs_table).where(runs_table.c.id == run.id).values(pid=other)))
    with pytest.raises(Conflict, match="still running"):
        run_start.resume_run(repo, run.id)


def test_unknown_run_ids(repo: Repo) -> None:
    with pytest.raises(NotFound, match="no run"):
        run_search.get_run(repo, "01234567-89ab-7cde-8f01-23456789abcd")
    with pytest.raises(NotFound):
        run_search.get_run(repo, "zz")


def abandon(run: ops_runs.Run) -> None:
    """Make ``run`` look like the run of a process that vanished: no writer thread, not live here."""
    from mlark.ops.run_lifecycle import unregister

    run._writer.stop()  # type: ignore[union-attr]
    unregister(run)
    run._finished = True


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_running_run_whose_process_is_gone_is_found_crashed(repo: Repo) -> None:
    run = start(repo)
    abandon(run)
    heartbeat = repo.db.run_read(
        lambda c: c.execute(select(runs_table.c.heartbeat_at).where(runs_table.c.id == run.id)).scalar_one()
    )
    repo.db.run_write(
        lambda c: c.execute(update(runs_table).where(runs_table.c.id == run.id).values(pid=_dead_pid()))
    )
    found = run_search.get_run(repo, run.id)
    assert found.status == "crashed"
    assert found.end_time == heartbeat  # it ended when it was last heard of
    assert [r.status for r in run_search.search(repo, project="churn")] == ["crashed"]


def test_a_running_run_with_an_old_heartbeat_is_found_crashed(repo: Repo) -> None:
    run = start(repo)
    abandon(run)
    old = datetime.now(timezone.utc) - timedelta(hours=1)
    repo.db.run_write(
        lambda c: c.execute(
            update(runs_table).where(runs_table.c.id == run.id).values(heartbeat_at=old, host="elsewhere", pid=1)
        )
    )
    assert run_search.search(repo)[0].status == "crashed"


def test_a_live_run_is_not_found_crashed(repo: Repo) -> None:
    with start(repo) as run:
        assert run_search.get_run(repo, run.id) is run
        assert run_search.search(repo)[0].status == "running"
