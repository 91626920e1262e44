""":class:`RunDiff`: two runs compared — params and metrics side by side with deltas (from
:mod:`mlark.tracking.compare`), tags, and the versions each run used and produced.

Deltas are ``new - old`` for numbers. :meth:`RunDiff.only_differences` (``--only-diff``) keeps
the params and metrics that differ; tags, inputs and outputs only ever list differences.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from mlark.diff.jsonable import jsonable
from mlark.diff.result import DiffResult
from mlark.diff.text import fmt_float, fmt_value, md_table, terminal_width, text_table
from mlark.ops.diff_models import FieldChange, diff_values
from mlark.tracking.compare import MetricRow, ParamRow, RunComparison, compare_runs, load_compared_runs

if TYPE_CHECKING:
    from mlark.ops.repo import Repo
    from mlark.ops.runs import Run


@dataclass(frozen=True)
class RunInfo:
    id: str
    name: str
    project: str
    status: str
    start_time: str
    end_time: str | None

    @classmethod
    def of(cls, run: "Run") -> "RunInfo":
        return cls(run.id, run.name, run.project, run.status, run.start_time.isoformat(),
                   None if run.end_time is None else run.end_time.isoformat())

    @property
    def ref(self) -> str:
        return f"run:{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def line(self) -> str:
        return f"{self.project}/{self.name}  {self.id}  {self.status}  started {self.start_time[:16].replace('T', ' ')}"


@dataclass(frozen=True)
class RefChanges:
    """Versions used (or produced) by the new run and not the old one (``added``), and the other way round."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {"added": list(self.added), "removed": list(self.removed)}

    def text(self) -> str:
        return ", ".join([f"+ {r}" for r in self.added] + [f"- {r}" for r in self.removed])


def _refs(a: list[str], b: list[str]) -> RefChanges:
    return RefChanges(tuple(r for r in b if r not in a), tuple(r for r in a if r not in b))


def _delta(d: float | None) -> str:
    if d is None:
        return ""
    return ("+" if d > 0 else "") + fmt_float(d)


@dataclass(frozen=True)
class RunDiff(DiffResult):
    """Two runs compared. ``params`` and ``metrics`` are rows of :mod:`mlark.tracking.compare`
    (``values[0]`` old, ``values[1]`` new, ``deltas[1]`` new - old, ``differs``)."""

    kind: ClassVar[str] = "run"

    a: RunInfo
    b: RunInfo
    comparison: RunComparison
    tags: tuple[FieldChange, ...] = ()
    inputs: RefChanges = RefChanges()
    outputs: RefChanges = RefChanges()
    only_diff: bool = False

    @property
    def params(self) -> tuple[ParamRow, ...]:
        return tuple(r for r in self.comparison.params if r.differs or not self.only_diff)

    @property
    def metrics(self) -> tuple[MetricRow, ...]:
        return tuple(r for r in self.comparison.metrics if r.differs or not self.only_diff)

    def only_differences(self) -> "RunDiff":
        return dataclasses.replace(self, only_diff=True)

    @property
    def has_changes(self) -> bool:
        return (any(r.differs for r in self.comparison.params) or any(r.differs for r in self.comparison.metrics)
                or bool(self.tags) or bool(self.inputs) or bool(self.outputs))

    def summary(self) -> str:
        p = sum(r.differs for r in self.comparison.params)
        m = len({r.key for r in self.comparison.metrics if r.differs})
        return (f"run {self.a.name} -> {self.b.name}: {p} of {len(self.comparison.params)} params differ, "
                f"{m} of {len({r.key for r in self.comparison.metrics})} metrics differ")

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "kind": self.kind, "has_changes": self.has_changes, "only_differences": self.only_diff,
            "a": self.a.to_dict(), "b": self.b.to_dict(),
            "params": [r.to_dict() for r in self.params],
            "metrics": [r.to_dict() for r in self.metrics],
            "tags": [t.to_dict() for t in self.tags],
            "inputs": self.inputs.to_dict(), "outputs": self.outputs.to_dict(),
        })

    def _param_rows(self, mark: bool) -> list[list[str]]:
        rows = []
        for r in self.params:
            a, b = (fmt_value(v, 40) if present else "-" for v, present in zip(r.values, r.present))
            rows.append([("* " if mark and r.differs else "") + r.key, a, b, _delta(r.deltas[1])])
        return rows

    def _metric_rows(self, mark: bool) -> list[list[str]]:
        return [[("* " if mark and r.differs else "") + r.label, fmt_float(r.values[0]), fmt_float(r.values[1]),
                 _delta(r.deltas[1])] for r in self.metrics]

    def _other_lines(self, bullet: str) -> list[str]:
        lines = []
        for t in self.tags:
            old = "-" if t.status == "added" else fmt_value(t.a, 40)
            new = "-" if t.status == "removed" else fmt_value(t.b, 40)
            lines.append(f"{bullet}tag {t.name}: {old} -> {new}")
        if self.inputs:
            lines.append(f"{bullet}inputs (versions used): {self.inputs.text()}")
        if self.outputs:
            lines.append(f"{bullet}outputs (versions produced): {self.outputs.text()}")
        return lines

    def render(self, width: int | None = None) -> str:
        w = terminal_width(width)
        mark = not self.only_diff
        lines = [f"Diff run {self.a.name} -> run {self.b.name}", f"  old: {self.a.line()}",
                 f"  new: {self.b.line()}", ""]
        params, metrics = self._param_rows(mark), self._metric_rows(mark)
        if params:
            lines += ["Params", text_table(["param", "old", "new", "delta"], params, width=w, right=(3,)), ""]
        if metrics:
            lines += ["Metrics", text_table(["metric", "old", "new", "delta"], metrics, width=w, right=(1, 2, 3)), ""]
        if not params and not metrics:
            lines += ["Params and metrics: " + ("no differences" if self.only_diff else "none logged"), ""]
        lines += self._other_lines("")
        if mark and (params or metrics):
            lines.append("* differs; deltas are new - old")
        return "\n".join(lines).rstrip() + "\n"

    def to_markdown(self) -> str:
        lines = [f"## Diff run `{self.a.name}` -> run `{self.b.name}`", "",
                 md_table(["", "run", "id", "project", "status", "started"],
                          [[side, r.name, f"`{r.id}`", r.project, r.status, r.start_time[:19].replace("T", " ")]
                           for side, r in (("old", self.a), ("new", self.b))]), ""]
        params, metrics = self._param_rows(False), self._metric_rows(False)
        differs_p = ["yes" if r.differs else "" for r in self.params]
        differs_m = ["yes" if r.differs else "" for r in self.metrics]
        if params:
            lines += ["### Params", "", md_table(["param", "old", "new", "delta", "differs"],
                                                 [row + [d] for row, d in zip(params, differs_p)], right=(3,)), ""]
        if metrics:
            lines += ["### Metrics", "", md_table(["metric", "old", "new", "delta", "differs"],
                                                  [row + [d] for row, d in zip(metrics, differs_m)],
                                                  right=(1, 2, 3)), ""]
        if not params and not metrics:
            lines += ["No differences in params or metrics." if self.only_diff else "No params or metrics.", ""]
        other = self._other_lines("- ")
        if other:
            lines += ["### Tags and lineage", "", *other, ""]
        return "\n".join(lines).rstrip() + "\n"


def diff_runs(repo: "Repo", id_a: str, id_b: str, *, only_diff: bool = False) -> RunDiff:
    """Compare two runs given by full id or unique prefix."""
    from mlark.ops.run_search import get_run

    run_a, run_b = get_run(repo, id_a), get_run(repo, id_b)
    with repo.db.read() as conn:
        loaded = {r.id: r for r in load_compared_runs(conn, list(dict.fromkeys([run_a.id, run_b.id])))}
    comparison = compare_runs([loaded[run_a.id], loaded[run_b.id]])
    return RunDiff(
        a=RunInfo.of(run_a),
        b=RunInfo.of(run_b),
        comparison=comparison,
        tags=tuple(diff_values(run_a.tags, run_b.tags)),
        inputs=_refs([v.ref for v in run_a.inputs()], [v.ref for v in run_b.inputs()]),
        outputs=_refs([v.ref for v in run_a.outputs()], [v.ref for v in run_b.outputs()]),
        only_diff=only_diff,
    )
