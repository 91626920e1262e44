"""The typed result of a table diff (:class:`TableDiff`) and its parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from mlark.diff.jsonable import jsonable
from mlark.diff.result import DiffResult
from mlark.diff.table.drift import Drift
from mlark.diff.table.stats import ColumnStats


@dataclass(frozen=True)
class TableInfo:
    path: str
    format: str
    rows: int
    columns: tuple[tuple[str, str], ...]  # (name, type) in file order

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "rows": self.rows,
                "columns": [{"name": n, "type": t} for n, t in self.columns]}


@dataclass(frozen=True)
class Retyped:
    name: str
    type_a: str
    type_b: str
    compared_as: str | None  # None: values not comparable

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type_a": self.type_a, "type_b": self.type_b, "compared_as": self.compared_as}


@dataclass(frozen=True)
class SchemaDiff:
    added: tuple[tuple[str, str], ...]  # (name, type)
    removed: tuple[tuple[str, str], ...]
    retyped: tuple[Retyped, ...]
    reordered: bool  # the columns both tables have are in a different order
    order_a: tuple[str, ...]
    order_b: tuple[str, ...]
    not_comparable: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.removed or self.retyped or self.reordered)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": [{"name": n, "type": t} for n, t in self.added],
            "removed": [{"name": n, "type": t} for n, t in self.removed],
            "retyped": [r.to_dict() for r in self.retyped],
            "reordered": self.reordered,
            "order_a": list(self.order_a),
            "order_b": list(self.order_b),
            "not_comparable": list(self.not_comparable),
        }


@dataclass(frozen=True)
class RowDiff:
    mode: str  # "key" or "content"
    key: tuple[str, ...]
    rows_a: int
    rows_b: int
    added: int
    removed: int
    changed: int  # always 0 by content: a changed row is one removed plus one added
    unchanged: int
    compared_columns: tuple[str, ...]
    changed_by_column: dict[str, int] = field(default_factory=dict)  # only columns with changes, most first

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "key": list(self.key), "rows_a": self.rows_a, "rows_b": self.rows_b,
            "added": self.added, "removed": self.removed, "changed": self.changed, "unchanged": self.unchanged,
            "compared_columns": list(self.compared_columns), "changed_by_column": dict(self.changed_by_column),
        }


@dataclass(frozen=True)
class ChangedRow:
    """One changed row: its key, its row numbers (0-based) and ``changes[column] = (before, after)``."""

    key: dict[str, Any]
    row_a: int
    row_b: int
    changes: dict[str, tuple[Any, Any]]

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"key": self.key, "row_a": self.row_a, "row_b": self.row_b,
                         "changes": {c: {"before": a, "after": b} for c, (a, b) in self.changes.items()}})


@dataclass(frozen=True)
class SampleRow:
    """An added or removed row: its row number (0-based) in its table and its values."""

    row: int
    values: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"row": self.row, "values": self.values})


@dataclass(frozen=True)
class ColumnComparison:
    """One column side by side: ``status`` is ``both``, ``added`` or ``removed``."""

    name: str
    status: str
    type_a: str | None
    type_b: str | None
    a: ColumnStats | None
    b: ColumnStats | None
    drift: Drift | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "type_a": self.type_a, "type_b": self.type_b,
                "a": self.a.to_dict() if self.a else None, "b": self.b.to_dict() if self.b else None,
                "drift": self.drift.to_dict() if self.drift else None}


@dataclass(frozen=True)
class TableDiff(DiffResult):
    """Two versions of a table compared: schema, rows, changed columns, samples, statistics and drift."""

    kind: ClassVar[str] = "table"

    a: TableInfo
    b: TableInfo
    schema: SchemaDiff
    rows: RowDiff
    changed_rows: tuple[ChangedRow, ...] = ()
    added_rows: tuple[SampleRow, ...] = ()
    removed_rows: tuple[SampleRow, ...] = ()
    columns: tuple[ColumnComparison, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        return self.schema.has_changes or self.rows.has_changes

    def column(self, name: str) -> ColumnComparison:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def summary(self) -> str:
        r = self.rows
        parts = [f"{r.rows_a:,} -> {r.rows_b:,} rows", f"+{r.added:,} -{r.removed:,}"]
        if r.mode == "key":
            parts.append(f"~{r.changed:,} changed")
        s = self.schema
        if s.has_changes:
            bits = []
            if s.added:
                bits.append(f"+{len(s.added)} columns")
            if s.removed:
                bits.append(f"-{len(s.removed)} columns")
            if s.retyped:
                bits.append(f"{len(s.retyped)} retyped")
            if s.reordered:
                bits.append("reordered")
            parts.append(", ".join(bits))
        drifted = [c.name for c in self.columns if c.drift and c.drift.level != "stable"]
        if drifted:
            parts.append(f"drift in {len(drifted)} column(s)")
        return f"table {self.a.path} -> {self.b.path}: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "has_changes": self.has_changes,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "schema": self.schema.to_dict(),
            "rows": self.rows.to_dict(),
            "changed_rows": [r.to_dict() for r in self.changed_rows],
            "added_rows": [r.to_dict() for r in self.added_rows],
            "removed_rows": [r.to_dict() for r in self.removed_rows],
            "columns": [c.to_dict() for c in self.columns],
            "notes": list(self.notes),
        }

    def render(self, width: int | None = None) -> str:
        from mlark.diff.table.render import render_text

        return render_text(self, width)

    def to_markdown(self) -> str:
        from mlark.diff.table.render import render_markdown

        return render_markdown(self)
