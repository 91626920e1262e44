"""``diff_tables``: compare two versions of a table (docs/design/diff.md, "Tables")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlark.diff.errors import KeyColumnMissing
from mlark.diff.table.changes import Changes, collect_changes
from mlark.diff.table.drift import Drift, as_float, categorical_drift, numeric_drift
from mlark.diff.table.keyed import NewSide, finish_with_old
from mlark.diff.table.keyindex import KeyIndex, build_index
from mlark.diff.table.match import (
    HashCollision,
    Matching,
    match_by_content,
    match_by_key_exact,
)
from mlark.diff.table.result import (
    ColumnComparison,
    Retyped,
    RowDiff,
    SchemaDiff,
    TableDiff,
    TableInfo,
)
from mlark.diff.table.sample import DEFAULT_SIZE
from mlark.diff.table.scan import ScanPlan, ScanResult, scan
from mlark.diff.table.source import DEFAULT_BATCH, TableSource, open_table
from mlark.diff.table.stats import CATEGORY_CAP
from mlark.diff.table.types import comparison_type, stat_kind, type_name
from mlark.errors import InvalidInput

MAX_SAMPLE = 1000


@dataclass
class _Plan:
    """What both passes need to know about the two tables."""

    names_a: list[str]
    names_b: list[str]
    type_a: dict[str, Any]
    type_b: dict[str, Any]
    ctypes: dict[str, Any]  # column in both -> comparison type (None: not comparable)
    keys: list[str]
    compared: list[str]  # columns that make up the row hash
    scan_a: ScanPlan
    scan_b: ScanPlan


def diff_tables(
    a: Any,
    b: Any,
    *,
    key: str | Sequence[str] | None = None,
    format: str | tuple[str | None, str | None] | None = None,
    sample: int = 10,
    stats: bool = True,
    sample_size: int = DEFAULT_SIZE,
    batch_size: int = DEFAULT_BATCH,
) -> TableDiff:
    """Compare two tables (Parquet, CSV or Arrow IPC files, folders of them, or ``pyarrow.Table``).

    ``key``: a column or columns identifying a row; without one, rows are compared by content.
    ``format``: force the format of both sides, or ``(format_a, format_b)``; by default it comes
    from the suffix or the first bytes. ``sample``: how many changed, added and removed rows to
    show (at most 1000). ``stats``: per-column statistics and drift (on by default).
    ``sample_size``: rows per table behind the numeric drift scores.
    """
    if not isinstance(sample, int) or isinstance(sample, bool) or not 0 <= sample <= MAX_SAMPLE:
        raise InvalidInput(f"sample must be an integer from 0 to {MAX_SAMPLE}, got {sample!r}", field="sample")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidInput(f"batch_size must be a positive integer, got {batch_size!r}", field="batch_size")
    if not isinstance(sample_size, int) or isinstance(sample_size, bool) or sample_size < 1:
        raise InvalidInput(f"sample_size must be a positive integer, got {sample_size!r}", field="sample_size")
    fmt_a, fmt_b = format if isinstance(format, tuple) else (format, format)
    keys = _keys(key)
    src_a = open_table(a, fmt_a)
    src_b = open_table(b, fmt_b)
    plan = _plan(src_a, src_b, keys, stats=stats, sample_size=sample_size, batch_size=batch_size)
    # one table after the other: the passes are memory-bound, two threads gain nothing on two cores
    # (measured) and would double the reader buffers held at once
    scan_a = scan(src_a, plan.scan_a)
    if keys:
        scan_b, matching, changes = _by_key(src_a, src_b, scan_a, plan, sample, batch_size)
    else:
        scan_b = scan(src_b, plan.scan_b)
        matching = match_by_content(scan_a.row_hash, scan_b.row_hash)
        scan_a.row_hash = scan_b.row_hash = None
        changes = collect_changes(src_a, src_b, matching, compared=plan.compared, types_a=plan.scan_a.types,
                                  types_b=plan.scan_b.types, key=keys, sample=sample, batch_size=batch_size)
    rows = RowDiff(
        mode="key" if keys else "content", key=tuple(keys), rows_a=scan_a.rows, rows_b=scan_b.rows,
        added=int(matching.added.size), removed=int(matching.removed.size),
        changed=int(matching.changed_a.size), unchanged=matching.unchanged,
        compared_columns=tuple(plan.compared), changed_by_column=changes.by_column,
    )
    schema = _schema_diff(plan)
    columns = _columns(plan, scan_a, scan_b) if stats else []
    return TableDiff(
        a=TableInfo(src_a.label, src_a.format, scan_a.rows, tuple((n, type_name(t)) for n, t in plan.type_a.items())),
        b=TableInfo(src_b.label, src_b.format, scan_b.rows, tuple((n, type_name(t)) for n, t in plan.type_b.items())),
        schema=schema, rows=rows, changed_rows=tuple(changes.changed_rows), added_rows=tuple(changes.added_rows),
        removed_rows=tuple(changes.removed_rows), columns=tuple(columns),
        notes=tuple(_notes(scan_a, scan_b, schema, keys, columns)),
    )


def _plan(src_a: TableSource, src_b: TableSource, keys: list[str], *, stats: bool, sample_size: int,
          batch_size: int) -> _Plan:
    names_a, names_b = list(src_a.schema.names), list(src_b.schema.names)
    _check_columns(src_a, src_b, names_a, names_b, keys)
    type_a = {f.name: f.type for f in src_a.schema}
    type_b = {f.name: f.type for f in src_b.schema}
    ctypes = {n: comparison_type(type_a[n], type_b[n]) for n in names_a if n in type_b}
    for k in keys:
        if ctypes[k] is None:
            raise InvalidInput(f"key column {k!r} cannot be compared: {type_a[k]} in {src_a.label} and "
                               f"{type_b[k]} in {src_b.label}", field="key", column=k)
    compared = [n for n, t in ctypes.items() if t is not None and n not in keys]
    types_a = {n: (ctypes.get(n) or type_a[n]) for n in names_a}
    types_b = {n: (ctypes.get(n) or type_b[n]) for n in names_b}

    def scan_plan(types: dict[str, Any]) -> ScanPlan:
        return ScanPlan(types=types, compared=tuple(compared), key=tuple(keys), sampled=_sampled(types),
                        stats=stats, sample_size=sample_size, batch_size=batch_size)

    return _Plan(names_a, names_b, type_a, type_b, ctypes, keys, compared, scan_plan(types_a), scan_plan(types_b))


def _by_key(src_a: TableSource, src_b: TableSource, scan_a: ScanResult, plan: _Plan, sample: int,
            batch_size: int) -> tuple[ScanResult, Matching, Changes]:
    """Pair rows by key while the new table is read (three reads in all); on a hash collision
    between two different keys, an exact join and a second pass over both tables instead."""
    index = _index(scan_a, src_a.label)
    side = NewSide(index, scan_a.row_hash, plan.compared, plan.keys, sample) if index is not None else None
    scan_b = scan(src_b, plan.scan_b, on_batch=side)
    if side is not None:
        try:
            matching, order, cells = side.finish(scan_a.keys, scan_b.keys, src_b.label)
        except HashCollision:
            side = None
    if side is None:
        matching = match_by_key_exact(scan_a.keys, scan_b.keys, scan_a.row_hash, scan_b.row_hash,
                                      labels=(src_a.label, src_b.label))
    scan_a.row_hash = scan_b.row_hash = scan_a.keys = scan_b.keys = None  # free before pass 2
    if side is not None:
        changes = finish_with_old(src_a, side, matching, order, cells, types_a=plan.scan_a.types,
                                  batch_size=batch_size)
    else:
        changes = collect_changes(src_a, src_b, matching, compared=plan.compared, types_a=plan.scan_a.types,
                                  types_b=plan.scan_b.types, key=plan.keys, sample=sample, batch_size=batch_size)
    return scan_b, matching, changes


def _index(scan_a: ScanResult, label: str) -> KeyIndex | None:
    """The old table's key index (DuplicateKeys when its key is not unique); None on a hash collision."""
    try:
        return build_index(scan_a.keys, label)
    except HashCollision:
        return None


def _sampled(types: dict[str, Any]) -> tuple[str, ...]:
    """Numeric and temporal columns go into the row sample (drift; exact distinct counts when complete)."""
    return tuple(n for n, t in types.items() if t is not None and stat_kind(t) in ("numeric", "temporal"))


def _keys(key: str | Sequence[str] | None) -> list[str]:
    if key is None:
        return []
    keys = [key] if isinstance(key, str) else list(key)
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise InvalidInput(f"key must be a column name or a list of column names, got {key!r}", field="key")
    if len(set(keys)) != len(keys):
        raise InvalidInput(f"key names a column twice: {keys!r}", field="key")
    return keys


def _check_columns(src_a: TableSource, src_b: TableSource, names_a: list[str], names_b: list[str],
                   keys: list[str]) -> None:
    for src, names in ((src_a, names_a), (src_b, names_b)):
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InvalidInput(f"{src.label} has duplicate column names: {', '.join(dup)}", field="columns",
                               file=src.label, columns=dup)
        for k in keys:
            if k not in names:
                listed = ", ".join(names[:50]) + (", ..." if len(names) > 50 else "")
                raise KeyColumnMissing(
                    f"key column {k!r} is not in {src.label}; its columns are: {listed}",
                    column=k, file=src.label, columns=names,
                )


def _schema_diff(plan: _Plan) -> SchemaDiff:
    names_a, names_b, type_a, type_b, ctypes = plan.names_a, plan.names_b, plan.type_a, plan.type_b, plan.ctypes
    common_a = [n for n in names_a if n in type_b]
    common_b = [n for n in names_b if n in type_a]
    retyped = tuple(
        Retyped(n, type_name(type_a[n]), type_name(type_b[n]), None if ctypes[n] is None else type_name(ctypes[n]))
        for n in common_a if not type_a[n].equals(type_b[n])
    )
    return SchemaDiff(
        added=tuple((n, type_name(type_b[n])) for n in names_b if n not in type_a),
        removed=tuple((n, type_name(type_a[n])) for n in names_a if n not in type_b),
        retyped=retyped,
        reordered=common_a != common_b,
        order_a=tuple(names_a),
        order_b=tuple(names_b),
        not_comparable=tuple(n for n in common_a if ctypes[n] is None),
    )


def _columns(plan: _Plan, scan_a: ScanResult, scan_b: ScanResult) -> list[ColumnComparison]:
    sa, sb = scan_a.sampler, scan_b.sampler
    if sa is not None and sb is not None:
        level = max(sa.level, sb.level)  # keep the same row positions on both sides
        sa.restrict(level)
        sb.restrict(level)
    stats_a, stats_b = scan_a.stats(), scan_b.stats()
    out = []
    for n in plan.names_a:
        type_a = type_name(plan.type_a[n])
        if n not in plan.type_b:
            out.append(ColumnComparison(n, "removed", type_a, None, stats_a.get(n), None))
            continue
        a_st, b_st = stats_a.get(n), stats_b.get(n)
        out.append(ColumnComparison(n, "both", type_a, type_name(plan.type_b[n]), a_st, b_st,
                                    _drift(n, plan, scan_a, scan_b)))
    for n in plan.names_b:
        if n not in plan.type_a:
            out.append(ColumnComparison(n, "added", None, type_name(plan.type_b[n]), None, stats_b.get(n)))
    return out


def _drift(name: str, plan: _Plan, scan_a: ScanResult, scan_b: ScanResult) -> Drift | None:
    ctype = plan.ctypes[name]
    if ctype is None or name in plan.keys:  # an identifier has no distribution worth a score
        return None
    kind = stat_kind(ctype)
    sa, sb = scan_a.sampler, scan_b.sampler
    if kind in ("numeric", "temporal"):
        if sa is None or sb is None or name not in sa.columns or name not in sb.columns:
            return None
        return numeric_drift(as_float(sa.column(name)), as_float(sb.column(name)),
                             sampled=not (sa.complete and sb.complete))
    if kind == "categorical":
        acc_a, acc_b = scan_a.accumulators[name], scan_b.accumulators[name]
        if acc_a.counts is None or acc_b.counts is None or len(set(acc_a.counts) | set(acc_b.counts)) > CATEGORY_CAP:
            return None
        return categorical_drift(acc_a.counts, acc_b.counts, acc_a.nulls, acc_b.nulls, acc_a.rows, acc_b.rows)
    return None


def _notes(scan_a: ScanResult, scan_b: ScanResult, schema: SchemaDiff, keys: list[str],
           columns: list[ColumnComparison]) -> list[str]:
    notes = []
    if schema.not_comparable:
        notes.append("not compared (types cannot be compared): " + ", ".join(schema.not_comparable))
    if not keys:
        notes.append("rows matched by content (no key): a changed row counts as one removed and one added")
    sa, sb = scan_a.sampler, scan_b.sampler
    if columns and sa is not None and sb is not None and not (sa.complete and sb.complete):
        notes.append(f"numeric drift (PSI, KS) from a uniform sample of {sa.rows:,} / {sb.rows:,} rows")
    if any(st is not None and st.distinct_approx for c in columns for st in (c.a, c.b)):
        notes.append("distinct counts marked ~ are HyperLogLog estimates (about 1% error)")
    return notes
