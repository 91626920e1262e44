"""Table diffs: schema, rows by key or content, changed columns, statistics and drift.

``import mlark.diff.table`` imports neither pyarrow nor numpy; :func:`diff_tables` does.
"""

from __future__ import annotations

from mlark.diff.table.engine import diff_tables
from mlark.diff.table.result import (
    ChangedRow,
    ColumnComparison,
    Retyped,
    RowDiff,
    SampleRow,
    SchemaDiff,
    TableDiff,
    TableInfo,
)

__all__ = ["ChangedRow", "ColumnComparison", "Retyped", "RowDiff", "SampleRow", "SchemaDiff", "TableDiff",
           "TableInfo", "diff_tables"]
