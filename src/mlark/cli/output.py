"""Printing: JSON for machines, rich tables for people, progress on stderr."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from typing import Any


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str, allow_nan=True) + "\n")


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def human_bytes(n: int | float) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def ago(when: datetime) -> str:
    seconds = (datetime.now(timezone.utc) - when).total_seconds()
    if seconds < 60:
        return "just now"
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"


def stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class RichProgress:
    """Bytes, rate, and how much was new versus already stored, on stderr when it is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._progress: Any = None
        self._task: Any = None
        self.total = 0
        self.done = 0
        self.new = 0
        self.started = 0.0

    def start(self, task: str, total_bytes: int, total_files: int) -> None:
        self.total, self.done, self.new, self.started = total_bytes, 0, 0, time.monotonic()
        if not self.enabled:
            return
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TextColumn("{task.fields[new]}"),
            TimeRemainingColumn(),
            console=console(stderr=True),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(task, total=total_bytes or None, new="")

    def advance(self, bytes_done: int, bytes_new: int) -> None:
        self.done += bytes_done
        self.new += bytes_new
        if self._progress is not None:
            self._progress.update(self._task, advance=bytes_done,
                                  new=f"new {human_bytes(self.new)}" if self.new else "")

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
