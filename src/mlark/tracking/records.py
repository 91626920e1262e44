"""Run records: create, read, params (write-once), tags, summary, seeds, status transitions, stale detection.

Every function takes a ``Connection`` inside a transaction the caller holds
(``db.run_write`` for writers), so a verb can do several of them atomically.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from sqlalchemy import Connection, String, bindparam, case, delete, func, select, type_coerce, update

from mlark.errors import Conflict, InvalidInput, NotFound
from mlark.meta.schema import metric_summaries, params, run_tags, runs
from mlark.tracking.keys import CRASHED, RUNNING
from mlark.tracking.liveness import is_stale
from mlark.tracking.values import from_json_value, same_param

_IN_CHUNK = 400
#: Columns of ``runs`` every record has; the others (and ``environment``) are loaded on demand.
_LIST_COLUMNS = ("id", "project", "name", "status", "parent_id", "start_time", "end_time", "host", "user")
_DETAIL_COLUMNS = ("heartbeat_at", "pid", "command", "git", "seeds", "summary", "error")
#: Above this many runs, related rows are read for the whole project (one query per table) instead of by id.
_BULK = 500


@dataclass
class RunRecord:
    """A run as stored: its row, params, tags and the last value of each metric.

    ``details`` tells whether the detail columns (heartbeat, pid, command, git,
    seeds, summary, error) are loaded; lists of runs leave them out.
    """

    id: str
    project: str
    name: str
    status: str
    parent_id: str | None
    start_time: datetime
    end_time: datetime | None
    heartbeat_at: datetime | None = None
    pid: int | None = None
    host: str | None = None
    user: str | None = None
    command: list[str] | None = None
    git: dict[str, Any] | None = None
    seeds: dict[str, Any] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    details: bool = True


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i : i + _IN_CHUNK]


# --------------------------------------------------------------------------- creating and reading


def insert_run(
    conn: Connection,
    *,
    run_id: str,
    project: str,
    name: str,
    parent_id: str | None,
    now: datetime,
    pid: int | None,
    host: str | None,
    user: str | None,
    command: list[str] | None,
    git: dict[str, Any] | None,
    environment: dict[str, Any] | None,
) -> None:
    if parent_id is not None:
        get_row(conn, parent_id)
    conn.execute(
        runs.insert().values(
            id=run_id, project=project, name=name, status=RUNNING, parent_id=parent_id, start_time=now,
            end_time=None, heartbeat_at=now, pid=pid, host=host, user=user, command=command, git=git,
            environment=environment, seeds=None, summary={}, error=None,
        )
    )


def get_row(conn: Connection, run_id: str) -> Any:
    row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"no run with id {run_id!r}", kind="run", id=run_id)
    return row


def resolve_run_id(conn: Connection, text: object) -> str:
    """A full run id, from a full id or a unique prefix of at least 4 characters."""
    if not isinstance(text, str) or not text:
        raise InvalidInput(f"a run id must be a non-empty string, got {text!r:.40}", field="run")
    if conn.execute(select(runs.c.id).where(runs.c.id == text)).first() is not None:
        return text
    if len(text) < 4 or not all(c in "0123456789abcdef-" for c in text.lower()):
        raise NotFound(f"no run with id {text!r}", kind="run", id=text)
    found = list(conn.execute(select(runs.c.id).where(runs.c.id.like(text.lower() + "%")).limit(3)).scalars())
    if not found:
        raise NotFound(f"no run with id {text!r}", kind="run", id=text)
    if len(found) > 1:
        raise InvalidInput(f"run id prefix {text!r} matches several runs; give more characters", field="run", value=text)
    return found[0]


def _time_columns(dialect: str) -> tuple[Any, Any]:
    """start_time, end_time for a fast bulk read: raw text on SQLite (parsed by :func:`_utc`), typed elsewhere."""
    if dialect == "sqlite":
        return type_coerce(runs.c.start_time, String), type_coerce(runs.c.end_time, String)
    return runs.c.start_time, runs.c.end_time


def _utc(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


@functools.lru_cache(maxsize=None)
def _record_queries(dialect: str, details: bool) -> tuple[tuple[Any, Any, Any], ...]:
    """(base query, query by ``ids``, run id column) for runs, params, tags and metric summaries.

    Built once: the ``ids`` queries take an expanding bind parameter, so
    SQLAlchemy compiles each of them once per process.
    """
    start_col, end_col = _time_columns(dialect)
    cols = [runs.c[n] for n in _LIST_COLUMNS if n not in ("start_time", "end_time")]
    cols += [start_col.label("start_time"), end_col.label("end_time")]
    if details:
        cols += [runs.c[n] for n in _DETAIL_COLUMNS]
    p, t, m = params.c, run_tags.c, metric_summaries.c
    bases = (
        (select(*cols), runs.c.id),
        (select(p.run_id, p.key, p.value), p.run_id),
        (select(t.run_id, t.key, t.value), t.run_id),
        (select(m.run_id, m.key, m.last, m.last_is_nan), m.run_id),
    )
    return tuple((base, base.where(column.in_(bindparam("ids", expanding=True))), column) for base, column in bases)


def load_records(conn: Connection, run_ids: Sequence[str], *, details: bool = False,
                 project: str | None = None) -> list[RunRecord]:
    """The records of ``run_ids``, in that order, with params, tags and last metric values (a few queries).

    ``details=True`` also loads the detail columns. ``project`` (when every id
    belongs to it) lets a long list be read with one query per table.
    """
    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return []
    wanted = set(ids)
    bulk = len(ids) > _BULK
    queries = _record_queries(conn.dialect.name, details)

    def related(which: int) -> Iterable[Any]:
        base, by_ids, column = queries[which]
        if bulk:
            query = base
            if project is not None and column is runs.c.id:
                query = query.where(runs.c.project == project)
            elif project is not None:
                query = query.join(runs, runs.c.id == column).where(runs.c.project == project)
            for row in conn.execute(query):
                if row[0] in wanted:
                    yield row
        else:
            for part in _chunks(ids):
                yield from conn.execute(by_ids, {"ids": list(part)})

    records: dict[str, RunRecord] = {}
    for row in related(0):
        records[row.id] = _record(row, details)
    missing = [i for i in ids if i not in records]
    if missing:
        raise NotFound(f"no run with id {missing[0]!r}", kind="run", id=missing[0])
    for run_id, key, value in related(1):
        records[run_id].params[key] = from_json_value(value) if isinstance(value, dict | list) else value
    for run_id, key, value in related(2):
        records[run_id].tags[key] = value
    nan = float("nan")
    for run_id, key, last, is_nan in related(3):
        records[run_id].metrics[key] = nan if is_nan else last
    for record in records.values():
        record.params = dict(sorted(record.params.items()))
        record.tags = dict(sorted(record.tags.items()))
        record.metrics = dict(sorted(record.metrics.items()))
    return [records[i] for i in ids]


def load_columns(conn: Connection, run_ids: Sequence[str], *, project: str | None = None
                 ) -> tuple[dict[str, list[Any]], dict[str, dict[str, list[Any]]]]:
    """The runs ``run_ids`` column by column, for a table: (attributes, {"params"|"metrics"|"tags": key -> column}).

    Attributes are id, name, project, status, start_time, end_time. Reads like
    :func:`load_records` without making an object per run.
    """
    ids = list(dict.fromkeys(run_ids))
    index = {run_id: i for i, run_id in enumerate(ids)}
    n = len(ids)
    bulk = n > _BULK
    start_col, end_col = _time_columns(conn.dialect.name)
    attrs: dict[str, list[Any]] = {c: [None] * n for c in ("id", "name", "project", "status", "start_time", "end_time")}

    def rows(query: Any, column: Any) -> Iterable[Any]:
        if bulk:
            if project is not None:
                if column is not runs.c.id:
                    query = query.join(runs, runs.c.id == column)
                query = query.where(runs.c.project == project)
            yield from conn.execute(query)
        else:
            for part in _chunks(ids):
                yield from conn.execute(query.where(column.in_(part)))

    r = runs.c
    query = select(r.id, r.name, r.project, r.status, start_col, end_col)
    for run_id, name, proj, status, start, end in rows(query, r.id):
        i = index.get(run_id)
        if i is not None:
            attrs["id"][i], attrs["name"][i], attrs["project"][i], attrs["status"][i] = run_id, name, proj, status
            attrs["start_time"][i], attrs["end_time"][i] = _utc(start), _utc(end)
    missing = [run_id for run_id, found in zip(ids, attrs["id"]) if found is None]
    if missing:
        raise NotFound(f"no run with id {missing[0]!r}", kind="run", id=missing[0])
    groups: dict[str, dict[str, list[Any]]] = {"params": {}, "metrics": {}, "tags": {}}
    p, t, m = params.c, run_tags.c, metric_summaries.c
    nan = float("nan")
    for kind, query, column in (
        ("params", select(p.run_id, p.key, p.value), p.run_id),
        ("tags", select(t.run_id, t.key, t.value), t.run_id),
        ("metrics", select(m.run_id, m.key, m.last, m.last_is_nan), m.run_id),
    ):
        columns = groups[kind]
        for row in rows(query, column):
            i = index.get(row[0])
            if i is None:
                continue
            values = columns.get(row[1])
            if values is None:
                values = columns[row[1]] = [None] * n
            if kind == "metrics":
                values[i] = nan if row[3] else row[2]
            elif kind == "params" and isinstance(row[2], dict | list):
                values[i] = from_json_value(row[2])
            else:
                values[i] = row[2]
    return attrs, {kind: dict(sorted(cols.items())) for kind, cols in groups.items()}


def _record(row: Any, details: bool) -> RunRecord:
    record = RunRecord(
        id=row.id, project=row.project, name=row.name, status=row.status, parent_id=row.parent_id,
        start_time=_utc(row.start_time), end_time=_utc(row.end_time), host=row.host,  # type: ignore[arg-type]
        user=row.user, details=False,
    )
    if details:
        _apply_details(record, row)
    return record


def _apply_details(record: RunRecord, row: Any) -> None:
    record.heartbeat_at = row.heartbeat_at
    record.pid = row.pid
    record.command = row.command
    record.git = row.git
    record.seeds = row.seeds
    record.summary = {k: from_json_value(v) for k, v in (row.summary or {}).items()}
    record.error = row.error
    record.details = True


def load_details(conn: Connection, record: RunRecord) -> RunRecord:
    """Fill in ``record``'s detail columns (heartbeat, pid, command, git, seeds, summary, error)."""
    row = conn.execute(select(*(runs.c[n] for n in _DETAIL_COLUMNS)).where(runs.c.id == record.id)).first()
    if row is None:
        raise NotFound(f"no run with id {record.id!r}", kind="run", id=record.id)
    _apply_details(record, row)
    return record


def environment(conn: Connection, run_id: str) -> dict[str, Any] | None:
    get_row(conn, run_id)
    return conn.execute(select(runs.c.environment).where(runs.c.id == run_id)).scalar()


def children(conn: Connection, run_id: str) -> list[str]:
    return list(
        conn.execute(select(runs.c.id).where(runs.c.parent_id == run_id).order_by(runs.c.start_time, runs.c.id))
        .scalars()
    )


# --------------------------------------------------------------------------- params, tags, summary, seeds


def write_params(conn: Connection, run_id: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Insert params (rows from :func:`mlark.tracking.values.param_row`); returns the keys that were new.

    Write-once: a key already stored with the same value is fine; with another
    value nothing is written and :class:`Conflict` names every differing key.
    """
    if not rows:
        return []
    p = params.c
    keys = [r["key"] for r in rows]
    stored: dict[str, Any] = {}
    for part in _chunks(keys):
        for row in conn.execute(select(p.key, p.value, p.text).where(p.run_id == run_id, p.key.in_(part))):
            stored[row.key] = row
    conflicts = [r for r in rows if r["key"] in stored and not same_param(stored[r["key"]].value,
                                                                          stored[r["key"]].text, r)]
    if conflicts:
        first = conflicts[0]
        old = stored[first["key"]].text
        more = f" (and {len(conflicts) - 1} more: {', '.join(c['key'] for c in conflicts[1:5])})" if len(conflicts) > 1 else ""
        raise Conflict(
            f"param {first['key']!r} of run {run_id} is already {old!r}; params are write-once, "
            f"so it cannot become {first['text']!r}{more}. Log the new value under another key, or start a new run",
            run=run_id,
            key=first["key"],
            stored=old,
            given=first["text"],
            keys=[c["key"] for c in conflicts],
        )
    new = [dict(r, run_id=run_id) for r in rows if r["key"] not in stored]
    if new:
        conn.execute(params.insert(), new)
    return [r["key"] for r in new]


def set_tags(conn: Connection, run_id: str, tags: Mapping[str, str]) -> None:
    if not tags:
        return
    t = run_tags.c
    existing = set(
        conn.execute(select(t.key).where(t.run_id == run_id, t.key.in_(list(tags)))).scalars()
    )
    new = [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items() if k not in existing]
    for key, value in tags.items():
        if key in existing:
            conn.execute(update(run_tags).where(t.run_id == run_id, t.key == key).values(value=value))
    if new:
        conn.execute(run_tags.insert(), new)


def delete_tag(conn: Connection, run_id: str, key: str) -> bool:
    t = run_tags.c
    return bool(conn.execute(delete(run_tags).where(t.run_id == run_id, t.key == key)).rowcount)


def update_summary(conn: Connection, run_id: str, changes: Mapping[str, Any]) -> None:
    """Apply ``changes`` (key -> JSON-safe value, or :data:`DELETE`) to the run's summary."""
    if not changes:
        return
    current = dict(conn.execute(select(runs.c.summary).where(runs.c.id == run_id)).scalar() or {})
    for key, value in changes.items():
        if value is DELETE:
            current.pop(key, None)
        else:
            current[key] = value
    conn.execute(update(runs).where(runs.c.id == run_id).values(summary=current))


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


#: Marker in :func:`update_summary` changes: remove the key.
DELETE: Any = _Delete()


def set_seeds(conn: Connection, run_id: str, seeds: Mapping[str, Any]) -> None:
    current = dict(conn.execute(select(runs.c.seeds).where(runs.c.id == run_id)).scalar() or {})
    current.update(seeds)
    conn.execute(update(runs).where(runs.c.id == run_id).values(seeds=current))


# --------------------------------------------------------------------------- status


def heartbeat(conn: Connection, run_id: str, now: datetime) -> None:
    """Record that the run's process is alive; a run found ``crashed`` while it was alive is ``running`` again."""
    crashed = runs.c.status == CRASHED
    conn.execute(
        update(runs).where(runs.c.id == run_id).values(
            heartbeat_at=now,
            status=case((crashed, RUNNING), else_=runs.c.status),
            end_time=case((crashed, None), else_=runs.c.end_time),
        )
    )


def finish_run(conn: Connection, run_id: str, *, status: str, now: datetime, error: str | None) -> None:
    conn.execute(
        update(runs).where(runs.c.id == run_id).values(status=status, end_time=now, heartbeat_at=now, error=error)
    )


def reopen_run(conn: Connection, run_id: str, *, now: datetime, pid: int | None, host: str | None) -> Any:
    """Set a run back to ``running`` in this process (resume). Refused while another live process runs it."""
    row = get_row(conn, run_id)
    if row.status == RUNNING and not is_stale(
        heartbeat_at=row.heartbeat_at, pid=row.pid, host=row.host, now=now, this_host=socket.gethostname()
    ) and row.pid != pid:
        raise Conflict(
            f"run {run_id} is still running (process {row.pid} on {row.host}); "
            "it can be resumed once that process has ended",
            run=run_id,
            pid=row.pid,
            host=row.host,
        )
    conn.execute(
        update(runs).where(runs.c.id == run_id).values(
            status=RUNNING, end_time=None, error=None, heartbeat_at=now, pid=pid, host=host
        )
    )
    return row


def reap_stale(conn: Connection, *, now: datetime, project: str | None = None) -> list[str]:
    """Mark ``crashed`` every ``running`` run whose process is gone; returns their ids.

    A run is gone when its heartbeat is older than ``STALE_AFTER``, or when it
    ran on this host and its pid no longer exists. Its end time becomes its
    last heartbeat. Each update re-checks the heartbeat it read, so a run that
    heartbeats meanwhile is left alone.
    """
    r = runs.c
    query = select(r.id, r.heartbeat_at, r.pid, r.host).where(r.status == RUNNING)
    if project is not None:
        query = query.where(r.project == project)
    host = socket.gethostname()
    stale = [
        row for row in conn.execute(query)
        if is_stale(heartbeat_at=row.heartbeat_at, pid=row.pid, host=row.host, now=now, this_host=host)
    ]
    done = []
    for row in stale:
        result = conn.execute(
            update(runs)
            .where(r.id == row.id, r.status == RUNNING, r.heartbeat_at == row.heartbeat_at)
            .values(status=CRASHED, end_time=row.heartbeat_at)
        )
        if result.rowcount:
            done.append(row.id)
    return done


def has_stale(conn: Connection, *, now: datetime, project: str | None = None) -> bool:
    """A read-only check for :func:`reap_stale`: is any ``running`` run stale?"""
    r = runs.c
    query = select(r.heartbeat_at, r.pid, r.host).where(r.status == RUNNING)
    if project is not None:
        query = query.where(r.project == project)
    host = socket.gethostname()
    return any(
        is_stale(heartbeat_at=row.heartbeat_at, pid=row.pid, host=row.host, now=now, this_host=host)
        for row in conn.execute(query)
    )


# --------------------------------------------------------------------------- blobs


def blob_digests(conn: Connection) -> set[str]:
    """Digests of the blobs runs reference (uncommitted git diffs): roots of reachability for gc."""
    out: set[str] = set()
    for git in conn.execute(select(runs.c.git).where(runs.c.git.is_not(None))).scalars():
        if isinstance(git, dict) and isinstance(git.get("diff"), str):
            out.add(git["diff"])
    return out


def count_runs(conn: Connection, project: str | None = None) -> int:
    query = select(func.count()).select_from(runs)
    if project is not None:
        query = query.where(runs.c.project == project)
    return int(conn.execute(query).scalar() or 0)
