"""Run: the user's handle on one experiment run. Joins tracking records with versions (use, log_artifact).

A ``Run`` is *live* when this process started or resumed it
(:mod:`mlark.ops.run_start`, ``Run.child``): it has a background writer, a
heartbeat, and it ends with ``finish()`` or the ``with`` block. A run read
back (:mod:`mlark.ops.run_search`) is a *view*: its attributes are a snapshot
(``refresh()`` reloads), writes go to the database synchronously, and it
cannot be finished from here.

What ``use``, ``log_artifact`` and ``log_dataset`` do is in :mod:`mlark.ops.run_lineage`;
``run.summary`` is a :class:`mlark.ops.run_summary.Summary`.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from mlark.core.types import Version
from mlark.errors import Conflict
from mlark.lineage import edges
from mlark.meta import catalog
from mlark.ops import run_lineage
from mlark.ops.run_lifecycle import ERROR_MAX, critical, error_text, unregister
from mlark.ops.run_summary import Summary
from mlark.tracking import metrics as metric_store
from mlark.tracking import records
from mlark.tracking.capture import Captured
from mlark.tracking.keys import FINISHED, KILLED, check_end_status, check_key
from mlark.tracking.metrics import MetricHistory, MetricSummary
from mlark.tracking.records import RunRecord
from mlark.tracking.values import from_json_value, param_rows, tag_values, to_json_value
from mlark.tracking.writer import RunWriter

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

__all__ = ["ERROR_MAX", "Run", "Summary", "error_text"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Run:
    """One experiment run. See the module docstring for live runs and views."""

    def __init__(self, repo: "Repo", record: RunRecord, *, writer: RunWriter | None = None,
                 captured: Captured | None = None) -> None:
        self._repo = repo
        self._record = record
        self._writer = writer
        self._captured = captured
        self._finished = writer is None
        self._killed_by: str | None = None
        if writer is not None:
            self.log = writer.log  # type: ignore[method-assign]  # the hot path, without a call layer

    # ----------------------------------------------------------------- attributes

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def status(self) -> str:
        return self._record.status

    @property
    def parent_id(self) -> str | None:
        return self._record.parent_id

    @property
    def start_time(self) -> datetime:
        return self._record.start_time

    @property
    def end_time(self) -> datetime | None:
        return self._record.end_time

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._record.params)

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._record.tags)

    @property
    def metrics(self) -> dict[str, float]:
        """The last value of every metric (a run started here writes its queued points first)."""
        if self._writer is not None:
            self._flush()
            with self._repo.db.read() as conn:
                self._record.metrics = {k: s.last for k, s in metric_store.summaries(conn, [self.id])[self.id].items()}
        return dict(self._record.metrics)

    @property
    def summary(self) -> Summary:
        return Summary(self)

    def _details(self) -> RunRecord:
        """The record with its detail columns (command, git, seeds, summary, error), read on first use."""
        if not self._record.details:
            with self._repo.db.read() as conn:
                records.load_details(conn, self._record)
        return self._record

    @property
    def git(self) -> dict[str, Any] | None:
        """commit, branch, remote, dirty, diff (the digest of the stored ``git diff HEAD``), untracked files."""
        git = self._details().git
        return None if git is None else dict(git)

    @property
    def command(self) -> list[str] | None:
        command = self._details().command
        return None if command is None else list(command)

    @property
    def environment(self) -> dict[str, Any] | None:
        """Python version, platform and installed packages (read on first use)."""
        if self._captured is not None:
            return self._captured.environment
        with self._repo.db.read() as conn:
            return records.environment(conn, self.id)

    @property
    def host(self) -> str | None:
        return self._record.host

    @property
    def user(self) -> str | None:
        return self._record.user

    @property
    def seeds(self) -> dict[str, Any] | None:
        seeds = self._details().seeds
        return None if seeds is None else dict(seeds)

    @property
    def error(self) -> str | None:
        return self._details().error

    @property
    def repo(self) -> "Repo":
        return self._repo

    @property
    def is_live(self) -> bool:
        """True while this process runs it (started or resumed here and not finished)."""
        return not self._finished

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, project={self.project!r}, name={self.name!r}, status={self.status!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id and other._repo is self._repo

    def __hash__(self) -> int:
        return hash(self.id)

    def to_dict(self) -> dict[str, Any]:
        r = self._details()
        return {
            "id": r.id,
            "project": r.project,
            "name": r.name,
            "status": r.status,
            "parent_id": r.parent_id,
            "start_time": r.start_time.isoformat(),
            "end_time": None if r.end_time is None else r.end_time.isoformat(),
            "params": dict(r.params),
            "metrics": dict(r.metrics),
            "tags": dict(r.tags),
            "summary": dict(r.summary),
            "git": r.git,
            "command": r.command,
            "host": r.host,
            "user": r.user,
            "seeds": r.seeds,
            "error": r.error,
        }

    def refresh(self) -> "Run":
        """Reload the stored record (status, params, tags, last metric values, summary)."""
        self._flush()
        with self._repo.db.read() as conn:
            fresh = records.load_records(conn, [self.id], details=True)[0]
        if not self._finished:  # this process knows best what it has queued
            fresh.summary = self._record.summary
        self._record = fresh
        return self

    # ----------------------------------------------------------------- metrics

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Record ``{"loss": 0.3, ...}`` at ``step`` (default: one more than the last step logged).

        Values must be numbers (bool, int, float, NumPy scalars); NaN and
        infinities are kept. On a live run this returns at once: points are
        written in the background and are durable when ``finish()`` returns.
        """
        # Live runs replace this method with their writer's log(); this is the view's path.
        with critical():
            with self._repo.db.read() as conn:
                last = metric_store.last_step(conn, self.id)
            writer = RunWriter(self._repo.db, self.id, next_step=0 if last is None else last + 1, background=False)
            writer.log(data, step)
            writer.flush()

    def history(self, key: str) -> MetricHistory:
        """Every point of metric ``key``: ``.steps``, ``.values``, ``.timestamps`` (NumPy arrays), in logging order."""
        self._flush()
        with self._repo.db.read() as conn:
            return metric_store.read_history(conn, self.id, key)

    def metric_summaries(self) -> dict[str, MetricSummary]:
        """count, last, min and max of every metric."""
        self._flush()
        with self._repo.db.read() as conn:
            return metric_store.summaries(conn, [self.id])[self.id]

    def flush(self) -> None:
        """Write queued points now (``finish()`` does this; rarely needed otherwise)."""
        self._flush()

    def _flush(self) -> None:
        if self._writer is not None and not self._finished:
            self._writer.flush()

    # ----------------------------------------------------------------- params, tags, summary

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record params. Write-once: the same value again is fine, another value is a :class:`Conflict`."""
        rows = param_rows(params)
        with critical():
            self._repo.db.run_write(lambda conn: records.write_params(conn, self.id, rows))
        for row in rows:
            self._record.params.setdefault(row["key"], from_json_value(row["value"]))

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (mutable, unlike params)."""
        values = tag_values(tags)
        with critical():
            self._repo.db.run_write(lambda conn: records.set_tags(conn, self.id, values))
        self._record.tags.update(values)

    def delete_tag(self, key: str) -> None:
        with critical():
            self._repo.db.run_write(lambda conn: records.delete_tag(conn, self.id, key))
        self._record.tags.pop(key, None)

    def _set_summary(self, key: str, value: Any) -> None:
        check_key(key, "summary")
        self._details()
        stored = value if value is records.DELETE else to_json_value(value, what=f"summary {key!r}")
        if self._writer is not None and not self._finished:
            self._writer.set_summary(key, stored)
        else:
            with critical():
                self._repo.db.run_write(lambda conn: records.update_summary(conn, self.id, {key: stored}))
        if stored is records.DELETE:
            self._record.summary.pop(key, None)
        else:
            self._record.summary[key] = from_json_value(stored)

    def record_seeds(self, seeds: Mapping[str, int]) -> None:
        with critical():
            self._repo.db.run_write(lambda conn: records.set_seeds(conn, self.id, seeds))
        self._details().seeds = {**(self._record.seeds or {}), **seeds}

    # ----------------------------------------------------------------- lineage

    def use(self, ref: str | Version) -> Path:
        """Record that this run used a version and return its local, verified path.

        ``ref`` is any reference (``churn-data@latest``, ``churn-data:v3``, ...);
        ``NAME:PATH@ALIAS`` returns the file or folder ``PATH`` inside the
        version. Files are materialised once in ``.mlark/cache/versions/<digest>/``
        and checked again on every call. The edge records the whole version.
        """
        return run_lineage.use(self, ref)

    def log_artifact(self, path: str | os.PathLike[str], *, name: str, type: str | None = None,
                     message: str | None = None, metadata: dict[str, Any] | None = None,
                     aliases: Sequence[str] = (), tags: Sequence[str] = ()) -> Version:
        """Commit a file or folder as a version of artifact ``name`` and record that this run produced it."""
        return run_lineage.log_artifact(self, path, name=name, type=type, message=message, metadata=metadata,
                                        aliases=aliases, tags=tags)

    def log_dataset(self, data: Any, *, name: str, message: str | None = None, type: str = "dataset",
                    metadata: dict[str, Any] | None = None, aliases: Sequence[str] = (),
                    tags: Sequence[str] = (), filename: str | None = None) -> Version:
        """Commit a pandas DataFrame or pyarrow Table (as ``<name>.parquet``), or an existing path, as an output."""
        return run_lineage.log_dataset(self, data, name=name, message=message, type=type, metadata=metadata,
                                       aliases=aliases, tags=tags, filename=filename)

    def log_model(self, model: Any, *, name: str, input_example: Any = None, signature: Any = None,
                  aliases: Sequence[str] = (), message: str | None = None, tags: Sequence[str] = (),
                  flavor: str | None = None, requirements: list[str] | None = None,
                  metadata: dict[str, Any] | None = None, **flavor_options: Any) -> Version:
        """Save ``model`` as a model folder (``mlark.models.save_model``, with this run's id) and commit it as a
        version of artifact ``name`` of type ``model`` that this run produced. See :func:`mlark.ops.models.log_model`."""
        from mlark.ops.models import log_model

        return log_model(self, model, name=name, input_example=input_example, signature=signature, aliases=aliases,
                         message=message, tags=tags, flavor=flavor, requirements=requirements, metadata=metadata,
                         **flavor_options)

    def inputs(self) -> list[Version]:
        """The versions this run used, in the order it first used them."""
        with self._repo.db.read() as conn:
            return [catalog.version_by_id(conn, i) for i in edges.versions_used(conn, self.id)]

    def outputs(self) -> list[Version]:
        """The versions this run produced, in order."""
        with self._repo.db.read() as conn:
            return [catalog.version_by_id(conn, i) for i in edges.versions_produced(conn, self.id)]

    def git_diff(self) -> bytes | None:
        """The uncommitted changes of the code when the run started (``git diff HEAD``), read back verified."""
        digest = (self._details().git or {}).get("diff")
        if not digest:
            return None
        return self._repo.store.read_chunk(digest)

    # ----------------------------------------------------------------- nesting

    def child(self, name: str | None = None, params: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None) -> "Run":
        """Start a nested run (one per fold, per trial, ...) in the same project, with this run as parent."""
        captured = None
        if self._captured is not None:
            captured = Captured(command=self._captured.command, git=self._details().git, diff=None,
                                environment=self._captured.environment, host=self._captured.host)
        from mlark.ops.run_start import start_run

        return start_run(self._repo, self.project, name, params, tags, parent=self.id, captured=captured)

    def children(self) -> list["Run"]:
        with self._repo.db.read() as conn:
            return [Run(self._repo, r) for r in records.load_records(conn, records.children(conn, self.id))]

    def parent(self) -> "Run | None":
        from mlark.ops.run_search import get_run

        return None if self.parent_id is None else get_run(self._repo, self.parent_id)

    # ----------------------------------------------------------------- ending

    def finish(self, status: str = FINISHED, *, error: str | None = None) -> None:
        """End the run: write every queued point and set ``status`` (finished, failed or killed).

        When it returns, everything logged before is durable. Calling it again does nothing.
        """
        status = check_end_status(status)
        if self._writer is None:
            raise Conflict(
                f"run {self.id} is not live in this process; resume it with start_run(resume=...) to change it",
                run=self.id,
            )
        if self._finished:
            return
        if self._killed_by is not None:  # a SIGTERM arrived and the process went on: it still ends killed
            status, error = KILLED, error or self._killed_by
        now = _now()
        self._writer.close(lambda conn: records.finish_run(conn, self.id, status=status, now=now, error=error))
        self._finished = True
        self._record.status, self._record.end_time, self._record.error = status, now, error
        unregister(self)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if self._finished:
            return
        if exc is None:
            self.finish()
            return
        if isinstance(exc, KeyboardInterrupt):
            status, error = KILLED, "KeyboardInterrupt"
        elif isinstance(exc, SystemExit) and exc.code in (None, 0):
            status, error = FINISHED, None
        else:
            status, error = "failed", error_text(exc)
        try:
            self.finish(status, error=error)
        except Exception as finish_error:  # do not hide the user's exception behind ours
            exc.add_note(f"mlark: run {self.id} could not be finished: {finish_error}")

    def _signal_kill(self, reason: str) -> None:
        """From a signal handler: mark the run killed and write its points; the run stays open."""
        if self._writer is None or self._finished:
            return
        self._killed_by = reason
        now = _now()
        self._writer.flush(lambda conn: records.finish_run(conn, self.id, status=KILLED, now=now, error=reason))
        self._record.status, self._record.end_time, self._record.error = KILLED, now, reason
