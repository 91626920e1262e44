"""Side-by-side comparison of runs: params and metrics (last, min, max), deltas against the first run.

:func:`compare_runs` is pure: it takes :class:`ComparedRun` records (id, name,
status, params, metric summaries) and returns a :class:`RunComparison`.
:func:`load_compared_runs` reads those records for some run ids from the
metadata database in three queries.

Deltas are ``value - first run's value`` for numbers (bools excluded); a
missing value, a non-number or a NaN gives no delta (None). A row *differs*
when its values are not all the same (a missing value differs from any
value; NaN equals NaN). :meth:`RunComparison.only_differences` keeps the rows
that differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from mlark.errors import InvalidInput
from mlark.tracking.metrics import MetricSummary

__all__ = [
    "AGGREGATES",
    "ComparedRun",
    "MetricRow",
    "ParamRow",
    "RunComparison",
    "compare_runs",
    "load_compared_runs",
]

AGGREGATES: tuple[str, ...] = ("last", "min", "max")


@dataclass(frozen=True)
class ComparedRun:
    id: str
    name: str
    status: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, MetricSummary] = field(default_factory=dict)

    def header(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status}


_MISSING: Any = object()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _same(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _deltas(values: Sequence[Any]) -> tuple[float | None, ...]:
    base = _number(values[0]) if values and values[0] is not _MISSING else None
    out: list[float | None] = []
    for value in values:
        number = None if value is _MISSING else _number(value)
        out.append(None if base is None or number is None else number - base)
    return tuple(out)


def _json_value(value: Any) -> Any:
    return None if value is _MISSING else value


@dataclass(frozen=True)
class ParamRow:
    """One param across the runs. ``present[i]`` is False when run ``i`` does not have it (its value shows as None)."""

    key: str
    values: tuple[Any, ...]
    present: tuple[bool, ...]
    deltas: tuple[float | None, ...]
    differs: bool

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "values": list(self.values), "present": list(self.present),
                "deltas": list(self.deltas), "differs": self.differs}


@dataclass(frozen=True)
class MetricRow:
    """One aggregate (last, min or max) of one metric across the runs; None where a run has no such value."""

    key: str
    aggregate: str
    values: tuple[float | None, ...]
    deltas: tuple[float | None, ...]
    differs: bool

    @property
    def label(self) -> str:
        return f"{self.key}.{self.aggregate}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "aggregate": self.aggregate, "values": list(self.values),
                "deltas": list(self.deltas), "differs": self.differs}


@dataclass(frozen=True)
class RunComparison:
    """Runs side by side; deltas are relative to ``runs[0]``."""

    runs: tuple[ComparedRun, ...]
    params: tuple[ParamRow, ...]
    metrics: tuple[MetricRow, ...]
    only_diff: bool = False

    def only_differences(self) -> RunComparison:
        return RunComparison(
            self.runs,
            tuple(r for r in self.params if r.differs),
            tuple(r for r in self.metrics if r.differs),
            only_diff=True,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [r.header() for r in self.runs],
            "baseline": self.runs[0].id if self.runs else None,
            "only_differences": self.only_diff,
            "params": [r.to_dict() for r in self.params],
            "metrics": [r.to_dict() for r in self.metrics],
        }


def compare_runs(runs: Sequence[ComparedRun], *, only_differences: bool = False) -> RunComparison:
    """Params and metrics of ``runs`` side by side, with deltas against ``runs[0]``; keys sorted."""
    runs = tuple(runs)
    if not runs:
        raise InvalidInput("compare needs at least one run", field="runs")
    param_keys = sorted({k for r in runs for k in r.params})
    params = []
    for key in param_keys:
        raw = [r.params.get(key, _MISSING) for r in runs]
        params.append(ParamRow(
            key=key,
            values=tuple(_json_value(v) for v in raw),
            present=tuple(v is not _MISSING for v in raw),
            deltas=_deltas(raw),
            differs=not all(_same(raw[0], v) for v in raw[1:]),
        ))
    metric_keys = sorted({k for r in runs for k in r.metrics})
    metrics = []
    for key in metric_keys:
        for aggregate in AGGREGATES:
            raw = [getattr(r.metrics[key], aggregate) if key in r.metrics else _MISSING for r in runs]
            values = tuple(_json_value(v) for v in raw)
            metrics.append(MetricRow(
                key=key,
                aggregate=aggregate,
                values=values,
                deltas=_deltas([_MISSING if v is None else v for v in raw]),
                differs=not all(_same(_none_missing(raw[0]), _none_missing(v)) for v in raw[1:]),
            ))
    result = RunComparison(runs, tuple(params), tuple(metrics))
    return result.only_differences() if only_differences else result


def _none_missing(value: Any) -> Any:
    return _MISSING if value is None else value


def load_compared_runs(conn: Any, run_ids: Iterable[str]) -> list[ComparedRun]:
    """Read the runs ``run_ids`` (full ids), in that order, with their params and metric summaries.

    Raises :class:`mlark.errors.NotFound` for an id that does not exist.
    """
    from mlark.tracking.metrics import summaries
    from mlark.tracking.records import load_records

    records = load_records(conn, list(run_ids))
    metrics = summaries(conn, [r.id for r in records])
    return [ComparedRun(id=r.id, name=r.name, status=r.status, params=r.params, metrics=metrics[r.id])
            for r in records]
