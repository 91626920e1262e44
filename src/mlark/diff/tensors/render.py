"""Plain text and Markdown for tensor comparisons (state dicts, ONNX initializers)."""

from __future__ import annotations

from collections.abc import Sequence

from mlark.diff.tensors.result import (
    STATUSES,
    TensorChange,
    TensorDiff,
    ValueChange,
    count_statuses,
)
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

MAX_ROWS = 60
HEADERS = ["tensor", "status", "dtype", "shape", "max |a-b|", "rel L2", "elements changed"]


def _shape(shape: tuple[int, ...] | None) -> str:
    return "-" if shape is None else "[" + ",".join(str(d) for d in shape) + "]"


def _pair(a: str, b: str) -> str:
    if a == b or b == "-":
        return a
    if a == "-":
        return b
    return f"{a} -> {b}"


def tensor_rows(changes: Sequence[TensorChange], limit: int = MAX_ROWS) -> list[list[str]]:
    rows = []
    for t in list(changes)[:limit]:
        stats = t.max_abs_diff is not None
        rows.append([
            t.name, t.status, _pair(t.dtype_a or "-", t.dtype_b or "-"),
            _pair(_shape(t.shape_a), _shape(t.shape_b)),
            fmt_float(t.max_abs_diff) if stats else "-",
            fmt_float(t.rel_l2) if stats else "-",
            (f"{fmt_int(t.changed_elements)} ({fmt_pct(t.changed_elements or 0, t.numel)})"
             if t.changed_elements is not None else "-"),
        ])
    return rows


def counts_line(entries: Sequence[TensorChange]) -> str:
    c = count_statuses(tuple(entries))
    return ", ".join(f"{c[s]:,} {s}" for s in STATUSES)


def value_rows(values: Sequence[ValueChange]) -> list[list[str]]:
    return [[v.name, v.status, fmt_value(v.a, 40) if v.status != "added" else "-",
             fmt_value(v.b, 40) if v.status != "removed" else "-"] for v in values]


def tail(total: int, limit: int = MAX_ROWS) -> str:
    return f"... and {total - limit:,} more (see to_dict())" if total > limit else ""


def render_text(d: TensorDiff, width: int | None = None) -> str:
    w = terminal_width(width)
    out = ["State dict diff", *wrap(f"  old: {d.a} ({d.format_a}, {fmt_int(d.params_a)} parameters)", w, "       "),
           *wrap(f"  new: {d.b} ({d.format_b}, {fmt_int(d.params_b)} parameters)", w, "       "), ""]
    out.extend(wrap("Tensors: " + counts_line(d.tensors), w))
    changes = d.changes
    if changes:
        out.append("")
        out.append(text_table(HEADERS, tensor_rows(changes), width=w, right=(4, 5, 6)))
        if tail(len(changes)):
            out.append("  " + tail(len(changes)))
    if d.values:
        out.append("")
        out.append("Other entries")
        out.append(text_table(["name", "status", "old", "new"], value_rows(d.values), width=w))
    for n in d.notes:
        out.extend(wrap(f"note: {n}", w, "      "))
    return "\n".join(out).rstrip() + "\n"


def render_markdown(d: TensorDiff) -> str:
    out = ["### State dict diff", "", f"`{d.a}` ({d.format_a}, {fmt_int(d.params_a)} parameters) -> "
           f"`{d.b}` ({d.format_b}, {fmt_int(d.params_b)} parameters)", "", "Tensors: " + counts_line(d.tensors)]
    changes = d.changes
    if changes:
        out += ["", md_table(HEADERS, tensor_rows(changes), right=(4, 5, 6))]
        if tail(len(changes)):
            out += ["", tail(len(changes))]
    if d.values:
        out += ["", "#### Other entries", "", md_table(["name", "status", "old", "new"], value_rows(d.values))]
    if d.notes:
        out += [""] + [f"- {n}" for n in d.notes]
    return "\n".join(out).rstrip() + "\n"
