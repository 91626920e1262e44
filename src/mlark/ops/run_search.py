"""Reading runs back: by id, by filter, as a table, and by lineage (which runs used or produced a version).

Every read first marks ``crashed`` the ``running`` runs whose process is gone
(:func:`reap_stale`), so a run killed with ``kill -9`` is found as such.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

from mlark.core.names import validate_name
from mlark.core.types import Version
from mlark.lineage import edges
from mlark.ops.run_lifecycle import live_runs
from mlark.ops.runs import Run
from mlark.tracking import records
from mlark.tracking.records import RunRecord

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

T = TypeVar("T")

__all__ = ["get_run", "producer_of", "reap_stale", "runs_frame", "runs_using", "search"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def reap_stale(repo: "Repo", project: str | None = None) -> list[str]:
    """Mark ``crashed`` the ``running`` runs whose process is gone (one cheap read when there are none)."""
    now = _now()
    if not repo.db.run_read(lambda conn: records.has_stale(conn, now=now, project=project)):
        return []
    return repo.db.run_write(lambda conn: records.reap_stale(conn, now=now, project=project))


def get_run(repo: "Repo", run_id: str) -> Run:
    """The run with this id (or unique id prefix). The live handle when this process runs it."""
    def read(conn: Any) -> Run:
        full_id = records.resolve_run_id(conn, run_id)
        for run in live_runs():
            if run.id == full_id and run.repo is repo:
                return run
        return Run(repo, records.load_records(conn, [full_id], details=True)[0])

    return _read_fresh(repo, None, read)


def search(repo: "Repo", *, project: str | None = None, filter: str | None = None,
           order_by: str | Sequence[str] | None = None, limit: int | None = None) -> list[Run]:
    """Runs matching ``filter`` (the run filter language), ordered, at most ``limit``."""
    return [Run(repo, r) for r in _search_records(repo, project, filter, order_by, limit)]


def _search_records(repo: "Repo", project: str | None, filter: str | None,
                    order_by: str | Sequence[str] | None, limit: int | None) -> list[RunRecord]:
    from mlark.tracking.query import search_runs

    if project is not None:
        project = validate_name(project, kind="project")
    return _read_fresh(repo, project, lambda conn: records.load_records(
        conn, search_runs(conn, project=project, filter=filter, order_by=order_by, limit=limit), project=project
    ))


def _read_fresh(repo: "Repo", project: str | None, fn: Callable[[Any], T]) -> T:
    """``fn(conn)`` in one read transaction, after marking stale runs crashed (checked in the same transaction)."""
    now = _now()
    for _ in range(2):
        with repo.db.read() as conn:
            if not records.has_stale(conn, now=now, project=project):
                return fn(conn)
        repo.db.run_write(lambda conn: records.reap_stale(conn, now=now, project=project))
    with repo.db.read() as conn:
        return fn(conn)


def runs_frame(repo: "Repo", *, project: str | None = None, filter: str | None = None,
               order_by: str | Sequence[str] | None = None, limit: int | None = None) -> Any:
    """The matching runs as a pandas DataFrame: id, name, project, status, start_time, end_time,
    then ``params.*``, ``metrics.*`` (last values) and ``tags.*`` columns."""
    import pandas as pd

    from mlark.tracking.query import search_runs

    if project is not None:
        project = validate_name(project, kind="project")
    attrs, groups = _read_fresh(repo, project, lambda conn: records.load_columns(
        conn, search_runs(conn, project=project, filter=filter, order_by=order_by, limit=limit), project=project
    ))
    columns: dict[str, Any] = dict(attrs)
    for prefix in ("params", "metrics", "tags"):
        for key, values in groups[prefix].items():
            columns[f"{prefix}.{key}"] = values
    frame = pd.DataFrame(columns)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _version_of(repo: "Repo", ref: str | Version) -> Version:
    if isinstance(ref, Version):
        return ref
    return repo.resolve(ref)


def runs_using(repo: "Repo", ref: str | Version) -> list[Run]:
    """The runs that used a version (``churn-data:v3``), oldest first."""
    version = _version_of(repo, ref)
    with repo.db.read() as conn:
        return [Run(repo, r) for r in records.load_records(conn, edges.runs_using(conn, version.id))]


def producer_of(repo: "Repo", ref: str | Version) -> Run | None:
    """The run that produced a version, or None (a version committed outside any run)."""
    version = _version_of(repo, ref)
    with repo.db.read() as conn:
        run_id = edges.producer_of(conn, version.id)
        return None if run_id is None else Run(repo, records.load_records(conn, [run_id])[0])
