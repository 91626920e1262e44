"""The run writer: buffers metric points and summary changes, writes them from a background thread.

``log()`` validates and appends to an in-memory queue; it never touches the
database. A daemon thread flushes the queue every :data:`FLUSH_INTERVAL`
seconds, or sooner once :data:`FLUSH_POINTS` points are waiting, in one write
transaction per flush, and writes the heartbeat at least every
``HEARTBEAT_INTERVAL`` seconds. :meth:`RunWriter.flush` does the same
synchronously and raises if the database cannot be written; points that could
not be written stay queued, in order, for the next attempt.

The queue is a ``collections.deque`` (appends and pops are atomic), so
``log()`` takes no lock: a signal handler that flushes from the main thread
can never deadlock against an interrupted ``log()``.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
import weakref
from collections import deque
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import Any, Callable, ContextManager, Mapping

from sqlalchemy import Connection

from mlark.errors import Conflict, InvalidInput, MlarkError, StorageError
from mlark.meta.db import Database
from mlark.tracking import records
from mlark.tracking.keys import check_key
from mlark.tracking.liveness import HEARTBEAT_INTERVAL
from mlark.tracking.metrics import Series, write_points
from mlark.tracking.values import check_step, metric_value

#: The background thread flushes at least this often (seconds).
FLUSH_INTERVAL = 0.5
#: ... and as soon as this many points are waiting.
FLUSH_POINTS = 10_000
#: ``log()`` flushes synchronously when this many points are waiting (the database cannot keep up).
BUFFER_LIMIT = 1_000_000
#: How long a synchronous flush waits for one already in progress.
FLUSH_LOCK_TIMEOUT = 120.0

_time = time.time
_I64 = 2**63


class WriterWarning(UserWarning):
    """The background writer could not write; the points are kept and retried."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def group(items: list[tuple[int, float, dict[str, float]]]) -> dict[str, Series]:
    """Queue items (step, time, {key: value}) as key -> (steps, values, times), in logging order."""
    out: dict[str, Series] = {}
    for step, t, points in items:
        for key, value in points.items():
            series = out.get(key)
            if series is None:
                series = out[key] = ([], [], [])
            series[0].append(step)
            series[1].append(value)
            series[2].append(t)
    return out


class RunWriter:
    """The write side of one run in this process."""

    def __init__(self, db: Database, run_id: str, *, next_step: int = 0, background: bool = True,
                 interval: float | None = None, flush_points: int | None = None,
                 guard: Callable[[], ContextManager[Any]] = nullcontext) -> None:
        """``background=False`` makes a writer for a run that is not live here: no thread, no heartbeat.

        ``guard`` wraps every synchronous flush (``mlark.ops`` defers signals inside it).
        """
        self.db = db
        self.run_id = run_id
        self.interval = FLUSH_INTERVAL if interval is None else interval
        self.flush_points = FLUSH_POINTS if flush_points is None else flush_points
        self.live = background
        self._guard = guard
        self.points_written = 0
        self._step = next_step
        self._keys: set[str] = set()
        self._queue: deque[tuple[int, float, dict[str, float]]] = deque()
        self._retry: list[tuple[int, float, dict[str, float]]] = []
        self._summary: dict[str, Any] = {}
        self._waiting = 0
        self._kicked = False
        self._closed = False
        self._forked = False
        self._stopping = False
        self._error: BaseException | None = None
        self._warned = False
        self._flush_lock = threading.Lock()
        self._last_write = time.monotonic()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        _writers.add(self)
        if background:
            self._thread = threading.Thread(target=self._loop, name=f"mlark-run-{run_id[:8]}", daemon=True)
            self._thread.start()

    # ----------------------------------------------------------------- the hot path

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Queue one point per key of ``data`` at ``step`` (the next step when None). Returns at once."""
        if self._closed:
            raise self._closed_error()
        if step is None:
            step = self._step
        elif type(step) is not int or not -_I64 <= step < _I64:
            step = check_step(step)
        keys = self._keys
        try:
            items = data.items()
        except AttributeError:
            raise InvalidInput(
                f"log() takes a dict of metric names to numbers, got {type(data).__name__}", field="metrics"
            ) from None
        for key, value in items:
            if type(value) is not float or key not in keys:
                break
        else:  # every value a float under a known key: the common case
            if not data:
                return
            self._queue.append((step, _time(), dict(data)))
            if step >= self._step:
                self._step = step + 1
            self._waiting += len(data)
            if self._waiting >= self.flush_points:
                self._kick()
            return
        points = {}
        for key, value in items:
            if key not in keys:
                check_key(key, "metric")
            points[key] = value if type(value) is float else metric_value(key, value)
        self._queue.append((step, _time(), points))
        if step >= self._step:
            self._step = step + 1
        if len(keys) < 100_000:
            keys.update(points)
        self._waiting += len(points)
        if self._waiting >= self.flush_points:
            self._kick()

    def _kick(self) -> None:
        if self._waiting >= BUFFER_LIMIT:
            self.flush()
        elif not self._kicked:
            self._kicked = True
            self._wake.set()

    @property
    def next_step(self) -> int:
        return self._step

    # ----------------------------------------------------------------- summary

    def set_summary(self, key: str, value: Any) -> None:
        """Queue a summary change (a JSON-safe value, or ``records.DELETE``); written with the next flush."""
        if self._closed:
            raise self._closed_error()
        self._summary[key] = value

    def _closed_error(self) -> Conflict:
        if self._forked:
            return Conflict(
                f"run {self.run_id} belongs to the parent process; a forked child cannot log to it "
                "(start a child run in the child process)",
                run=self.run_id,
            )
        return Conflict(f"run {self.run_id} has finished; resume it to log more", run=self.run_id)

    # ----------------------------------------------------------------- flushing

    def _take(self) -> tuple[list[Any], dict[str, Any]]:
        queue = self._queue
        self._waiting = 0
        self._kicked = False
        items = self._retry + [queue.popleft() for _ in range(len(queue))]
        self._retry = []
        summary: dict[str, Any] = {}
        pending = self._summary
        while pending:
            try:
                key, value = pending.popitem()
            except KeyError:
                break
            summary[key] = value
        return items, summary

    def _give_back(self, items: list[Any], summary: dict[str, Any]) -> None:
        self._retry = items + self._retry
        for key, value in summary.items():
            self._summary.setdefault(key, value)  # a newer change made meanwhile wins
        self._waiting += sum(len(p) for _, _, p in items)

    def _write(self, *, heartbeat: bool, extra: Callable[[Connection], None] | None = None,
               timeout: float = FLUSH_LOCK_TIMEOUT) -> int:
        """One flush under the flush lock: queued points, summary, heartbeat, and ``extra`` in one transaction."""
        if not self._flush_lock.acquire(timeout=timeout):
            raise StorageError(f"run {self.run_id}: another flush did not finish within {timeout:.0f} s",
                               run=self.run_id)
        try:
            items, summary = self._take()
            if not items and not summary and not heartbeat and extra is None:
                return 0
            series = group(items)
            now = _utcnow()

            def tx(conn: Connection) -> int:
                n = write_points(conn, self.run_id, series)
                records.update_summary(conn, self.run_id, summary)
                if self.live:
                    records.heartbeat(conn, self.run_id, now)
                if extra is not None:
                    extra(conn)
                return n

            try:
                n = self.db.run_write(tx)
            except BaseException:
                self._give_back(items, summary)
                raise
            self.points_written += n
            self._last_write = time.monotonic()
            return n
        finally:
            self._flush_lock.release()

    def flush(self, extra: Callable[[Connection], None] | None = None) -> int:
        """Write everything queued now (and run ``extra(conn)`` in the same transaction); returns points written."""
        try:
            with self._guard():
                return self._write(heartbeat=self.live, extra=extra)
        except MlarkError:
            raise
        except Exception as exc:
            raise StorageError(f"run {self.run_id}: metrics could not be written: {exc}", run=self.run_id) from exc

    def _loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping:
                break
            due = time.monotonic() - self._last_write >= HEARTBEAT_INTERVAL
            if not self._queue and not self._retry and not self._summary and not due:
                continue
            try:
                self._write(heartbeat=due)
                self._error = None
            except BaseException as exc:  # keep the points, say so once, try again next interval
                self._error = exc
                if not self._warned:
                    self._warned = True
                    warnings.warn(
                        f"mlark: run {self.run_id}: metrics could not be written yet ({exc}); "
                        "they are kept in memory and retried",
                        WriterWarning,
                        stacklevel=1,
                    )
                time.sleep(self.interval)

    # ----------------------------------------------------------------- closing

    def stop(self, *, join: bool = True) -> None:
        """Stop the background thread (no final flush: call :meth:`close` or :meth:`flush`)."""
        self._stopping = True
        if join and self._thread is not None and self._thread is not threading.current_thread():
            self._wake.set()
            self._thread.join(timeout=FLUSH_LOCK_TIMEOUT)

    def close(self, extra: Callable[[Connection], None] | None = None, *, join: bool = True) -> int:
        """Stop the thread, write everything queued and run ``extra`` in the same transaction; then refuse logging.

        ``join=False`` is for signal handlers: the thread is told to stop but not waited for.
        """
        self.stop(join=join)
        self._closed = True  # from here on log() refuses; what was queued before is written below
        return self.flush(extra)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def error(self) -> BaseException | None:
        """The last error of the background thread (None once a flush succeeds again)."""
        return self._error


_writers: "weakref.WeakSet[RunWriter]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The child has no writer thread and must not share the parent's database connections.
    for writer in list(_writers):
        writer._forked = True
        writer._closed = True
        writer._stopping = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
