"""What the demo's steps share: the context object, the Step type, and the workspace marker."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from mlark.demo.report import Reporter
from mlark.errors import IntegrityError

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

MARKER = ".mlark-demo.json"
MARKER_FORMAT = 1


@dataclass
class DemoContext:
    """Handed to every step in turn.

    - ``workdir``: the demo workspace (absolute); ``force``: wipe a previous demo there.
    - ``repo``: the repository, opened by the workspace step (closed by ``run``).
    - ``out``: where narration goes.
    - ``summary``: the result document; each step adds its own section.
    - ``state``: values one step hands to later ones (paths, original bytes, add outcomes).
    """

    workdir: Path
    out: Reporter
    force: bool = False
    author: str | None = None
    repo_or_none: "Repo | None" = None
    summary: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def repo(self) -> "Repo":
        if self.repo_or_none is None:
            raise RuntimeError("the workspace step has not opened the repository yet")
        return self.repo_or_none

    def path(self, *parts: str) -> Path:
        """A path inside the workspace; its top-level name is recorded in the marker, so that
        ``--force`` later wipes only what the demo itself created."""
        if not parts:
            return self.workdir
        claim(self.workdir, parts[0])
        return self.workdir.joinpath(*parts)

    def require(self, label: str, ok: bool, detail: str = "") -> None:
        """Report a check; a failed one stops the demo with an integrity error."""
        self.out.check(label, ok, detail)
        if not ok:
            raise IntegrityError(f"demo check failed: {label}" + (f" ({detail})" if detail else ""), check=label)


@dataclass(frozen=True)
class Step:
    title: str
    fn: Callable[[DemoContext], None]

    def __call__(self, ctx: DemoContext) -> None:
        self.fn(ctx)


def step(title: str) -> Callable[[Callable[[DemoContext], None]], Step]:
    """Decorator: ``@step("Commit it as version 1")`` turns a function of the context into a Step."""

    def wrap(fn: Callable[[DemoContext], None]) -> Step:
        return Step(title, fn)

    return wrap


# -- the marker that makes a folder recognisably a demo workspace ------------------------------

def read_marker(workdir: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((workdir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("mlark-demo") != MARKER_FORMAT or not isinstance(doc.get("entries"), list):
        return None
    if not all(isinstance(e, str) for e in doc["entries"]):
        return None
    return doc


def write_marker(workdir: Path, entries: list[str]) -> None:
    doc = {"mlark-demo": MARKER_FORMAT, "entries": sorted(set(entries)),
           "note": "written by 'mlark demo'; 'mlark demo --force' may wipe the entries listed here"}
    tmp = workdir / f"{MARKER}.tmp"
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, workdir / MARKER)


def claim(workdir: Path, name: str) -> None:
    marker = read_marker(workdir)
    entries = [] if marker is None else list(marker["entries"])
    if name not in entries:
        write_marker(workdir, entries + [name])
