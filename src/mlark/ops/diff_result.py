""":class:`VersionDiff`: two versions compared — files from the trees, then tables, the model manifest and
its weights. Like every diff result it offers ``to_dict()``, ``to_json()``, ``to_markdown()``,
``render(width)``, ``summary()`` and ``has_changes``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from mlark.core.types import Version
from mlark.diff.result import DiffResult
from mlark.diff.text import terminal_width
from mlark.ops.diff_files import FilesDiff, human_bytes
from mlark.ops.diff_models import ManifestDiff

def describe_type(type_: str) -> str:
    """``a dataset version``, ``a model version``, ``an image version``."""
    article = "an" if type_[:1].lower() in "aeiou" else "a"
    return f"{article} {type_} version"


@dataclass(frozen=True)
class VersionInfo:
    """What a diff shows about each side."""

    ref: str
    name: str
    type: str
    number: int
    digest: str
    message: str
    author: str
    created_at: str
    size: int
    file_count: int

    @classmethod
    def of(cls, v: Version) -> "VersionInfo":
        return cls(v.ref, v.name, v.type, v.number, v.digest, v.message, v.author,
                   v.created_at.isoformat(), v.size, v.file_count)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def line(self) -> str:
        when = self.created_at[:16].replace("T", " ")
        return (f"{self.ref}  {self.digest[:12]}  {self.file_count:,} files, {human_bytes(self.size)}  "
                f"{self.author}, {when}  \"{_short(self.message)}\"")


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class VersionDiff(DiffResult):
    """Two versions compared.

    ``files``: every path (:class:`~mlark.ops.diff_files.FilesDiff`). ``tables``: the ``--table``
    diffs, by path (``old -> new`` when the two paths differ). ``manifest``: the model manifests
    compared (model versions only). ``models``: the weights files compared (state dicts and ONNX
    graphs), by path.
    """

    kind: ClassVar[str] = "version"

    a: VersionInfo
    b: VersionInfo
    files: FilesDiff
    tables: dict[str, DiffResult] = field(default_factory=dict)
    manifest: ManifestDiff | None = None
    models: dict[str, DiffResult] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def type(self) -> str:
        return self.a.type

    @property
    def has_changes(self) -> bool:
        return (self.files.has_changes or any(t.has_changes for t in self.tables.values())
                or any(m.has_changes for m in self.models.values())
                or bool(self.manifest is not None and self.manifest.has_changes))

    def summary(self) -> str:
        parts = [f"{self.a.ref} -> {self.b.ref}: " + (self.files.summary() if self.files.has_changes
                                                     else "identical content")]
        if self.manifest is not None and self.manifest.has_changes:
            parts.append("manifest changed")
        parts += [m.summary() for m in self.models.values() if m.has_changes]
        parts += [t.summary() for t in self.tables.values()]
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "has_changes": self.has_changes,
            "type": self.type,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "files": self.files.to_dict(),
            "manifest": None if self.manifest is None else self.manifest.to_dict(),
            "models": {path: d.to_dict() for path, d in self.models.items()},
            "tables": {path: d.to_dict() for path, d in self.tables.items()},
            "notes": list(self.notes),
        }

    def render(self, width: int | None = None) -> str:
        w = terminal_width(width)
        lines = [f"Diff {self.a.ref} -> {self.b.ref} ({self.type})", f"  old: {self.a.line()}",
                 f"  new: {self.b.line()}", ""]
        lines += self.files.render_lines(w)
        if self.manifest is not None:
            lines += [""] + self.manifest.render_lines(w)
        for d in (*self.models.values(), *self.tables.values()):  # each says what it is and names both files
            lines += ["", d.render(w).rstrip()]
        if self.notes:
            lines += [""] + [f"note: {n}" for n in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def to_markdown(self) -> str:
        lines = [f"## Diff `{self.a.ref}` -> `{self.b.ref}` ({self.type})", "",
                 "| | version | digest | files | size | author | message |", "|---|---|---|---:|---:|---|---|"]
        for side, info in (("old", self.a), ("new", self.b)):
            message = _short(info.message, 80).replace("|", "\\|")
            lines.append(f"| {side} | `{info.ref}` | `{info.digest[:12]}` | {info.file_count:,} | "
                         f"{human_bytes(info.size)} | {info.author} | {message} |")
        lines.append("")
        lines += self.files.markdown_lines()
        if self.manifest is not None:
            lines += self.manifest.markdown_lines()
        for path, d in self.models.items():
            what = {"state_dict": "state dict", "onnx": "ONNX graph"}.get(d.kind, d.kind)
            lines += [f"### Weights `{path}` ({what})", "", _body(d.to_markdown()), ""]
        for path, d in self.tables.items():
            lines += [f"### Table `{path}`", "", _body(d.to_markdown()), ""]
        if self.notes:
            lines += [f"- {n}" for n in self.notes] + [""]
        return "\n".join(lines).rstrip() + "\n"


def _body(markdown: str) -> str:
    """An engine's Markdown without its ``### ...`` title (our heading names the file); its ``####``
    sections then sit under our ``###``."""
    lines = markdown.strip().splitlines()
    if lines and lines[0].startswith("### "):
        lines = lines[1:]
    return "\n".join(lines).strip()
