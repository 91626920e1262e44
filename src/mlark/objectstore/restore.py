"""Writing stored files back: every chunk verified before any of its bytes reach the output.

A file's chunks usually lie next to each other in a few packs. They are grouped into runs (adjacent
blobs of one pack, up to RUN_BYTES of raw bytes), and each run is one unit of work for a small pool
of threads: hash every raw blob straight from a memory map of the pack (no copy into a fresh
buffer), decompress every zstd blob into a buffer the thread reuses (fresh buffers cost page faults),
compare each chunk with its digest, and only then write the run at its place in the output. BLAKE3,
zstd and the writes release the GIL, so runs proceed in parallel, and the order of the writes does
not matter because each run knows its offset in the file. Large files are written in whole aligned
blocks so that the writes may bypass the page cache where that is faster (mlark.objectstore.sink).

Large files are decoded and written by different threads: as many decoding threads as cores, and
WRITERS threads that only write. A thread that decodes a run and then writes it competes for a core
when its write completes, and waits behind the decoders while the device has nothing to do; a thread
that only writes is woken at once. Decoders fill page-aligned buffers from a small shared set
(:class:`_Stages`) and hand each filled one to a writer, which gives it back once written.

A chunk whose bytes do not match raises IntegrityError naming the chunk and the pack; the caller
writes into a temporary file and never renames it into place then.
"""

from __future__ import annotations

import mmap
import os
import queue
import threading
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import blake3
import zstandard

from mlark.core.tree import ChunkRef
from mlark.errors import IntegrityError, NotFound, StorageError
from mlark.objectstore.index import FLAG_RAW, ChunkLocation
from mlark.objectstore.pack import pack_key
from mlark.objectstore.sink import ALIGN, AUTO, DIRECT, IO_MODES, BlockSink, pwrite_all
from mlark.objectstore.store import ObjectStore

#: Raw bytes per unit of work (one write).
RUN_BYTES = 4 << 20
#: Digests located per index query round.
LOCATE_BATCH = 4096
#: Runs queued ahead of the one being waited for.
IN_FLIGHT = 8
#: Runs whose bytes are asked of the disk before they are queued.
PREFETCH_RUNS = 16
#: Chunk locations preload() keeps at most.
PRELOAD_MAX = 500_000
#: Pack maps kept open at once.
MAX_MAPS = 64
#: Files at least this large are written in whole blocks (see mlark.objectstore.sink).
BLOCK_MIN = 64 << 20
MAX_THREADS = 6
#: Threads that only write blocks of large files (the device takes a couple of writes at once).
WRITERS = 2

OnBytes = Callable[[int], None]


@dataclass(slots=True)
class _Run:
    pack: str
    start: int  # offset of the first blob in the pack
    end: int  # offset just past the last blob
    out: int  # offset of the first chunk's bytes in the output file
    raw: int  # raw bytes in the run
    locs: list[ChunkLocation]
    prev: ChunkLocation | None  # the file's chunk just before this run


class _Scratch(threading.local):
    def __init__(self) -> None:
        self.buf = bytearray(0)
        self.dctx = zstandard.ZstdDecompressor()


class _Stages:
    """Page-aligned buffers for block writes, made as needed up to ``limit`` and reused (a fresh buffer
    costs a page fault per page): a decoder takes one, waiting while all are being written, and the
    writer gives it back."""

    def __init__(self, limit: int) -> None:
        self._free: queue.SimpleQueue[mmap.mmap] = queue.SimpleQueue()
        self._limit = limit
        self._made = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> mmap.mmap:
        try:
            buf = self._free.get_nowait()
        except queue.Empty:
            with self._lock:
                make = self._made < self._limit
                self._made += make
            buf = mmap.mmap(-1, max(size, RUN_BYTES + 2 * ALIGN)) if make else self._free.get()
        if len(buf) < size:  # a run larger than usual (one chunk above RUN_BYTES)
            buf.close()
            buf = mmap.mmap(-1, size)
        return buf

    def give(self, buf: mmap.mmap) -> None:
        self._free.put(buf)

    def close(self) -> None:
        while True:
            try:
                buf = self._free.get_nowait()
            except queue.Empty:
                return
            try:
                buf.close()
            except BufferError:
                pass  # a slice still alive (in a traceback): the buffer goes when it does


def _corrupt(loc: ChunkLocation) -> IntegrityError:
    return IntegrityError(
        f"chunk {loc.digest} in pack {loc.pack} is corrupt: its bytes do not match its digest",
        chunk=loc.digest,
        pack=loc.pack,
    )


def _missing_pack(loc: ChunkLocation, exc: Exception) -> IntegrityError:
    if isinstance(exc, NotFound):
        text = f"chunk {loc.digest} is indexed in pack {loc.pack}, but that pack is missing; " \
               "run 'mlark fsck' to see what is affected"
    else:
        text = f"chunk {loc.digest} cannot be read from pack {loc.pack}: {exc}"
    return IntegrityError(text, chunk=loc.digest, pack=loc.pack)


class Restorer:
    """Writes files of one store into file descriptors. Use as a context manager; not reentrant.

    ``io`` chooses how large files are written: "auto" (measure; see :mod:`mlark.objectstore.sink`),
    "buffered" or "direct" (where the file system takes it).
    """

    def __init__(self, store: ObjectStore, *, threads: int | None = None, io: str = AUTO) -> None:
        if io not in IO_MODES:
            raise ValueError(f"io must be one of {', '.join(IO_MODES)}, not {io!r}")
        self.store = store
        # One decoding thread per core; blocks of large files are written by WRITERS threads of their own.
        # Measured on 2 cores, 1 GiB in runs of 4 MiB written directly: 2 decoders 0.66 s, 3 0.68 s,
        # 4 0.71 s; 4 threads that each decoded and then wrote their run took 0.77-0.8 s.
        self.threads = threads or min(MAX_THREADS, os.cpu_count() or 1)
        self.io = io
        self._pool: ThreadPoolExecutor | None = None
        self._writers: ThreadPoolExecutor | None = None
        self._stages = _Stages(self.threads + WRITERS + 1)
        self._maps: OrderedDict[str, tuple[mmap.mmap, memoryview] | None] = OrderedDict()
        self._maps_lock = threading.Lock()
        self._scratch = _Scratch()
        self._known: dict[str, ChunkLocation] = {}

    def __enter__(self) -> "Restorer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._writers is not None:
            self._writers.shutdown(wait=True)
            self._writers = None
        self._stages.close()
        with self._maps_lock:
            while self._maps:
                _, mapped = self._maps.popitem()
                _release(mapped)

    # -- the public verbs ----------------------------------------------------------------------

    def preload(self, digests: Iterable[str]) -> None:
        """Locate these chunks now, in few queries (the chunks of many files about to be written)."""
        wanted = [d for d in dict.fromkeys(digests) if d not in self._known]
        if len(self._known) + len(wanted) <= PRELOAD_MAX:
            self._known.update(self.store.locate(wanted))

    def write_file(self, chunks: tuple[ChunkRef, ...], fd: int, path: str, on_bytes: OnBytes | None = None) -> int:
        """Write the chunks' verified bytes to fd (an empty file open for writing). Returns the bytes written."""
        size = sum(c.size for c in chunks)
        # Block writes need every chunk but the last to cover a whole block (so a run's first block
        # holds bytes of one chunk before it at most); the chunker's minimum is far above that.
        if size < BLOCK_MIN or any(c.size < ALIGN for c in chunks[:-1]):
            return self._write(chunks, fd, path, on_bytes, None)
        sink = BlockSink(fd, size, self.io)
        try:
            written = self._write(chunks, fd, path, on_bytes, sink)
        finally:
            sink.close()
        if self.io == AUTO and sink.chosen == DIRECT:
            self.io = DIRECT  # the next large file starts with the answer (buffered is watched afresh)
        return written

    def _write(self, chunks: tuple[ChunkRef, ...], fd: int, path: str, on_bytes: OnBytes | None,
               sink: BlockSink | None) -> int:
        runs = self._runs(chunks, path)
        first = next(runs, None)
        if first is None:
            return 0
        if sink is not None and self._writers is None:
            self._writers = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="mlark-write")
        second = next(runs, None)
        if second is None:  # one run (a small file): no thread hand-off
            return self._collect_now(_settle(self._do_run(first, fd, sink)), on_bytes)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="mlark-restore")
        pool = self._pool
        window: deque[Future[int | Future[int]]] = deque()
        total = 0
        try:
            for run in self._prefetched(_chain(first, second, runs)):
                window.append(pool.submit(self._do_run, run, fd, sink))
                if len(window) > IN_FLIGHT:
                    total += self._collect_now(_settle(window.popleft().result()), on_bytes)
            while window:
                total += self._collect_now(_settle(window.popleft().result()), on_bytes)
        finally:
            for fut in window:  # an error: stop what has not started, wait for the rest and their writes
                fut.cancel()
            for fut in window:
                if not fut.cancelled() and fut.exception() is None:
                    written = fut.result()
                    if isinstance(written, Future):
                        written.exception()
        return total

    @staticmethod
    def _collect_now(n: int, on_bytes: OnBytes | None) -> int:
        if on_bytes is not None:
            on_bytes(n)
        return n

    # -- planning ------------------------------------------------------------------------------

    def _runs(self, chunks: tuple[ChunkRef, ...], path: str) -> Iterator[_Run]:
        run: _Run | None = None
        out = 0
        for i in range(0, len(chunks), LOCATE_BATCH):
            batch = chunks[i : i + LOCATE_BATCH]
            missing = [c.digest for c in batch if c.digest not in self._known]
            located = self.store.locate(missing) if missing else {}
            for ref in batch:
                loc = self._known.get(ref.digest) or located.get(ref.digest)
                if loc is None:
                    raise IntegrityError(
                        f"chunk {ref.digest} is not in the chunk index; "
                        "run 'mlark fsck --rebuild-index' if packs hold it",
                        chunk=ref.digest,
                    )
                if loc.raw_len != ref.size:
                    raise IntegrityError(
                        f"chunk {ref.digest} of {path!r} has the wrong length", chunk=ref.digest, path=path
                    )
                if run is not None and loc.pack == run.pack and loc.offset == run.end \
                        and run.raw + loc.raw_len <= RUN_BYTES:
                    run.locs.append(loc)
                    run.end += loc.stored_len
                    run.raw += loc.raw_len
                else:
                    prev = None
                    if run is not None:
                        yield run
                        prev = run.locs[-1]
                    run = _Run(loc.pack, loc.offset, loc.offset + loc.stored_len, out, loc.raw_len, [loc], prev)
                out += loc.raw_len
        if run is not None:
            yield run

    # -- reading -------------------------------------------------------------------------------

    def _mapped(self, pack: str) -> tuple[mmap.mmap, memoryview] | None:
        with self._maps_lock:
            if pack in self._maps:
                self._maps.move_to_end(pack)
                return self._maps[pack]
            try:
                m = self.store.backend.map(pack_key(pack))
            except (NotFound, StorageError):
                m = None  # get_range names the failure
            mapped = None if m is None else (m, memoryview(m))
            self._maps[pack] = mapped
            while len(self._maps) > MAX_MAPS:
                _release(self._maps.popitem(last=False)[1])
            return mapped

    def _view(self, pack: str) -> memoryview | None:
        mapped = self._mapped(pack)
        return None if mapped is None else mapped[1]

    def _prefetched(self, runs: Iterator[_Run]) -> Iterator[_Run]:
        """The runs, each one's stored bytes asked of the disk PREFETCH_RUNS runs before it is handed
        out: packs not read for a while are no longer in memory, and faults on a map read them a
        little at a time, while a hint lets the kernel read ahead in large requests."""
        ahead: deque[_Run] = deque()
        for run in runs:
            mapped = self._mapped(run.pack)
            if mapped is not None and run.end <= len(mapped[0]):
                start = run.start - run.start % mmap.PAGESIZE
                try:
                    mapped[0].madvise(mmap.MADV_WILLNEED, start, run.end - start)
                except (OSError, ValueError):
                    pass  # only a hint
            ahead.append(run)
            if len(ahead) > PREFETCH_RUNS:
                yield ahead.popleft()
        yield from ahead

    def _blobs(self, run: _Run) -> memoryview:
        """The stored bytes of the run, from the pack's map or read with one get_range."""
        view = self._view(run.pack)
        if view is not None:
            if run.end <= len(view):
                return view[run.start : run.end]
            beyond = next(loc for loc in run.locs if loc.offset + loc.stored_len > len(view))
            raise IntegrityError(
                f"chunk {beyond.digest} lies beyond the end of pack {run.pack} ({len(view)} bytes): "
                "the pack is truncated",
                chunk=beyond.digest,
                pack=run.pack,
            )
        try:
            return memoryview(self.store.backend.get_range(pack_key(run.pack), run.start, run.end - run.start))
        except (NotFound, StorageError) as exc:
            raise _missing_pack(run.locs[0], exc) from exc

    def _decode(self, loc: ChunkLocation, blob: memoryview, dest: memoryview) -> memoryview:
        """The chunk's verified raw bytes: blob itself if stored raw, else decompressed into dest."""
        if loc.flags == FLAG_RAW:
            piece = blob
        else:
            piece = dest[: loc.raw_len]
            try:
                n = _decompress_into(self._scratch.dctx, blob, piece)
            except zstandard.ZstdError as exc:
                raise IntegrityError(
                    f"chunk {loc.digest} in pack {loc.pack} does not decompress: {exc}",
                    chunk=loc.digest,
                    pack=loc.pack,
                ) from exc
            if n != loc.raw_len:
                raise _corrupt(loc)
        _verify(loc, piece)
        return piece

    def _scratch_buf(self, size: int) -> memoryview:
        scratch = self._scratch
        if len(scratch.buf) < size:
            scratch.buf = bytearray(max(size, RUN_BYTES))
        return memoryview(scratch.buf)

    def _do_run(self, run: _Run, fd: int, sink: BlockSink | None) -> int | Future[int]:
        if sink is not None:
            return self._do_run_blocks(run, sink)
        data = self._blobs(run)
        buf = self._scratch_buf(sum(loc.raw_len for loc in run.locs if loc.flags != FLAG_RAW))
        used = 0
        pieces: list[memoryview] = []
        for loc in run.locs:
            start = loc.offset - run.start
            piece = self._decode(loc, data[start : start + loc.stored_len], buf[used:])
            if loc.flags != FLAG_RAW:
                used += loc.raw_len
            pieces.append(piece)
        pwrite_all(fd, pieces, run.out)
        return run.raw

    def _do_run_blocks(self, run: _Run, sink: BlockSink) -> int | Future[int]:
        """Like _do_run, in whole blocks: from the block holding the run's first byte up to the block
        holding its last, which the next run writes (the last run writes it too, padded). The bytes of
        the first block that precede the run are the end of the chunk before it, verified again here.
        Returns the future of the write, made by a writer thread."""
        start = run.out - run.out % ALIGN
        lead = run.out - start
        end = run.out + run.raw
        stop = -(-end // ALIGN) * ALIGN if end == sink.size else end - end % ALIGN
        buf = self._stages.take(lead + run.raw + ALIGN)
        try:
            self._stage_run(run, buf, lead, stop - start)
        except BaseException:
            self._stages.give(buf)
            raise
        if stop <= start:
            self._stages.give(buf)
            return run.raw
        assert self._writers is not None  # made by _write before any run of a block file
        return self._writers.submit(self._write_stage, sink, buf, stop - start, start, run.raw)

    def _write_stage(self, sink: BlockSink, buf: mmap.mmap, length: int, offset: int, raw: int) -> int:
        view = memoryview(buf)
        try:
            sink.write(view[:length], offset)
        finally:
            view.release()
            self._stages.give(buf)
        return raw

    def _stage_run(self, run: _Run, buf: mmap.mmap, lead: int, length: int) -> None:
        """Decode the run, after the lead bytes of the chunk before it, into buf; zero-pad to length."""
        stage = memoryview(buf)
        if lead:
            prev = run.prev
            if prev is None or prev.raw_len < lead:  # cannot happen: write_file checked the sizes
                raise AssertionError(f"run at {run.out} has no whole chunk before it")
            one = _Run(prev.pack, prev.offset, prev.offset + prev.stored_len, 0, prev.raw_len, [prev], None)
            piece = self._decode(prev, self._blobs(one), self._scratch_buf(prev.raw_len))
            stage[:lead] = piece[prev.raw_len - lead :]
        data = self._blobs(run)  # (also checks that the pack holds the whole run)
        # Raw chunks of a local pack are read straight into the buffer, in the kernel and without the
        # interpreter lock (a copy from the map holds it), and then verified where they will be written.
        key = pack_key(run.pack) if self._view(run.pack) is not None else None
        pos = lead
        for loc in run.locs:
            dest = stage[pos : pos + loc.raw_len]
            if loc.flags == FLAG_RAW and key is not None:
                try:
                    self.store.backend.read_into(key, loc.offset, dest)
                except (NotFound, StorageError) as exc:
                    raise _missing_pack(loc, exc) from exc
                _verify(loc, dest)
            else:
                begin = loc.offset - run.start
                piece = self._decode(loc, data[begin : begin + loc.stored_len], dest)
                if loc.flags == FLAG_RAW:
                    dest[:] = piece
            pos += loc.raw_len
        if length > pos:
            stage[pos:length] = bytes(length - pos)  # zero padding of the last block


def _verify(loc: ChunkLocation, piece: memoryview) -> None:
    if len(piece) != loc.raw_len or blake3.blake3(piece).hexdigest() != loc.digest:
        raise _corrupt(loc)


def _decompress_into(dctx: zstandard.ZstdDecompressor, blob: memoryview, out: memoryview) -> int:
    """Decompress one frame into out (no new buffer); returns the bytes produced, at most len(out)."""
    reader = dctx.stream_reader(blob)
    n = 0
    while n < len(out):
        got = reader.readinto(out[n:])
        if not got:
            break
        n += got
    return n


def _release(mapped: tuple[object, memoryview] | None) -> None:
    if mapped is None:
        return
    m, view = mapped
    view.release()
    try:
        m.close()  # type: ignore[attr-defined]
    except BufferError:
        pass  # slices still alive (in a traceback): the map goes when they do


def _chain(first: _Run, second: _Run, rest: Iterator[_Run]) -> Iterator[_Run]:
    yield first
    yield second
    yield from rest


def _settle(written: int | Future[int]) -> int:
    """The bytes a run wrote, once written (a run of a large file returns the future of its write)."""
    return written.result() if isinstance(written, Future) else written
