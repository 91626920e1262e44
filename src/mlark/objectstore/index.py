"""The chunk index port: where each chunk lives. Implemented by the metadata database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple, Protocol

FLAG_RAW = 0
FLAG_ZSTD = 1


class ChunkLocation(NamedTuple):
    """Where one chunk is stored. A named tuple: a get of 1 GiB locates 15,000 of them and an add of
    10,000 small files makes 10,000, and a frozen dataclass costs several times more to build."""

    digest: str
    pack: str
    offset: int
    stored_len: int
    raw_len: int
    flags: int


@dataclass(frozen=True, slots=True)
class PackInfo:
    digest: str
    size: int
    entries: tuple[ChunkLocation, ...]


class ChunkIndex(Protocol):
    """Chunk digest -> location. Derived data: rebuildable from pack footers."""

    def lookup(self, digests: Iterable[str]) -> dict[str, ChunkLocation]:
        """Locations of those digests that are indexed (missing ones are absent from the result)."""
        ...

    def add_packs(self, packs: Iterable[PackInfo]) -> None:
        """Index every entry of these packs; a chunk already indexed keeps its existing location."""
        ...

    def remove_packs(self, pack_digests: Iterable[str]) -> None:
        """Forget these packs and every chunk located in them."""
        ...

    def replace_all(self, packs: Iterable[PackInfo]) -> None:
        """Drop the whole index and index exactly these packs (used by fsck --rebuild-index)."""
        ...

    def pack_digests(self) -> set[str]:
        ...

    def iter_chunks(self) -> Iterator[ChunkLocation]:
        ...

    def count(self) -> int:
        ...
