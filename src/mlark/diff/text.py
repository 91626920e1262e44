"""Plain-text and Markdown building blocks shared by the renderers: number and value formatting,
width-aware text tables, Markdown tables."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

DEFAULT_WIDTH = 100
MIN_CELL = 5


def terminal_width(width: int | None = None) -> int:
    if width is not None:
        return max(40, int(width))
    return max(40, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)


def fmt_int(value: int | None) -> str:
    return "-" if value is None else f"{int(value):,}"


def fmt_float(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    if 1e-4 <= abs(value) < 1e7:
        text = f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{digits}f}".rstrip("0").rstrip(".")
        return text
    return f"{value:.{digits - 1}e}"


def fmt_pct(part: int, whole: int) -> str:
    if not whole:
        return "-"
    share = 100.0 * part / whole
    if share == 0:
        return "0%"
    if share < 0.01:
        return "<0.01%"
    return f"{share:.2f}%" if share < 10 else f"{share:.1f}%"


def fmt_value(value: Any, limit: int = 60) -> str:
    """One cell: ``null`` for None, strings as they are (``""`` when empty), numbers compactly."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value) if math.isfinite(value) else fmt_float(value)
    elif isinstance(value, str):
        text = value if value else '""'
    elif isinstance(value, (dt.datetime, dt.date, dt.time)):
        text = value.isoformat()
    elif isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, (bytes, bytearray)):
        text = "0x" + bytes(value[:32]).hex() + ("…" if len(value) > 32 else "")
    else:
        text = str(value)
    text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return truncate(text, limit)


def truncate(text: str, limit: int) -> str:
    if limit <= 1:
        return text[:limit]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, width: int,
               right: Sequence[int] = (), indent: int = 2) -> str:
    """Columns separated by two spaces, fitted into ``width`` by shrinking the widest columns."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    ncols = len(headers)
    widths = [max(len(r[i]) for r in cells) for i in range(ncols)]
    room = width - indent - 2 * (ncols - 1)
    while sum(widths) > room:
        widest = max(range(ncols), key=lambda i: widths[i])
        if widths[widest] <= MIN_CELL:
            break
        widths[widest] -= 1
    lines = []
    for n, row in enumerate(cells):
        parts = []
        for i, cell in enumerate(row):
            cell = truncate(cell, widths[i])
            parts.append(cell.rjust(widths[i]) if (i in right and n > 0) else cell.ljust(widths[i]))
        lines.append(" " * indent + "  ".join(parts).rstrip())
        if n == 0:
            lines.append(" " * indent + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[int] = ()) -> str:
    head = "| " + " | ".join(md_escape(h) for h in headers) + " |"
    rule = "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|"
    body = ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """``text`` wrapped to ``width`` (long words are broken), continuation lines indented."""
    import textwrap

    return textwrap.wrap(text, width=width, subsequent_indent=indent or "  ", break_long_words=True,
                         break_on_hyphens=False) or [""]


def more(shown: int, total: int) -> str:
    return "" if total <= shown else f" (showing {shown:,} of {total:,})"
