"""fsck: check packs, index, trees and versions; optionally rebuild the chunk index from the packs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlark.core.tree import Tree
from mlark.errors import MlarkError
from mlark.meta import catalog
from mlark.objectstore.index import PackInfo
from mlark.ops.lock import repo_lock
from mlark.ops.progress import Progress

if TYPE_CHECKING:
    from mlark.ops.repo import Repo


@dataclass
class FsckReport:
    packs_checked: int = 0
    chunks_checked: int = 0
    bytes_checked: int = 0
    versions_checked: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    index_rebuilt: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}


def fsck(repo: "Repo", *, rebuild_index: bool, progress: Progress) -> FsckReport:
    report = FsckReport()
    with repo_lock(repo.meta_dir, exclusive=rebuild_index):
        on_disk = dict(repo.store.pack_keys())
        total = sum(repo.backend.size(key) for key in on_disk.values())
        progress.start("checking packs", total, len(on_disk))
        good: list[PackInfo] = []
        footer_chunks: dict[str, str] = {}
        for digest, key in sorted(on_disk.items()):
            size = repo.backend.size(key)
            try:
                info = repo.store.verify_pack(digest)
                good.append(info)
                for loc in info.entries:
                    footer_chunks.setdefault(loc.digest, digest)
                report.chunks_checked += len(info.entries)
            except MlarkError as exc:
                report.errors.append(f"pack {digest}: {exc}")
                salvaged = _salvage(repo, digest, report)
                if salvaged is not None:
                    # The footer is intact: keep its entries (every read verifies its chunk, so a
                    # damaged one is still named as corrupt, and the intact ones stay readable).
                    good.append(salvaged)
                    for loc in salvaged.entries:
                        footer_chunks.setdefault(loc.digest, digest)
            report.packs_checked += 1
            report.bytes_checked += size
            progress.advance(size, 0)
        progress.finish()

        if rebuild_index:
            repo.index.replace_all(good)
            report.index_rebuilt = True

        indexed_packs = repo.index.pack_digests()
        for digest in sorted(indexed_packs - set(on_disk)):
            report.errors.append(f"pack {digest} is in the index but missing from .mlark/packs")
        unindexed = set(on_disk) - indexed_packs
        needed: set[str] = set()  # unindexed packs holding chunks that versions need: not garbage
        index_rows = 0
        for loc in repo.index.iter_chunks():
            index_rows += 1
            if footer_chunks.get(loc.digest) is None and loc.pack in on_disk:
                report.errors.append(f"index says chunk {loc.digest} is in pack {loc.pack}, but that pack lacks it")

        with repo.db.read() as conn:
            versions = catalog.all_versions(conn)
        indexed = repo.store.locate(footer_chunks)
        for version in versions:
            if version.removed_at is not None:
                continue
            report.versions_checked += 1
            try:
                tree = Tree.decode(repo.store.read_chunk(version.digest))
                if tree.digest != version.digest:
                    report.errors.append(f"{version.ref}: tree does not match the version digest")
                    continue
            except MlarkError as exc:
                holder = footer_chunks.get(version.digest)
                if version.digest not in indexed and holder is not None:
                    needed.add(holder)
                    report.errors.append(
                        f"{version.ref}: its tree (chunk {version.digest}) is in pack {holder} but not in the "
                        "chunk index; run 'mlark fsck --rebuild-index'"
                    )
                else:
                    report.errors.append(f"{version.ref}: tree unreadable: {exc}")
                continue
            missing = [d for d in tree.chunk_digests() if d not in indexed]
            if missing:
                needed.update(footer_chunks[d] for d in missing if d in footer_chunks)
                where = "in no pack" if any(d not in footer_chunks for d in missing) else "not in the index"
                hint = (
                    "" if where == "in no pack"
                    else f" (pack {footer_chunks[missing[0]]} holds it); run 'mlark fsck --rebuild-index'"
                )
                report.errors.append(f"{version.ref}: {len(missing)} chunk(s) {where}, e.g. {missing[0]}{hint}")
            if tree.size != version.size or tree.file_count != version.file_count:
                report.errors.append(f"{version.ref}: recorded size or file count disagrees with its tree")
        garbage = unindexed - needed
        if garbage:
            report.warnings.append(
                f"{len(garbage)} pack(s) are not indexed (left by an interrupted add); 'mlark gc' removes them"
            )
    return report


def _salvage(repo: "Repo", digest: str, report: FsckReport) -> PackInfo | None:
    """A damaged pack whose footer still parses: check each blob on its own, name the bad ones."""
    try:
        info = repo.store.scan_pack(digest)
    except MlarkError:
        return None
    for loc in info.entries:
        try:
            repo.store.read_located(loc)
            report.chunks_checked += 1
        except MlarkError as exc:
            report.errors.append(f"chunk {loc.digest} in pack {digest}: {exc}")
    return info
