"""The object store: chunks in packs, located through the chunk index, verified on every read."""

from __future__ import annotations

from typing import Iterable, Iterator

import blake3

from mlark.errors import IntegrityError, NotFound, StorageError
from mlark.objectstore.chunker import Chunker, ChunkParams
from mlark.objectstore.index import ChunkIndex, ChunkLocation, PackInfo
from mlark.objectstore.pack import TRAILER_SIZE, decode_blob, pack_key, parse_footer
from mlark.objectstore.writer import ChunkWriter, WriteStats
from mlark.storage.base import Backend

LOOKUP_BATCH = 256
READ_THREADS = 3
READ_AHEAD = 8
RUN_BYTES = 4 << 20


class ObjectStore:
    def __init__(self, backend: Backend, index: ChunkIndex, tmp_dir: str, params: ChunkParams,
                 *, level: int = 1) -> None:
        self.backend = backend
        self.index = index
        self.tmp_dir = tmp_dir
        self.params = params
        self.level = level
        self._chunker = Chunker(params)

    def chunker(self) -> Chunker:
        return self._chunker

    def writer(self) -> ChunkWriter:
        return ChunkWriter(self)

    # -- reading -------------------------------------------------------------------------------

    def locate(self, digests: Iterable[str]) -> dict[str, ChunkLocation]:
        return self.index.lookup(digests)  # one read transaction; the index slices long lists

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
        """The chunks' bytes in order, each verified."""
        for block in self.read_blocks(digests):
            yield from block

    def read_blocks(self, digests: list[str]) -> Iterator[list[bytes]]:
        """The chunks' bytes in order, in blocks, each chunk verified.

        Chunks that lie next to each other in one pack (the usual case for one file) are read with one
        pread per run of up to RUN_BYTES; runs are decompressed and hashed by a small thread pool (zstd
        and BLAKE3 release the GIL), with a bounded number of runs in flight.
        """
        if len(digests) <= 2:
            for digest in digests:
                yield [self.read_located(self._locate_one(digest, self.locate([digest])))]
            return
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="mlark-read") as pool:
            window: deque = deque()
            for run in self._runs(digests):
                window.append(pool.submit(self._read_run, run))
                if len(window) >= READ_AHEAD:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()

    def _runs(self, digests: list[str]) -> Iterator[list[ChunkLocation]]:
        run: list[ChunkLocation] = []
        run_bytes = 0
        for i in range(0, len(digests), LOOKUP_BATCH):
            batch = digests[i : i + LOOKUP_BATCH]
            located = self.locate(batch)
            for digest in batch:
                loc = self._locate_one(digest, located)
                if run and (
                    loc.pack != run[-1].pack
                    or loc.offset != run[-1].offset + run[-1].stored_len
                    or run_bytes + loc.stored_len > RUN_BYTES
                ):
                    yield run
                    run, run_bytes = [], 0
                run.append(loc)
                run_bytes += loc.stored_len
        if run:
            yield run

    def _read_run(self, run: list[ChunkLocation]) -> list[bytes]:
        if len(run) == 1:
            return [self.read_located(run[0])]
        first = run[0]
        length = run[-1].offset + run[-1].stored_len - first.offset
        try:
            data = memoryview(self.backend.get_range(pack_key(first.pack), first.offset, length))
        except (NotFound, StorageError):
            return [self.read_located(loc) for loc in run]  # let the single read name the failure
        out = []
        for loc in run:
            start = loc.offset - first.offset
            raw = decode_blob(loc, data[start : start + loc.stored_len])
            if len(raw) != loc.raw_len or blake3.blake3(raw).hexdigest() != loc.digest:
                raise IntegrityError(
                    f"chunk {loc.digest} in pack {loc.pack} is corrupt: its bytes do not match its digest",
                    chunk=loc.digest,
                    pack=loc.pack,
                )
            out.append(raw if isinstance(raw, bytes) else bytes(raw))
        return out

    @staticmethod
    def _locate_one(digest: str, located: dict[str, ChunkLocation]) -> ChunkLocation:
        loc = located.get(digest)
        if loc is None:
            raise IntegrityError(
                f"chunk {digest} is not in the chunk index; run 'mlark fsck --rebuild-index' if packs hold it",
                chunk=digest,
            )
        return loc

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


__all__ = ["ChunkWriter", "ObjectStore", "WriteStats"]
