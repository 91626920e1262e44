"""gc: delete what no version, alias or log can reach; repack partly dead packs."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlark.core.tree import Tree
from mlark.errors import IntegrityError, MlarkError
from mlark.meta import catalog
from mlark.objectstore.index import PackInfo
from mlark.objectstore.pack import PackWriter, pack_key
from mlark.ops.lock import repo_lock
from mlark.ops.progress import Progress
from mlark.tracking.records import blob_digests as run_blob_digests

if TYPE_CHECKING:
    from mlark.ops.repo import Repo

# A pack whose live bytes are below this share of its blobs is rewritten.
REPACK_BELOW = 0.8


@dataclass
class GcReport:
    packs_deleted: int = 0
    packs_rewritten: int = 0
    unindexed_packs_deleted: int = 0
    chunks_deleted: int = 0
    bytes_freed: int = 0
    live_chunks: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reachable_chunks(repo: "Repo") -> set[str]:
    with repo.db.read() as conn:
        digests = catalog.live_digests(conn)
        blobs = run_blob_digests(conn)  # blobs runs keep (uncommitted git diffs): single chunks
    live: set[str] = set(blobs)
    for digest in digests:
        live.add(digest)
        data = repo.store.read_chunk(digest)
        live.update(Tree.decode(data).chunk_digests())
    return live


def _refuse_if_needed(repo: "Repo", live: set[str], unindexed: list[str]) -> None:
    """Raise before deleting anything if an unindexed pack holds a chunk a version needs (a lost index row)."""
    unlocated = live - set(repo.store.locate(live))
    if not unlocated:
        return
    for digest in unindexed:
        try:
            held = unlocated & {loc.digest for loc in repo.store.scan_pack(digest).entries}
        except MlarkError:
            continue
        if held:
            example = min(held)
            raise IntegrityError(
                f"pack {digest} is not in the chunk index but holds {len(held)} chunk(s) that versions need "
                f"(e.g. {example}); gc deleted nothing: run 'mlark fsck --rebuild-index' first",
                pack=digest,
                chunk=example,
            )


def gc(repo: "Repo", progress: Progress) -> GcReport:
    report = GcReport()
    with repo_lock(repo.meta_dir, exclusive=True):
        live = reachable_chunks(repo)
        report.live_chunks = len(live)
        home = {loc.digest: loc.pack for loc in repo.index.iter_chunks()}
        indexed = repo.index.pack_digests()
        progress.start("collecting garbage", len(indexed), len(indexed))
        # Packs on disk that no index row names: left by a crashed or refused writer.
        unindexed = [(digest, key) for digest, key in repo.store.pack_keys() if digest not in indexed]
        if unindexed:
            _refuse_if_needed(repo, live, [digest for digest, _ in unindexed])
        for digest, key in unindexed:
            report.bytes_freed += repo.backend.size(key)
            repo.store.delete_pack(digest)
            report.unindexed_packs_deleted += 1
        for pack in sorted(indexed):
            progress.advance(1, 0)
            locs = repo.store.scan_pack(pack).entries
            # A chunk is alive here if something reaches it and the index locates it in this pack
            # (a second copy written by a concurrent writer is dead weight).
            alive = [loc for loc in locs if loc.digest in live and home.get(loc.digest) == pack]
            if len(alive) == len(locs):
                continue
            total = sum(loc.stored_len for loc in locs) or 1
            kept = sum(loc.stored_len for loc in alive)
            size = repo.backend.size(pack_key(pack)) if repo.backend.exists(pack_key(pack)) else 0
            if not alive:
                repo.db.run_write(lambda conn, p=pack: repo.index.remove_packs_in(conn, [p]))
                repo.store.delete_pack(pack)
                report.packs_deleted += 1
                report.chunks_deleted += len(locs)
                report.bytes_freed += size
            elif kept / total < REPACK_BELOW:
                writer = PackWriter(str(repo.meta_dir / "tmp"), repo.store.level)
                try:
                    for loc in alive:
                        writer.add(loc.digest, repo.store.read_located(loc))
                    info = writer.finish()
                    repo.backend.put_file(pack_key(info.digest), writer.path)
                except BaseException:
                    writer.abort()
                    raise

                def swap(conn: Any, old: str = pack, new: PackInfo = info) -> None:
                    repo.index.remove_packs_in(conn, [old])
                    repo.index.add_packs_in(conn, [new])

                repo.db.run_write(swap)
                repo.store.delete_pack(pack)
                report.packs_rewritten += 1
                report.chunks_deleted += len(locs) - len(alive)
                report.bytes_freed += size - info.size
        progress.finish()
        tmp = repo.meta_dir / "tmp"
        if tmp.is_dir():
            for name in os.listdir(tmp):
                target = tmp / name
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    return report
