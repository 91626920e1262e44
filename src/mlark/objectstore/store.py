"""The object store: chunks in packs, located through the chunk index, verified on every read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import blake3

from mlark.errors import IntegrityError, NotFound, StorageError
from mlark.objectstore.chunker import Chunker, ChunkParams
from mlark.objectstore.index import ChunkIndex, ChunkLocation, PackInfo
from mlark.objectstore.pack import TRAILER_SIZE, PackWriter, decode_blob, pack_key, parse_footer
from mlark.storage.base import Backend

PACK_TARGET = 32 * 1024 * 1024
LOOKUP_BATCH = 256


@dataclass
class WriteStats:
    chunks: int = 0
    chunks_new: int = 0
    bytes: int = 0
    bytes_new: int = 0
    bytes_stored: int = 0


class ObjectStore:
    def __init__(self, backend: Backend, index: ChunkIndex, tmp_dir: str, params: ChunkParams,
                 *, level: int = 3) -> None:
        self.backend = backend
        self.index = index
        self.tmp_dir = tmp_dir
        self.params = params
        self.level = level

    def chunker(self) -> Chunker:
        return Chunker(self.params)

    def writer(self) -> "ChunkWriter":
        return ChunkWriter(self)

    # -- reading -------------------------------------------------------------------------------

    def locate(self, digests: Iterable[str]) -> dict[str, ChunkLocation]:
        wanted = list(dict.fromkeys(digests))
        found: dict[str, ChunkLocation] = {}
        for i in range(0, len(wanted), 500):
            found.update(self.index.lookup(wanted[i : i + 500]))
        return found

    def read_located(self, loc: ChunkLocation) -> bytes:
        try:
            stored = self.backend.get_range(pack_key(loc.pack), loc.offset, loc.stored_len)
        except NotFound as exc:
            raise IntegrityError(
                f"chunk {loc.digest} is indexed in pack {loc.pack}, but that pack is missing; "
                "run 'mlark fsck' to see what is affected",
                chunk=loc.digest,
                pack=loc.pack,
            ) from exc
        except StorageError as exc:
            raise IntegrityError(
                f"chunk {loc.digest} cannot be read from pack {loc.pack}: {exc}", chunk=loc.digest, pack=loc.pack
            ) from exc
        raw = decode_blob(loc, stored)
        if len(raw) != loc.raw_len or blake3.blake3(raw).hexdigest() != loc.digest:
            raise IntegrityError(
                f"chunk {loc.digest} in pack {loc.pack} is corrupt: its bytes do not match its digest",
                chunk=loc.digest,
                pack=loc.pack,
            )
        return raw

    def read_chunk(self, digest: str) -> bytes:
        loc = self.locate([digest]).get(digest)
        if loc is None:
            raise IntegrityError(
                f"chunk {digest} is not in the chunk index; run 'mlark fsck --rebuild-index' if packs hold it",
                chunk=digest,
            )
        return self.read_located(loc)

    def read_chunks(self, digests: list[str]) -> Iterator[bytes]:
        """The chunks' bytes in order, located in batches, each verified."""
        for i in range(0, len(digests), LOOKUP_BATCH):
            batch = digests[i : i + LOOKUP_BATCH]
            located = self.locate(batch)
            for digest in batch:
                loc = located.get(digest)
                if loc is None:
                    raise IntegrityError(
                        f"chunk {digest} is not in the chunk index; "
                        "run 'mlark fsck --rebuild-index' if packs hold it",
                        chunk=digest,
                    )
                yield self.read_located(loc)

    # -- packs ---------------------------------------------------------------------------------

    def pack_keys(self) -> Iterator[tuple[str, str]]:
        """(digest, key) of every pack file present in the backend."""
        for key in self.backend.list("packs/"):
            name = key.rsplit("/", 1)[-1]
            if name.endswith(".pack"):
                yield name[: -len(".pack")], key

    def scan_pack(self, digest: str) -> PackInfo:
        """Read a pack's footer (not its blobs)."""
        key = pack_key(digest)
        size = self.backend.size(key)
        if size < TRAILER_SIZE + 8:
            raise IntegrityError(f"pack {digest} is truncated ({size} bytes)", pack=digest)
        tail = self.backend.get_range(key, size - TRAILER_SIZE, TRAILER_SIZE)

        def read_footer(length: int) -> bytes:
            start = size - TRAILER_SIZE - length
            if start < 8:
                raise IntegrityError(f"pack {digest} footer is larger than the pack", pack=digest)
            return self.backend.get_range(key, start, length)

        info = parse_footer(digest, tail, read_footer)
        return PackInfo(digest, size, info.entries)

    def verify_pack(self, digest: str) -> PackInfo:
        """Hash the whole pack file and every blob in it; IntegrityError on any mismatch."""
        key = pack_key(digest)
        data = self.backend.get_bytes(key)
        if blake3.blake3(data).hexdigest() != digest:
            raise IntegrityError(f"pack {digest} does not match its name: its bytes are damaged", pack=digest)
        info = self.scan_pack(digest)
        for loc in info.entries:
            raw = decode_blob(loc, data[loc.offset : loc.offset + loc.stored_len])
            if blake3.blake3(raw).hexdigest() != loc.digest:
                raise IntegrityError(f"chunk {loc.digest} in pack {digest} is corrupt", chunk=loc.digest, pack=digest)
        return info

    def delete_pack(self, digest: str) -> None:
        self.backend.delete(pack_key(digest))


@dataclass
class ChunkWriter:
    """One writing session: dedups against the index and itself, fills packs, seals them.

    The caller indexes ``finish()``'s packs in the same transaction that records what uses them.
    """

    store: ObjectStore
    stats: WriteStats = field(default_factory=WriteStats)
    packs: list[PackInfo] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _pending: list[tuple[str, bytes | memoryview]] = field(default_factory=list)
    _pending_bytes: int = 0
    _pack: PackWriter | None = None

    def put(self, digest: str, data: bytes | memoryview) -> None:
        """Queue a chunk (the caller must not reuse ``data``'s buffer: pass bytes)."""
        self.stats.chunks += 1
        self.stats.bytes += len(data)
        if digest in self._seen:
            return
        self._seen.add(digest)
        self._pending.append((digest, data))
        self._pending_bytes += len(data)
        if len(self._pending) >= LOOKUP_BATCH or self._pending_bytes >= 8 << 20:
            self.flush_pending()

    def flush_pending(self) -> None:
        if not self._pending:
            return
        known = self.store.index.lookup([d for d, _ in self._pending])
        for digest, data in self._pending:
            if digest in known:
                continue
            if self._pack is None:
                self._pack = PackWriter(self.store.tmp_dir, self.store.level)
            self.stats.bytes_stored += self._pack.add(digest, data)
            self.stats.chunks_new += 1
            self.stats.bytes_new += len(data)
            if self._pack.size >= PACK_TARGET:
                self._seal()
        self._pending.clear()
        self._pending_bytes = 0

    def _seal(self) -> None:
        assert self._pack is not None
        pack, self._pack = self._pack, None
        try:
            info = pack.finish()
            self.store.backend.put_file(pack_key(info.digest), pack.path)
        except BaseException:
            pack.abort()
            raise
        self.packs.append(info)

    def finish(self) -> list[PackInfo]:
        self.flush_pending()
        if self._pack is not None and len(self._pack):
            self._seal()
        return self.packs

    def abort(self) -> None:
        self._pending.clear()
        if self._pack is not None:
            self._pack.abort()
            self._pack = None
