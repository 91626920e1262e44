"""add: commit a file or folder as a new version of an artifact."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from mlark.core.digest import digest_bytes
from mlark.core.messages import check_message, vague_message_warning
from mlark.core.names import validate_alias, validate_name
from mlark.core.tree import ChunkRef, Entry, Tree
from mlark.core.types import Version
from mlark.errors import InvalidInput
from mlark.meta import catalog
from mlark.objectstore.files import ingest_path
from mlark.objectstore.store import WriteStats
from mlark.ops.lock import repo_lock
from mlark.ops.progress import Progress
from mlark.ops.scan import PlannedFile, scan

if TYPE_CHECKING:
    from mlark.ops.repo import Repo


class VagueMessageWarning(UserWarning):
    """A commit message that does not say what changed or why."""


@dataclass
class AddOutcome:
    version: Version
    created: bool
    stats: WriteStats
    cached_files: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.to_dict(),
            "created": self.created,
            "bytes_read": self.stats.bytes,
            "bytes_new": self.stats.bytes_new,
            "bytes_stored": self.stats.bytes_stored,
            "chunks": self.stats.chunks,
            "chunks_new": self.stats.chunks_new,
            "files_unchanged_by_stat": self.cached_files,
            "warnings": self.warnings,
        }


def _check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise InvalidInput("metadata must be a JSON object with string keys", field="metadata")
    try:
        text = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metadata is not JSON-serialisable: {exc}", field="metadata") from exc
    if len(text) > 1_000_000:
        raise InvalidInput("metadata is larger than 1 MB of JSON", field="metadata")
    return dict(json.loads(text))


def _check_tags(tags: Sequence[str]) -> list[str]:
    if isinstance(tags, str):
        tags = [tags]
    return [validate_name(t, kind="tag") for t in tags]


def add(repo: "Repo", path: str | os.PathLike[str], *, name: str, message: str, type: str | None,
        metadata: dict[str, Any] | None, tags: Sequence[str], aliases: Sequence[str],
        progress: Progress) -> AddOutcome:
    name = validate_name(name)
    message = check_message(message)
    if type is not None:
        type = validate_name(type, kind="artifact type")
    meta = _check_metadata(metadata)
    tag_list = _check_tags(tags)
    alias_list = [validate_alias(a) for a in ([aliases] if isinstance(aliases, str) else aliases)]
    notes = []
    vague = vague_message_warning(message)
    if vague:
        warnings.warn(vague, VagueMessageWarning, stacklevel=3)
        notes.append(vague)
    plan = scan(path)

    with repo_lock(repo.meta_dir, exclusive=False):
        writer = repo.store.writer()
        entries: list[Entry] = [Entry(o.path, o.type, o.mode, target=o.target) for o in plan.others]  # type: ignore[arg-type]
        cached = 0
        to_cache: list[tuple[PlannedFile, str, tuple[ChunkRef, ...]]] = []
        progress.start(f"adding {name}", plan.total_bytes, len(plan.files))
        try:
            hits = _stat_hits(repo, plan.files)
            for f in plan.files:
                hit = hits.get(f.abspath)
                if hit is not None:
                    digest, chunks = hit
                    writer.stats.chunks += len(chunks)
                    writer.stats.bytes += f.size
                    cached += 1
                    progress.advance(f.size, 0)
                else:
                    before = writer.stats.bytes_new

                    def on_bytes(n: int) -> None:
                        progress.advance(n, 0)

                    digest, size, chunks = ingest_path(repo.store, writer, f.abspath, on_bytes)
                    progress.advance(0, writer.stats.bytes_new - before)
                    if size != f.size:
                        raise InvalidInput(f"{f.abspath} changed size while it was being added; try again",
                                           path=f.abspath)
                    to_cache.append((f, digest, chunks))
                entries.append(Entry(f.path, "file", f.mode, f.size, digest, chunks))
            tree = Tree(tuple(entries))
            tree_bytes = tree.encode()
            tree_digest = digest_bytes(tree_bytes)
            writer.put(tree_digest, tree_bytes)
            packs = writer.finish()
        except BaseException:
            writer.abort()
            raise
        finally:
            progress.finish()

        stats = writer.stats
        now = repo.now()

        def record(conn: Any) -> tuple[str, bool]:
            repo.index.add_packs_in(conn, packs)
            art = catalog.lock_artifact(conn, name, type=type, author=repo.author, now=now)
            existing = catalog.find_by_digest(conn, art.id, tree_digest)
            if existing is not None:
                # A revert: the working copy is an older version again. No new version, but
                # `latest` follows the content, and the move is logged like any other.
                version_id, created = existing.id, False
                catalog.move_alias(conn, art.id, "latest", version_id, author=repo.author, now=now,
                                   message=f"content identical to {existing.ref}: {message}")
            else:
                version_id = catalog.insert_version(
                    conn, art, digest=tree_digest, message=message, author=repo.author, now=now, metadata=meta,
                    tags=tag_list, size=tree.size, new_bytes=stats.bytes_stored, file_count=tree.file_count,
                )
                created = True
                catalog.move_alias(conn, art.id, "latest", version_id, author=repo.author, now=now,
                                   message=message)
            for alias in alias_list:
                catalog.move_alias(conn, art.id, alias, version_id, author=repo.author, now=now, message=message)
            return version_id, created

        version_id, created = repo.db.run_write(record)
    with repo.db.read() as conn:
        version = catalog.version_by_id(conn, version_id)
    try:
        repo.stat_cache.put_many(to_cache)
        if not plan.single_file:
            repo.stat_cache.remember_workspace(plan.root, name)
        else:
            repo.stat_cache.remember_workspace(plan.files[0].abspath, name)
    except Exception:  # the cache only saves time; never fail a committed add over it
        pass
    return AddOutcome(version, created, stats, cached, notes)


def _stat_hits(repo: "Repo", files: list[PlannedFile]) -> dict[str, tuple[str, tuple[ChunkRef, ...]]]:
    """Files whose stat matches the cache and whose chunks are all still indexed."""
    candidates: dict[str, tuple[str, tuple[ChunkRef, ...]]] = {}
    cache = repo.stat_cache
    for f in files:
        hit = cache.get(f)
        if hit is not None and hit[1] is not None:
            candidates[f.abspath] = (hit[0], hit[1])
    if not candidates:
        return {}
    wanted = {c.digest for _, chunks in candidates.values() for c in chunks}
    present = set(repo.store.locate(wanted))
    return {p: v for p, v in candidates.items() if all(c.digest in present for c in v[1])}
