"""Starting and resuming runs: create the record (capture, params, tags, the git diff blob) and go live."""

from __future__ import annotations

import os
import socket
from contextlib import ExitStack
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping

from mlark.core.digest import digest_bytes
from mlark.core.ids import new_id
from mlark.core.names import validate_name
from mlark.errors import Conflict
from mlark.ops.lock import repo_lock
from mlark.ops.run_lifecycle import critical, live_runs, register
from mlark.ops.runs import Run
from mlark.tracking import metrics as metric_store
from mlark.tracking import records
from mlark.tracking.capture import Capture, Captured, capture
from mlark.tracking.keys import RUNNING
from mlark.tracking.names import generate_name
from mlark.tracking.records import RunRecord
from mlark.tracking.values import from_json_value, param_rows, tag_values
from mlark.tracking.writer import RunWriter

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

__all__ = ["resume_run", "start_run"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def start_run(repo: "Repo", project: str, name: str | None = None, params: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None, *, parent: "Run | str | None" = None,
              capture_options: Capture | None = None, captured: Captured | None = None) -> Run:
    """Create a run in ``repo`` and make it live in this process (the caller ends it with ``finish()``)."""
    project = validate_name(project, kind="project")
    name = generate_name() if name is None else validate_name(name, kind="run name")
    new_params = param_rows(params)
    new_tags = tag_values(tags)
    parent_id = parent.id if isinstance(parent, Run) else parent
    if captured is None:
        captured = capture(capture_options or Capture())
    options = capture_options or Capture()
    user = repo.author if options.user else None
    git = dict(captured.git) if captured.git is not None else None
    run_id = new_id()
    now = _now()
    with ExitStack() as stack:
        packs: list[Any] = []
        if captured.diff and git is not None:
            stack.enter_context(repo_lock(repo.meta_dir, exclusive=False))  # from the pack write to its index row
            writer = repo.store.writer()
            digest = digest_bytes(captured.diff)
            try:
                writer.put(digest, captured.diff)
                packs = writer.finish()
            except BaseException:
                writer.abort()
                raise
            git["diff"] = digest

        def tx(conn: Any) -> None:
            if packs:
                repo.index.add_packs_in(conn, packs)
            records.insert_run(
                conn, run_id=run_id, project=project, name=name, parent_id=parent_id, now=now, pid=os.getpid(),
                host=captured.host, user=user, command=captured.command, git=git,
                environment=captured.environment,
            )
            records.write_params(conn, run_id, new_params)
            records.set_tags(conn, run_id, new_tags)

        with critical():
            repo.db.run_write(tx)
    record = RunRecord(
        id=run_id, project=project, name=name, status=RUNNING, parent_id=parent_id, start_time=now, end_time=None,
        heartbeat_at=now, pid=os.getpid(), host=captured.host, user=user, command=captured.command, git=git,
        params={r["key"]: from_json_value(r["value"]) for r in new_params}, tags=dict(new_tags),
    )
    return _go_live(repo, record, captured, next_step=0)


def resume_run(repo: "Repo", run_id: str, *, project: str | None = None, name: str | None = None,
               params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None) -> Run:
    """Make a stored run live again in this process (status back to ``running``); steps continue after its last."""
    new_params = param_rows(params)
    new_tags = tag_values(tags)
    with repo.db.read() as conn:
        full_id = records.resolve_run_id(conn, run_id)
    if any(r.id == full_id and r.repo is repo for r in live_runs()):
        raise Conflict(f"run {full_id} is already live in this process", run=full_id)
    now = _now()

    def tx(conn: Any) -> int | None:
        row = records.reopen_run(conn, full_id, now=now, pid=os.getpid(), host=socket.gethostname())
        if project is not None and project != row.project:
            raise Conflict(f"run {full_id} belongs to project {row.project!r}, not {project!r}", run=full_id)
        if name is not None and name != row.name:
            raise Conflict(f"run {full_id} is named {row.name!r}, not {name!r}", run=full_id)
        records.write_params(conn, full_id, new_params)
        records.set_tags(conn, full_id, new_tags)
        return metric_store.last_step(conn, full_id)

    with critical():
        last = repo.db.run_write(tx)
    with repo.db.read() as conn:
        record = records.load_records(conn, [full_id], details=True)[0]
    return _go_live(repo, record, None, next_step=0 if last is None else last + 1)


def _go_live(repo: "Repo", record: RunRecord, captured: Captured | None, *, next_step: int) -> Run:
    writer = RunWriter(repo.db, record.id, next_step=next_step, guard=critical)
    run = Run(repo, record, writer=writer, captured=captured)
    register(run)
    return run
