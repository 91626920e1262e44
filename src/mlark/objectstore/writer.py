"""ChunkWriter: one writing session. Dedups against the index and itself; a background thread
compresses new chunks, fills packs and seals them, so chunking and packing use both cores."""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlark.objectstore.index import PackInfo
from mlark.objectstore.pack import PackWriter, pack_key

if TYPE_CHECKING:
    from mlark.objectstore.store import ObjectStore

PACK_TARGET = 32 * 1024 * 1024
LOOKUP_BATCH = 256
PENDING_BYTES = 8 << 20
IN_FLIGHT_BATCHES = 8  # at most ~64 MiB of chunks wait for the packer

Batch = list[tuple[str, bytes]]


@dataclass
class WriteStats:
    chunks: int = 0
    chunks_new: int = 0
    bytes: int = 0
    bytes_new: int = 0
    bytes_stored: int = 0


class ChunkWriter:
    """The caller indexes ``finish()``'s packs in the same transaction that records what uses them."""

    def __init__(self, store: "ObjectStore") -> None:
        self.store = store
        self.stats = WriteStats()
        self.packs: list[PackInfo] = []
        self._seen: set[str] = set()
        self._pending: Batch = []
        self._pending_bytes = 0
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=IN_FLIGHT_BATCHES)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()

    def put(self, digest: str, data: bytes) -> None:
        """Queue a chunk. ``data`` must be bytes the caller will not change."""
        self.stats.chunks += 1
        self.stats.bytes += len(data)
        if digest in self._seen:
            return
        self._seen.add(digest)
        self._pending.append((digest, data))
        self._pending_bytes += len(data)
        if len(self._pending) >= LOOKUP_BATCH or self._pending_bytes >= PENDING_BYTES:
            self.flush_pending()

    def flush_pending(self) -> None:
        if not self._pending:
            return
        known = self.store.index.lookup([d for d, _ in self._pending])
        batch = [(d, data) for d, data in self._pending if d not in known]
        self._pending = []
        self._pending_bytes = 0
        if not batch:
            return
        self.stats.chunks_new += len(batch)
        self.stats.bytes_new += sum(len(data) for _, data in batch)
        self._raise_if_failed()
        if self._thread is None:
            os.makedirs(self.store.tmp_dir, exist_ok=True)
            self._thread = threading.Thread(target=self._pack_loop, name="mlark-packer", daemon=True)
            self._thread.start()
        self._queue.put(batch)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _pack_loop(self) -> None:
        pack: PackWriter | None = None
        try:
            while (batch := self._queue.get()) is not None:
                if self._stop.is_set():
                    continue
                if pack is None:
                    pack = PackWriter(self.store.tmp_dir, self.store.level)
                frames = pack.compress_many([data for _, data in batch])
                for (digest, data), frame in zip(batch, frames):
                    if pack is None:
                        pack = PackWriter(self.store.tmp_dir, self.store.level)
                    self.stats.bytes_stored += pack.add(digest, data, frame)
                    if pack.size >= PACK_TARGET:
                        self._seal(pack)
                        pack = None
            if pack is not None and len(pack) and not self._stop.is_set():
                self._seal(pack)
                pack = None
        except BaseException as exc:  # handed to the caller's thread by finish()
            self._error = exc
            while self._queue.get() is not None:  # keep draining so the producer never blocks
                pass
        finally:
            if pack is not None:
                pack.abort()

    def _seal(self, pack: PackWriter) -> None:
        try:
            # Writeback starts now and overlaps the next pack; finish() waits for it (fsync) before
            # the caller indexes anything, so the write order of docs/format.md section 7 holds.
            info = pack.finish(sync=False)
            self.store.backend.put_file(pack_key(info.digest), pack.path)
        except BaseException:
            pack.abort()
            raise
        self.packs.append(info)

    def finish(self) -> list[PackInfo]:
        self.flush_pending()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._raise_if_failed()
        for info in self.packs:
            self.store.backend.sync(pack_key(info.digest))
        return self.packs

    def abort(self) -> None:
        """Stop without sealing what is unfinished; sealed packs stay unindexed until gc removes them."""
        self._pending = []
        if self._thread is not None:
            self._stop.set()
            self._queue.put(None)
            self._thread.join()
            self._thread = None
