"""status: how a working folder differs from a version, file by file (unchanged files are not re-read)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlark.core.types import Version
from mlark.errors import InvalidInput
from mlark.ops.get import file_digest
from mlark.ops.scan import scan

if TYPE_CHECKING:
    from mlark.ops.repo import Repo


@dataclass
class StatusReport:
    version: Version
    path: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    mode_changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    files_read: int = 0

    @property
    def clean(self) -> bool:
        return not (self.added or self.removed or self.modified or self.mode_changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.version.ref,
            "path": self.path,
            "clean": self.clean,
            "added": self.added,
            "removed": self.removed,
            "modified": self.modified,
            "mode_changed": self.mode_changed,
            "unchanged": self.unchanged,
            "files_read": self.files_read,
        }


def status(repo: "Repo", path: str | os.PathLike[str], ref: str | None) -> StatusReport:
    plan = scan(path)
    if ref is None:
        key = plan.files[0].abspath if plan.single_file else plan.root
        name = repo.stat_cache.workspace_artifact(key)
        if name is None:
            raise InvalidInput(
                f"{path} was not added or fetched here before, so mlark does not know which artifact it is; "
                "give one with --ref NAME",
                path=str(path),
            )
        ref = name
    version = repo.resolve(ref)
    tree = repo.tree(version)
    report = StatusReport(version, str(path))
    wanted = {e.path: e for e in tree.entries}
    seen: set[str] = set()
    fresh = []
    for f in plan.files:
        seen.add(f.path)
        entry = wanted.get(f.path)
        if entry is None:
            report.added.append(f.path)
            continue
        if entry.type != "file":  # was a link or folder in the version: the path is there, but changed
            report.modified.append(f.path)
            continue
        if f.size != entry.size:
            report.modified.append(f.path)
            continue
        hit = repo.stat_cache.get(f)
        if hit is None:
            digest = file_digest(f.abspath)
            report.files_read += 1
            fresh.append((f, digest, entry.chunks if digest == entry.digest else None))
        else:
            digest = hit[0]
        if digest != entry.digest:
            report.modified.append(f.path)
        elif f.mode != entry.mode:
            report.mode_changed.append(f.path)
        else:
            report.unchanged += 1
    for other in plan.others:
        seen.add(other.path)
        entry = wanted.get(other.path)
        if entry is None:
            report.added.append(other.path)
        elif entry.type != other.type or entry.target != other.target:
            report.modified.append(other.path)
    for entry_path, entry in wanted.items():
        if entry_path not in seen:
            report.removed.append(entry_path)
    try:
        repo.stat_cache.put_many(fresh)
    except Exception:
        pass
    return report
