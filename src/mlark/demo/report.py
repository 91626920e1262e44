"""How the demo talks to whoever runs it.

The demo never prints: it calls a ``Reporter`` that the adapter supplies (the CLI
renders it with rich; ``mlark demo --json`` and the tests pass ``NullReporter``).
Everything a reporter receives is plain text, so any front end can render it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, Sequence


class Reporter(Protocol):
    def step(self, number: int, total: int, title: str) -> None:
        """A new step begins."""

    def say(self, text: str) -> None:
        """A sentence of narration: what happens and why."""

    def command(self, text: str) -> None:
        """The mlark command line that does what the demo just did through the API."""

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A small table of results."""

    def check(self, label: str, ok: bool, detail: str = "") -> None:
        """A verification and its outcome."""


class NullReporter:
    """Says nothing (``--json``, tests)."""

    def step(self, number: int, total: int, title: str) -> None:
        pass

    def say(self, text: str) -> None:
        pass

    def command(self, text: str) -> None:
        pass

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        pass

    def check(self, label: str, ok: bool, detail: str = "") -> None:
        pass


@dataclass
class RecordingReporter:
    """Keeps every event as ``(kind, payload)``; for tests and for front ends that render later."""

    events: list[tuple[str, Any]] = field(default_factory=list)

    def step(self, number: int, total: int, title: str) -> None:
        self.events.append(("step", (number, total, title)))

    def say(self, text: str) -> None:
        self.events.append(("say", text))

    def command(self, text: str) -> None:
        self.events.append(("command", text))

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.events.append(("table", (title, list(columns), [list(r) for r in rows])))

    def check(self, label: str, ok: bool, detail: str = "") -> None:
        self.events.append(("check", (label, ok, detail)))

    def of(self, kind: str) -> list[Any]:
        return [payload for k, payload in self.events if k == kind]


def fmt_bytes(n: int | float) -> str:
    """1536 -> '1.5 KiB' (the demo sits beside the CLI and may not import its helpers)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def fmt_time(when: datetime) -> str:
    """UTC, without the zone (tables say "(UTC)" in the header)."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def fmt_ratio(part: int, whole: int) -> str:
    return "-" if whole <= 0 else f"{100.0 * part / whole:.1f}%"
