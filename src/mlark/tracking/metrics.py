"""Metric series in the database: batches of little-endian arrays plus a summary row per key.

``write_points`` appends points in one transaction the caller holds: it tops up
each key's last batch while that batch is small (so slow logging still makes
few rows), cuts the rest into batches of at most :data:`BATCH_MAX` points, and
updates ``metric_summaries`` in the same transaction. ``read_history`` reads a
key's batches in one query and decodes them with ``numpy.frombuffer``.

Summary rules: ``last`` is the value at the highest step (the latest logged on
ties), stored as NULL with ``last_is_nan`` when it is NaN; ``min``/``max`` are
taken over the values that are not NaN (infinities count) and are NULL when
there is none; ``count`` counts every point.
"""

from __future__ import annotations

import math
import sys
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from sqlalchemy import Connection, and_, bindparam, func, select, tuple_, update

from mlark.errors import NotFound
from mlark.meta.schema import metric_batches, metric_summaries, runs

if TYPE_CHECKING:
    import numpy as np

#: Most points in one batch row.
BATCH_MAX = 4096
#: A key's last batch is topped up (rewritten) while it holds fewer points than this.
MERGE_BELOW = 1024
_IN_CHUNK = 400
_BIG_ENDIAN = sys.byteorder == "big"

Series = tuple[list[int], list[float], list[float]]  # steps, values, times


def encode(typecode: str, items: Sequence[float] | Sequence[int]) -> bytes:
    arr = array(typecode, items)
    if _BIG_ENDIAN:
        arr.byteswap()
    return arr.tobytes()


def decode(typecode: str, data: bytes) -> list[Any]:
    arr = array(typecode)
    arr.frombytes(data)
    if _BIG_ENDIAN:
        arr.byteswap()
    return arr.tolist()


@dataclass(frozen=True)
class MetricSummary:
    """What ``metric_summaries`` keeps of one key of one run."""

    key: str
    count: int
    last: float
    last_step: int
    last_time: float
    min: float | None
    max: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class MetricHistory:
    """One metric's points in logging order: ``steps`` (int64), ``values`` and ``timestamps`` (float64, epoch s)."""

    __slots__ = ("key", "steps", "values", "timestamps")

    def __init__(self, key: str, steps: "np.ndarray", values: "np.ndarray", timestamps: "np.ndarray") -> None:
        self.key = key
        self.steps = steps
        self.values = values
        self.timestamps = timestamps

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"MetricHistory({self.key!r}, {len(self)} points)"

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame({"step": self.steps, "value": self.values, "timestamp": self.timestamps})


# --------------------------------------------------------------------------- writing


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _last_index(steps: Sequence[int]) -> int:
    """Index of the highest step, the last one on ties."""
    n = len(steps)
    top = max(steps)
    if steps[n - 1] == top:
        return n - 1
    for i in range(n - 1, -1, -1):
        if steps[i] == top:
            return i
    raise AssertionError("unreachable")


def _summary_row(run_id: str, key: str, series: Series, old: Any | None) -> dict[str, Any]:
    steps, values, times = series
    i = _last_index(steps)
    finite = [v for v in values if v == v]  # NaN != NaN
    lo = min(finite) if finite else None
    hi = max(finite) if finite else None
    row: dict[str, Any] = {"run_id": run_id, "key": key, "count": len(values)}
    if old is not None:
        row["count"] += old.count
        if old.min is not None:
            lo = old.min if lo is None else min(lo, old.min)
        if old.max is not None:
            hi = old.max if hi is None else max(hi, old.max)
    if old is None or steps[i] >= old.last_step:
        last = values[i]
        nan = math.isnan(last)
        row.update(last=None if nan else last, last_is_nan=nan, last_step=steps[i], last_time=times[i])
    else:
        row.update(last=old.last, last_is_nan=old.last_is_nan, last_step=old.last_step, last_time=old.last_time)
    row.update(min=lo, max=hi)
    return row


def write_points(conn: Connection, run_id: str, series: Mapping[str, Series]) -> int:
    """Append ``series`` (key -> steps, values, times) to run ``run_id``; returns the number of points."""
    keys = list(series)
    if not keys:
        return 0
    b = metric_batches.c
    tails: dict[str, Any] = {}
    for part in _chunks(keys):
        last_seq = (
            select(b.key, func.max(b.seq).label("seq"))
            .where(b.run_id == run_id, b.key.in_(part))
            .group_by(b.key)
            .subquery()
        )
        for row in conn.execute(
            select(b.key, b.seq, b.count).join(last_seq, and_(b.key == last_seq.c.key, b.seq == last_seq.c.seq))
            .where(b.run_id == run_id)
        ):
            tails[row.key] = row
    small = [(k, t.seq) for k, t in tails.items() if t.count < MERGE_BELOW]
    small_rows: dict[str, Any] = {}
    for part in _chunks(small):
        for row in conn.execute(
            select(b.key, b.steps, b["values"], b.times).where(b.run_id == run_id, tuple_(b.key, b.seq).in_(part))
        ):
            small_rows[row.key] = row

    inserts: list[dict[str, Any]] = []
    rewrites: list[dict[str, Any]] = []
    total = 0
    for key, (steps, values, times) in series.items():
        total += len(steps)
        tail = tails.get(key)
        seq = 0 if tail is None else tail.seq + 1
        old = small_rows.get(key)
        if old is not None:
            steps = decode("q", old.steps) + list(steps)
            values = decode("d", old.values) + list(values)
            times = decode("d", old.times) + list(times)
            seq = tail.seq
        for start in range(0, len(steps), BATCH_MAX):
            s, v, t = steps[start : start + BATCH_MAX], values[start : start + BATCH_MAX], times[start : start + BATCH_MAX]
            row = {
                "run_id": run_id,
                "key": key,
                "seq": seq,
                "first_step": s[0],
                "last_step": s[-1],
                "count": len(s),
                "steps": encode("q", s),
                "values": encode("d", v),
                "times": encode("d", t),
            }
            if old is not None and start == 0:
                rewrites.append(row)
            else:
                inserts.append(row)
            seq += 1
    if rewrites:
        cols = ("first_step", "last_step", "count", "steps", "values", "times")
        conn.execute(
            update(metric_batches)
            .where(b.run_id == bindparam("p_run_id"), b.key == bindparam("p_key"), b.seq == bindparam("p_seq"))
            .values({c: bindparam("p_" + c) for c in cols}),
            [{"p_" + k: v for k, v in r.items()} for r in rewrites],
        )
    if inserts:
        conn.execute(metric_batches.insert(), inserts)
    _update_summaries(conn, run_id, series)
    return total


def _update_summaries(conn: Connection, run_id: str, series: Mapping[str, Series]) -> None:
    m = metric_summaries.c
    old: dict[str, Any] = {}
    for part in _chunks(list(series)):
        for row in conn.execute(select(metric_summaries).where(m.run_id == run_id, m.key.in_(part))):
            old[row.key] = row
    new_rows, changed = [], []
    for key, s in series.items():
        row = _summary_row(run_id, key, s, old.get(key))
        (changed if key in old else new_rows).append(row)
    if new_rows:
        conn.execute(metric_summaries.insert(), new_rows)
    if changed:
        cols = ("count", "last", "last_step", "last_time", "min", "max", "last_is_nan")
        conn.execute(
            update(metric_summaries)
            .where(m.run_id == bindparam("p_run_id"), m.key == bindparam("p_key"))
            .values({c: bindparam("p_" + c) for c in cols}),
            [{"p_" + k: v for k, v in r.items()} for r in changed],
        )


# --------------------------------------------------------------------------- reading


def read_history(conn: Connection, run_id: str, key: str) -> MetricHistory:
    """Every point of ``key`` in logging order, decoded from the batches with one query."""
    import numpy as np

    b = metric_batches.c
    rows = conn.execute(
        select(b.steps, b["values"], b.times).where(b.run_id == run_id, b.key == key).order_by(b.seq)
    ).all()
    if not rows:
        exists = conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first()
        if exists is None:
            raise NotFound(f"no run with id {run_id}", kind="run", id=run_id)
        known = metric_keys(conn, run_id)
        raise NotFound(
            f"run {run_id} has no metric {key!r}" + (f"; its metrics: {', '.join(known[:20])}" if known else
                                                       "; it has logged no metrics"),
            kind="metric",
            key=key,
        )

    def cat(index: int, dtype: str) -> "np.ndarray":
        parts = [np.frombuffer(r[index], dtype=dtype) for r in rows]
        out = parts[0].copy() if len(parts) == 1 else np.concatenate(parts)
        return out.astype(dtype[1:], copy=False)  # native byte order

    return MetricHistory(key, cat(0, "<i8"), cat(1, "<f8"), cat(2, "<f8"))


def metric_keys(conn: Connection, run_id: str) -> list[str]:
    m = metric_summaries.c
    return list(conn.execute(select(m.key).where(m.run_id == run_id).order_by(m.key)).scalars())


def _summary_from_row(row: Any) -> MetricSummary:
    last = math.nan if row.last_is_nan else row.last
    return MetricSummary(row.key, int(row.count), last, int(row.last_step), row.last_time, row.min, row.max)


def summaries(conn: Connection, run_ids: Sequence[str]) -> dict[str, dict[str, MetricSummary]]:
    """run id -> key -> summary, for every run in ``run_ids`` (runs without metrics map to {})."""
    out: dict[str, dict[str, MetricSummary]] = {r: {} for r in run_ids}
    m = metric_summaries.c
    for part in _chunks(list(run_ids)):
        for row in conn.execute(select(metric_summaries).where(m.run_id.in_(part)).order_by(m.run_id, m.key)):
            out[row.run_id][row.key] = _summary_from_row(row)
    return out


def last_step(conn: Connection, run_id: str) -> int | None:
    """The highest step any metric of the run has reached (None without metrics)."""
    m = metric_summaries.c
    return conn.execute(select(func.max(m.last_step)).where(m.run_id == run_id)).scalar()
