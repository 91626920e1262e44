"""Plain text and Markdown for an :class:`OnnxDiff`."""

from __future__ import annotations

from typing import Any

from mlark.diff.onnxgraph.result import IOChange, NodeChange, OnnxDiff, value_text
from mlark.diff.onnxgraph.values import shape_text
from mlark.diff.tensors.render import HEADERS, counts_line, tail, tensor_rows
from mlark.diff.text import (
    fmt_value,
    md_table,
    terminal_width,
    text_table,
    truncate,
    wrap,
)

MAX_NODES = 80


def _io_rows(changes: tuple[IOChange, ...]) -> list[list[str]]:
    rows = []
    for c in changes:
        name = c.name if c.status != "renamed" else f"{c.name_a} -> {c.name_b}"
        ta = f"{c.type_a}{shape_text(c.shape_a)}" if c.type_a else "-"
        tb = f"{c.type_b}{shape_text(c.shape_b)}" if c.type_b else "-"
        rows.append([c.status, name, ta, tb])
    return rows


def _node_rows(d: OnnxDiff, limit: int = MAX_NODES) -> list[list[str]]:
    rows: list[list[str]] = []
    for n in d.nodes_removed:
        rows.append(["removed", n.label, n.op_type, "", ""])
    for n in d.nodes_added:
        rows.append(["added", n.label, n.op_type, "", ""])
    for c in d.nodes_changed:
        rows.extend(_change_rows(c))
    return rows[:limit]


def _label(c: NodeChange) -> str:
    if c.a.label == c.b.label:
        return c.a.label
    return f"{c.a.label} / {c.b.label}"


def _change_rows(c: NodeChange) -> list[list[str]]:
    rows = []
    first = True

    def add(what: str, a: Any, b: Any) -> None:
        nonlocal first
        rows.append(["changed" if first else "", _label(c) if first else "", c.a.op_type if first else "",
                     what, f"{value_text(a)} -> {value_text(b)}"])
        first = False

    for at in c.attributes:
        add(f"attribute {at.name}", at.a, at.b)
    for inp in c.inputs:
        what = f"input {inp.name}" + (" (wiring)" if inp.kind == "source" else "")
        add(what, inp.a, inp.b)
    if c.outputs:
        add("outputs", c.outputs[0], c.outputs[1])
    return rows


NODE_HEADERS = ["", "node", "op", "what", "old -> new"]


def _model_rows(d: OnnxDiff) -> list[list[str]]:
    return [[v.name, fmt_value(v.a, 40) if v.status != "added" else "-",
             fmt_value(v.b, 40) if v.status != "removed" else "-"] for v in d.model]


def _nodes_line(d: OnnxDiff) -> str:
    return (f"{d.nodes_a} -> {d.nodes_b} operator nodes: {len(d.nodes_added)} added, {len(d.nodes_removed)} removed, "
            f"{len(d.nodes_changed)} changed, {d.nodes_unchanged} unchanged")


def render_text(d: OnnxDiff, width: int | None = None) -> str:
    w = terminal_width(width)
    out = ["ONNX diff", *wrap(f"  old: {d.a}", w, "       "), *wrap(f"  new: {d.b}", w, "       "), ""]
    if d.model:
        out.append("Model")
        out.append(text_table(["field", "old", "new"], _model_rows(d), width=w))
        out.append("")
    for title, changes in (("Graph inputs", d.inputs), ("Graph outputs", d.outputs)):
        if changes:
            out.append(title)
            out.append(text_table(["", "name", "old", "new"], _io_rows(changes), width=w))
            out.append("")
    out.extend(wrap("Nodes: " + _nodes_line(d), w))
    rows = _node_rows(d)
    if rows:
        out.append(text_table(NODE_HEADERS, rows, width=w))
        total = len(d.nodes_added) + len(d.nodes_removed) + sum(len(_change_rows(c)) for c in d.nodes_changed)
        if total > len(rows):
            out.append(f"  ... and {total - len(rows):,} more rows (see to_dict())")
    out.append("")
    out.extend(wrap("Initializers: " + counts_line(d.initializers), w))
    inits = d.initializer_changes
    if inits:
        out.append(text_table(HEADERS, tensor_rows(inits), width=w, right=(4, 5, 6)))
        if tail(len(inits)):
            out.append("  " + tail(len(inits)))
    for n in d.notes:
        out.extend(wrap(f"note: {n}", w, "      "))
    return "\n".join(out).rstrip() + "\n"


def render_markdown(d: OnnxDiff) -> str:
    out = ["### ONNX diff", "", f"`{d.a}` -> `{d.b}`", ""]
    if d.model:
        out += ["#### Model", "", md_table(["field", "old", "new"], _model_rows(d)), ""]
    for title, changes in (("Graph inputs", d.inputs), ("Graph outputs", d.outputs)):
        if changes:
            out += [f"#### {title}", "", md_table(["", "name", "old", "new"], _io_rows(changes)), ""]
    out += ["#### Nodes", "", _nodes_line(d)]
    rows = _node_rows(d)
    if rows:
        out += ["", md_table(NODE_HEADERS, [[truncate(c, 200) for c in r] for r in rows])]
    out += ["", "#### Initializers", "", counts_line(d.initializers)]
    inits = d.initializer_changes
    if inits:
        out += ["", md_table(HEADERS, tensor_rows(inits), right=(4, 5, 6))]
        if tail(len(inits)):
            out += ["", tail(len(inits))]
    if d.notes:
        out += [""] + [f"- {n}" for n in d.notes]
    return "\n".join(out).rstrip() + "\n"
