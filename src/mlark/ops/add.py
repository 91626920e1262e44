"""add: commit a file or folder as a new version of an artifact."""

from __future__ import annotations

import json
import os
import threading
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
from mlark.objectstore.files import ingest_path, ingest_small
from mlark.objectstore.store import WriteStats
from mlark.ops.lock import repo_lock
from mlark.core.gcpause import gc_paused
from mlark.ops.progress import Progress
from mlark.ops.scan import PlannedFile, scan

if TYPE_CHECKING:
    from mlark.ops.repo import Repo


PROGRESS_STEP = 1 << 20


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
    with gc_paused():  # many small objects, no cycles (see mlark.core.gcpause)
        return _add(repo, path, name=name, message=message, type=type, metadata=metadata, tags=tags,
                    aliases=aliases, progress=progress)


def _add(repo: "Repo", path: str | os.PathLike[str], *, name: str, message: str, type: str | None,
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
        warnings.warn(vague, VagueMessageWarning, stacklevel=4)
        notes.append(vague)
    plan = scan(path)

    with repo_lock(repo.meta_dir, exclusive=False):
        writer = repo.store.writer()
        entries: list[Entry] = [Entry(o.path, o.type, o.mode, target=o.target) for o in plan.others]  # type: ignore[arg-type]
        cached = 0
        to_cache: list[tuple[PlannedFile, str, tuple[ChunkRef, ...]]] = []
        saver: threading.Thread | None = None
        progress.start(f"adding {name}", plan.total_bytes, len(plan.files))
        try:
            hits = _stat_hits(repo, plan.files)
            batched = _BatchedProgress(progress)

            def on_bytes(n: int) -> None:
                progress.advance(n, 0)

            store, stats = repo.store, writer.stats
            for f in plan.files:  # per-file overhead is what a folder of small files costs: keep it lean
                hit = hits.get(f.abspath)
                if hit is not None:
                    digest, chunks = hit
                    stats.chunks += len(chunks)
                    stats.bytes += f.size
                    cached += 1
                    batched.advance(f.size, 0)
                else:
                    before = stats.bytes_new
                    done = ingest_small(store, writer, f.abspath, f.size)  # most files of a folder
                    if done is not None:
                        digest, size, chunks = done
                        batched.advance(size, stats.bytes_new - before)
                    else:
                        batched.flush()
                        digest, size, chunks = ingest_path(store, writer, f.abspath, on_bytes)
                        progress.advance(0, stats.bytes_new - before)
                    if size != f.size:
                        raise InvalidInput(f"{f.abspath} changed size while it was being added; try again",
                                           path=f.abspath)
                    to_cache.append((f, digest, chunks))
                entries.append(Entry(f.path, "file", f.mode, f.size, digest, chunks))
            batched.flush()
            # The stat cache records facts about files (this stat, these bytes), true whether or not the
            # version commits, and it is only trusted for chunks the index holds: write it meanwhile.
            saver = threading.Thread(target=_cache_quietly, args=(repo, to_cache), name="mlark-statcache")
            saver.start()
            tree = Tree(tuple(entries))
            tree_bytes = tree.encode()
            tree_digest = digest_bytes(tree_bytes)
            writer.put(tree_digest, tree_bytes)
            packs = writer.finish()
        except BaseException:
            writer.abort()
            if saver is not None:
                saver.join()
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

        try:
            version_id, created = repo.db.run_write(record)
        finally:
            if saver is not None:
                saver.join()
    with repo.db.read() as conn:
        version = catalog.version_by_id(conn, version_id)
    try:
        if not plan.single_file:
            repo.stat_cache.remember_workspace(plan.root, name)
        else:
            repo.stat_cache.remember_workspace(plan.files[0].abspath, name)
    except Exception:  # the cache only saves time; never fail a committed add over it
        pass
    return AddOutcome(version, created, stats, cached, notes)


def _cache_quietly(repo: "Repo", items: list[tuple[PlannedFile, str, tuple[ChunkRef, ...]]]) -> None:
    try:
        repo.stat_cache.put_many(items)
    except Exception:  # the cache only saves time; never fail an add over it
        pass


class _BatchedProgress:
    """Progress of many small files, reported in steps of PROGRESS_STEP bytes rather than per file."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.done = self.new = 0

    def advance(self, done: int, new: int) -> None:
        self.done += done
        self.new += new
        if self.done >= PROGRESS_STEP:
            self.flush()

    def flush(self) -> None:
        if self.done or self.new:
            self.progress.advance(self.done, self.new)
            self.done = self.new = 0


def _stat_hits(repo: "Repo", files: list[PlannedFile]) -> dict[str, tuple[str, tuple[ChunkRef, ...]]]:
    """Files whose stat matches the cache and whose chunks are all still indexed."""
    candidates: dict[str, tuple[str, tuple[ChunkRef, ...]]] = {}
    for path, (digest, chunks) in repo.stat_cache.get_many(files).items():
        if chunks is not None:
            candidates[path] = (digest, chunks)
    if not candidates:
        return {}
    wanted = {c.digest for _, chunks in candidates.values() for c in chunks}
    present = set(repo.store.locate(wanted))
    return {p: v for p, v in candidates.items() if all(c.digest in present for c in v[1])}
