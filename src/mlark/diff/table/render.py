"""Plain text and Markdown for a :class:`TableDiff`."""

from __future__ import annotations

from typing import Any

from mlark.diff.table.result import ColumnComparison, TableDiff
from mlark.diff.table.stats import ColumnStats
from mlark.diff.text import (
    fmt_float,
    fmt_int,
    fmt_pct,
    fmt_value,
    md_table,
    terminal_width,
    text_table,
    wrap,
)

MAX_COLUMNS_CHANGED = 50
NARROW = 110


def _distinct(st: ColumnStats | None) -> str:
    if st is None or st.distinct is None:
        return "-"
    return ("~" if st.distinct_approx else "") + fmt_int(st.distinct)


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return fmt_float(v)
    return fmt_value(v, 26)


def _pair(a: str, b: str) -> str:
    if a == b:
        return a
    return f"{a} -> {b}"


def _top(st: ColumnStats | None) -> str:
    if st is None or st.kind != "categorical":
        return ""
    if st.top is None:
        return "(high cardinality)"
    return ", ".join(f"{fmt_value(v, 16)} {fmt_pct(c, st.rows)}" for v, c in st.top[:3])


def _column_rows(diff: TableDiff) -> list[list[str]]:
    rows = []
    for c in diff.columns:
        a, b = c.a, c.b
        psi, ks = "-", "-"
        if c.drift is not None:
            psi = _score(c.drift.value) + ("" if c.drift.level == "stable" else f" {c.drift.level}")
            if c.drift.ks is not None:
                ks = _score(c.drift.ks)
        mark = {"both": "", "added": "+ ", "removed": "- "}[c.status]
        rows.append([
            mark + c.name,
            _pair(fmt_int(a.nulls) if a else "-", fmt_int(b.nulls) if b else "-"),
            _pair(_distinct(a), _distinct(b)),
            _pair(_num(a.min) if a else "-", _num(b.min) if b else "-"),
            _pair(_num(a.max) if a else "-", _num(b.max) if b else "-"),
            _pair(_num(a.mean) if a else "-", _num(b.mean) if b else "-"),
            _pair(_num(a.std) if a else "-", _num(b.std) if b else "-"),
            psi,
            ks,
        ])
    return rows


_COLUMN_HEADERS = ["column", "nulls", "distinct", "min", "max", "mean", "std", "psi", "ks"]


def _score(x: float) -> str:
    """A drift score: 3 significant digits, and tiny values as such (they are sampling noise)."""
    if 0 < abs(x) < 1e-4:
        return "<0.0001"
    return fmt_float(x, 3)


def _categorical_rows(diff: TableDiff) -> list[list[str]]:
    out = []
    for c in diff.columns:
        st_a, st_b = c.a, c.b
        either = st_a or st_b
        if either is not None and either.kind == "categorical":
            out.append([c.name, _top(st_a) or "-", _top(st_b) or "-"])
    return out


def _schema_lines(diff: TableDiff) -> list[tuple[str, str]]:
    s = diff.schema
    lines: list[tuple[str, str]] = []
    for n, t in s.added:
        lines.append(("added", f"{n} ({t})"))
    for n, t in s.removed:
        lines.append(("removed", f"{n} ({t})"))
    for r in s.retyped:
        how = f"compared as {r.compared_as}" if r.compared_as else "not comparable"
        lines.append(("retyped", f"{r.name}: {r.type_a} -> {r.type_b} ({how})"))
    if s.reordered:
        common = [n for n in s.order_b if n in s.order_a]
        lines.append(("reordered", ", ".join(common)))
    return lines


def _row_lines(diff: TableDiff) -> list[tuple[str, str, str]]:
    r = diff.rows
    whole = max(r.rows_a, 1)
    out = [("rows", f"{fmt_int(r.rows_a)} -> {fmt_int(r.rows_b)}", "")]
    out.append(("added", fmt_int(r.added), fmt_pct(r.added, max(r.rows_b, 1))))
    out.append(("removed", fmt_int(r.removed), fmt_pct(r.removed, whole)))
    if r.mode == "key":
        out.append(("changed", fmt_int(r.changed), fmt_pct(r.changed, whole)))
    out.append(("unchanged", fmt_int(r.unchanged), fmt_pct(r.unchanged, whole)))
    return out


def _changed_sample(diff: TableDiff) -> list[list[str]]:
    rows = []
    for cr in diff.changed_rows:
        key = ", ".join(fmt_value(v, 30) for v in cr.key.values()) if cr.key else f"row {cr.row_a}"
        first = True
        for col, (before, after) in cr.changes.items():
            rows.append([key if first else "", col, fmt_value(before, 40), fmt_value(after, 40)])
            first = False
    return rows


def _sample_rows(samples: Any, limit_cols: int = 8) -> tuple[list[str], list[list[str]]]:
    if not samples:
        return [], []
    cols = list(samples[0].values)[:limit_cols]
    headers = ["row", *cols]
    return headers, [[str(s.row), *(fmt_value(s.values.get(c), 30) for c in cols)] for s in samples]


def _side(info: Any) -> str:
    return f"{info.path} ({info.format}, {fmt_int(info.rows)} rows x {len(info.columns)} columns)"


def _how(diff: TableDiff) -> str:
    if diff.rows.mode == "key":
        return "matched by key " + ", ".join(diff.rows.key)
    return "matched by content (no key)"


def render_text(diff: TableDiff, width: int | None = None) -> str:
    w = terminal_width(width)
    out = ["Table diff", *wrap("  old: " + _side(diff.a), w, "       "), *wrap("  new: " + _side(diff.b), w, "       "),
           ""]
    schema = _schema_lines(diff)
    out.append("Schema" + ("" if schema else ": unchanged"))
    if schema:
        out.append(text_table(["change", "columns"], [list(x) for x in schema], width=w))
    out.append("")
    out.append(f"Rows ({_how(diff)})")
    out.append(text_table(["", "count", "share"], [list(x) for x in _row_lines(diff)], width=w, right=(1, 2)))
    r = diff.rows
    if r.changed_by_column:
        out.append("")
        out.append("Changed columns (in changed rows)")
        items = list(r.changed_by_column.items())[:MAX_COLUMNS_CHANGED]
        out.append(text_table(["column", "rows", "share of changed"],
                              [[c, fmt_int(k), fmt_pct(k, r.changed)] for c, k in items], width=w, right=(1, 2)))
    if diff.changed_rows:
        out.append("")
        out.append(f"Changed rows (first {len(diff.changed_rows)} of {fmt_int(r.changed)})")
        out.append(text_table([", ".join(r.key) or "row", "column", "before", "after"], _changed_sample(diff),
                              width=w))
    for label, samples, total in (("Added rows", diff.added_rows, r.added),
                                  ("Removed rows", diff.removed_rows, r.removed)):
        if samples:
            headers, rows = _sample_rows(samples)
            out.append("")
            out.append(f"{label} (first {len(samples)} of {fmt_int(total)})")
            out.append(text_table(headers, rows, width=w))
    if diff.columns:
        out.append("")
        out.append("Columns (old -> new)")
        rows = _column_rows(diff)
        if w < NARROW:  # keep what matters most when the terminal is narrow
            keep = [0, 1, 2, 5, 7, 8]
            out.append(text_table([_COLUMN_HEADERS[i] for i in keep], [[r[i] for i in keep] for r in rows], width=w))
        else:
            out.append(text_table(_COLUMN_HEADERS, rows, width=w))
        cats = _categorical_rows(diff)
        if cats:
            out.append("")
            out.append("Top values")
            out.append(text_table(["column", "old", "new"], cats, width=w))
    if diff.notes:
        out.append("")
        for n in diff.notes:
            out.extend(wrap(f"note: {n}", w, "      "))
    return "\n".join(out).rstrip() + "\n"


def render_markdown(diff: TableDiff) -> str:
    out = ["### Table diff", "", f"`{diff.a.path}` -> `{diff.b.path}`", ""]
    out.append(f"{diff.a.format}, {fmt_int(diff.a.rows)} rows x {len(diff.a.columns)} columns -> "
               f"{diff.b.format}, {fmt_int(diff.b.rows)} rows x {len(diff.b.columns)} columns; {_how(diff)}")
    out.append("")
    schema = _schema_lines(diff)
    out.append("#### Schema")
    out.append("")
    out.append(md_table(["change", "columns"], [list(x) for x in schema]) if schema else "No schema changes.")
    out.append("")
    out.append("#### Rows")
    out.append("")
    out.append(md_table(["", "count", "share"], [list(x) for x in _row_lines(diff)], right=(1, 2)))
    r = diff.rows
    if r.changed_by_column:
        out += ["", "#### Changed columns", ""]
        out.append(md_table(["column", "rows changed", "share of changed rows"],
                            [[f"`{c}`", fmt_int(k), fmt_pct(k, r.changed)] for c, k in r.changed_by_column.items()],
                            right=(1, 2)))
    if diff.changed_rows:
        out += ["", f"#### Changed rows (first {len(diff.changed_rows)} of {fmt_int(r.changed)})", ""]
        out.append(md_table([", ".join(r.key) or "row", "column", "before", "after"], _changed_sample(diff)))
    for label, samples, total in (("Added rows", diff.added_rows, r.added),
                                  ("Removed rows", diff.removed_rows, r.removed)):
        if samples:
            headers, rows = _sample_rows(samples)
            out += ["", f"#### {label} (first {len(samples)} of {fmt_int(total)})", ""]
            out.append(md_table(headers, rows))
    if diff.columns:
        out += ["", "#### Columns (old -> new)", ""]
        out.append(md_table(_COLUMN_HEADERS, _column_rows(diff)))
        cats = _categorical_rows(diff)
        if cats:
            out += ["", "#### Top values", ""]
            out.append(md_table(["column", "old", "new"], cats))
    if diff.notes:
        out.append("")
        out.extend(f"- {n}" for n in diff.notes)
    return "\n".join(out).rstrip() + "\n"


__all__ = ["ColumnComparison", "render_markdown", "render_text"]
