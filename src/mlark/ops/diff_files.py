"""Files of two versions compared from their trees alone (no file bytes are read).

A path in both trees is ``unchanged`` when its content digest, mode and type are the same, else
``modified`` (for a file, ``shared_bytes`` are the bytes of the distinct chunks both of its versions
hold).
A path in one tree only is ``added`` or ``removed``, except that a removed file and an added file
with the same content digest are one ``renamed`` file (paired in path order when several share a
digest; empty files are never paired: every empty file has the same digest). A path whose type
changed (a file became a symbolic link) is removed and added. Empty folders count as entries of
type ``dir``.

``shared_bytes`` of the two versions is the sum of the sizes of the distinct chunks both trees
reference: what the second version did not have to store again. ``stored_a``/``stored_b`` are each
tree's distinct-chunk bytes (a file held twice is stored once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlark.core.tree import Entry, Tree
from mlark.diff.text import fmt_int, md_table, more, text_table

STATUSES = ("added", "removed", "modified", "renamed", "unchanged")
MAX_ROWS = 200


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


@dataclass(frozen=True)
class FileChange:
    """One path compared. ``path`` is the path in the new version (the old one for ``removed``)."""

    path: str
    status: str  # added | removed | modified | renamed | unchanged
    type: str = "file"  # file | symlink | dir
    old_path: str | None = None  # renamed: the path in the old version
    size_a: int | None = None
    size_b: int | None = None
    digest_a: str | None = None
    digest_b: str | None = None
    mode_a: int | None = None
    mode_b: int | None = None
    target_a: str | None = None  # symbolic links
    target_b: str | None = None
    shared_bytes: int | None = None  # modified or renamed files: bytes of the distinct chunks both sides hold

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "status": self.status, "type": self.type, "old_path": self.old_path,
            "size_a": self.size_a, "size_b": self.size_b, "digest_a": self.digest_a, "digest_b": self.digest_b,
            "mode_a": None if self.mode_a is None else oct(self.mode_a),
            "mode_b": None if self.mode_b is None else oct(self.mode_b),
            "target_a": self.target_a, "target_b": self.target_b, "shared_bytes": self.shared_bytes,
        }

    @property
    def shown_path(self) -> str:
        return f"{self.old_path} -> {self.path}" if self.old_path is not None else self.path

    def what(self) -> str:
        """What changed, in a few words (sizes, mode, link target)."""
        if self.type == "symlink":
            if self.status == "modified":
                return f"link {self.target_a} -> {self.target_b}"
            return f"link to {self.target_b if self.target_b is not None else self.target_a}"
        if self.type == "dir":
            if self.status == "modified":
                return f"empty folder, mode {oct(self.mode_a or 0)[2:]} -> {oct(self.mode_b or 0)[2:]}"
            return "empty folder"
        parts = []
        if self.status == "modified":
            if self.digest_a != self.digest_b:
                parts.append(f"{human_bytes(self.size_a)} -> {human_bytes(self.size_b)}")
            if self.mode_a != self.mode_b:
                parts.append(f"mode {oct(self.mode_a or 0)[2:]} -> {oct(self.mode_b or 0)[2:]}")
        else:
            parts.append(human_bytes(self.size_b if self.size_b is not None else self.size_a))
        return ", ".join(parts)


@dataclass(frozen=True)
class FilesDiff:
    """Every path of two trees compared (unchanged ones are counted, and listed only in ``changes``)."""

    changes: tuple[FileChange, ...]
    files_a: int
    files_b: int
    size_a: int
    size_b: int
    stored_a: int
    stored_b: int
    shared_bytes: int

    def _with(self, status: str) -> tuple[FileChange, ...]:
        return tuple(c for c in self.changes if c.status == status)

    @property
    def added(self) -> tuple[FileChange, ...]:
        return self._with("added")

    @property
    def removed(self) -> tuple[FileChange, ...]:
        return self._with("removed")

    @property
    def modified(self) -> tuple[FileChange, ...]:
        return self._with("modified")

    @property
    def renamed(self) -> tuple[FileChange, ...]:
        return self._with("renamed")

    @property
    def unchanged(self) -> tuple[FileChange, ...]:
        return self._with("unchanged")

    @property
    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for c in self.changes:
            out[c.status] += 1
        return out

    @property
    def differing(self) -> tuple[FileChange, ...]:
        return tuple(c for c in self.changes if c.status != "unchanged")

    @property
    def has_changes(self) -> bool:
        return any(c.status != "unchanged" for c in self.changes)

    @property
    def new_bytes(self) -> int:
        """Bytes of the new version's chunks that the old version does not hold."""
        return self.stored_b - self.shared_bytes

    def summary(self) -> str:
        c = self.counts
        return ", ".join(f"{c[s]:,} {s}" for s in STATUSES)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"counts": self.counts}
        for status in ("added", "removed", "modified", "renamed"):
            out[status] = [c.to_dict() for c in self._with(status)]
        out.update({
            "files_a": self.files_a, "files_b": self.files_b, "size_a": self.size_a, "size_b": self.size_b,
            "stored_a": self.stored_a, "stored_b": self.stored_b, "shared_bytes": self.shared_bytes,
            "new_bytes": self.new_bytes,
        })
        return out

    def _totals(self) -> str:
        share = f" ({100.0 * self.shared_bytes / self.stored_b:.1f}% of the new version)" if self.stored_b else ""
        return (f"{fmt_int(self.files_a)} -> {fmt_int(self.files_b)} files, {human_bytes(self.size_a)} -> "
                f"{human_bytes(self.size_b)}; shared {human_bytes(self.shared_bytes)}{share}, "
                f"new {human_bytes(self.new_bytes)}")

    def _rows(self, limit: int) -> list[list[str]]:
        return [[c.status, c.shown_path, c.what(),
                 human_bytes(c.shared_bytes) if c.shared_bytes is not None else ""] for c in self.differing[:limit]]

    def render_lines(self, width: int) -> list[str]:
        lines = [f"Files: {self.summary()}", f"  {self._totals()}"]
        rows = self._rows(MAX_ROWS)
        if rows:
            lines.append(text_table(["status", "path", "change", "shared"], rows, width=width, right=(3,)))
            if len(self.differing) > MAX_ROWS:
                lines.append(f"  ...{more(MAX_ROWS, len(self.differing))}; --json lists every path")
        return lines

    def markdown_lines(self) -> list[str]:
        lines = ["### Files", "", f"{self.summary()}.", "", self._totals() + ".", ""]
        rows = self._rows(MAX_ROWS)
        if rows:
            lines.append(md_table(["status", "path", "change", "shared"], rows, right=(3,)))
            if len(self.differing) > MAX_ROWS:
                lines += ["", f"_{more(MAX_ROWS, len(self.differing)).strip()}_"]
            lines.append("")
        return lines


def _chunk_sizes(entries: list[Entry]) -> dict[str, int]:
    return {c.digest: c.size for e in entries for c in e.chunks}


def _same(a: Entry, b: Entry) -> bool:
    if a.type != b.type:
        return False
    if a.type == "file":
        return a.digest == b.digest and a.mode == b.mode
    if a.type == "symlink":
        return a.target == b.target
    return a.mode == b.mode


def _one_side(e: Entry, status: str) -> FileChange:
    a = status == "removed"
    size = e.size if e.type == "file" else None
    digest = e.digest if e.type == "file" else None
    mode = e.mode if e.type != "symlink" else None
    target = e.target if e.type == "symlink" else None
    return FileChange(
        e.path, status, e.type,
        size_a=size if a else None, size_b=None if a else size,
        digest_a=digest if a else None, digest_b=None if a else digest,
        mode_a=mode if a else None, mode_b=None if a else mode,
        target_a=target if a else None, target_b=None if a else target,
    )


def _both(a: Entry, b: Entry, status: str, old_path: str | None = None) -> FileChange:
    shared = None
    if a.type == "file" and status != "unchanged":
        mine = {c.digest: c.size for c in a.chunks}
        shared = sum(size for digest, size in {c.digest: c.size for c in b.chunks}.items() if digest in mine)
    return FileChange(
        b.path, status, b.type, old_path=old_path,
        size_a=a.size if a.type == "file" else None, size_b=b.size if b.type == "file" else None,
        digest_a=a.digest or None, digest_b=b.digest or None,
        mode_a=a.mode if a.type != "symlink" else None, mode_b=b.mode if b.type != "symlink" else None,
        target_a=a.target or None, target_b=b.target or None, shared_bytes=shared,
    )


def diff_trees(a: Tree, b: Tree) -> FilesDiff:
    """Compare two trees path by path, pairing renamed files by content digest."""
    ea = {e.path: e for e in a.entries}
    eb = {e.path: e for e in b.entries}
    changes: list[FileChange] = []
    removed: list[Entry] = []
    added: list[Entry] = []
    for path, old in ea.items():
        new = eb.get(path)
        if new is None:
            removed.append(old)
        elif old.type != new.type:
            removed.append(old)
            added.append(new)
        else:
            changes.append(_both(old, new, "unchanged" if _same(old, new) else "modified"))
    added.extend(e for p, e in eb.items() if p not in ea)
    by_digest: dict[str, list[Entry]] = {}
    for e in sorted(removed, key=lambda e: e.path):
        if e.type == "file" and e.size > 0:
            by_digest.setdefault(e.digest, []).append(e)
    renamed_from: set[str] = set()
    for e in sorted(added, key=lambda e: e.path):
        candidates = by_digest.get(e.digest) if e.type == "file" and e.size > 0 else None
        if candidates:
            old = candidates.pop(0)
            renamed_from.add(old.path)
            changes.append(_both(old, e, "renamed", old_path=old.path))
        else:
            changes.append(_one_side(e, "added"))
    changes.extend(_one_side(e, "removed") for e in removed if e.path not in renamed_from)
    order = {s: i for i, s in enumerate(STATUSES)}
    changes.sort(key=lambda c: (order[c.status], c.path))
    files_a, files_b = list(a.files()), list(b.files())
    chunks_a, chunks_b = _chunk_sizes(files_a), _chunk_sizes(files_b)
    return FilesDiff(
        changes=tuple(changes),
        files_a=len(files_a), files_b=len(files_b),
        size_a=sum(e.size for e in files_a), size_b=sum(e.size for e in files_b),
        stored_a=sum(chunks_a.values()), stored_b=sum(chunks_b.values()),
        shared_bytes=sum(size for digest, size in chunks_b.items() if digest in chunks_a),
    )
