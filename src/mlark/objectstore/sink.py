"""Where restored bytes go: positioned writes into one output file, through the page cache or around it.

Small files are written with ``pwritev`` straight from the verified pieces. Large files are written in
whole aligned blocks (:data:`ALIGN`) from page-aligned buffers, which lets the writes bypass the page
cache (``O_DIRECT``) where that is faster. Which is faster depends on the machine, by a factor of
several either way: a fast local disk takes direct writes at device speed, a slow or networked one
does not; and on a virtual machine that hands freed memory back to its host, every fresh page-cache
page costs a fault in the host, so buffered writing of a large file can cost several times more
than the disk write itself. So :class:`BlockSink` measures instead of guessing: it writes the first
:data:`SAMPLE_BYTES` through the page cache, the next as many directly, and keeps direct writes unless
buffered ones were clearly faster (:data:`BUFFERED_MARGIN`: near a tie the predictable way wins, and
direct writes leave no dirty pages to write back and evict no other file's pages). Having chosen
buffered writes, it keeps timing them and turns to direct ones if they slow down below what direct
writes did. A decision for direct writes carries over to the next large file of the same ``get``.

Rates are bytes over busy time: the time during which at least one write of that way was under way,
so two direct writes in flight at once count once, as the device sees them.

Buffered writes go one at a time (in-file writes take the file's lock anyway; waiting threads then
sleep instead of spinning in the kernel) and in pieces of at most :data:`BUFFERED_PIECE`. A write of
several MiB makes the kernel allocate large folios; on a virtual machine that returns free memory
to its host, large free blocks are the ones returned, so each such folio faults in fresh memory,
while the memory of a file just deleted serves small pieces at once. Measured on 1 GiB right after
deleting a 1 GiB file: 4 MiB writes 0.6-1.9 s, 64 KiB writes 0.2-0.28 s (the disk takes 1 GiB
directly in 0.55 s). On other machines the pieces cost a few more system calls, 16 per MiB.

Either way every byte written was verified first, and nothing here changes durability: ``get`` never
promised to fsync what it writes, and still does not.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
import time

#: Offset, length and memory alignment of block writes (a multiple of every common logical block size).
ALIGN = 4096
#: Bytes written each way before choosing between the page cache and direct writes.
SAMPLE_BYTES = 8 << 20
#: Largest single write through the page cache (see the module docstring).
BUFFERED_PIECE = 64 << 10
#: Buffered writes are chosen only when the sample says they are at least this much faster than direct
#: ones: a direct write costs what the device takes, a buffered one varies with the state of memory.
BUFFERED_MARGIN = 2.0
IOV_MAX = 1024

BUFFERED = "buffered"
DIRECT = "direct"
AUTO = "auto"
IO_MODES = (AUTO, BUFFERED, DIRECT)

_SAMPLE_BUFFERED, _SAMPLE_DIRECT, _WATCH_BUFFERED, _FINAL = range(4)
_clock = time.perf_counter


def pwrite_all(fd: int, pieces: list[memoryview], offset: int) -> None:
    """pwritev every piece at offset, resuming after partial writes."""
    views = [p for p in pieces if len(p)]
    while views:
        n = os.pwritev(fd, views[:IOV_MAX], offset)
        offset += n
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]


def _set_direct(fd: int, on: bool) -> bool:
    direct = getattr(os, "O_DIRECT", 0)
    if not direct:
        return False
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | direct) if on else (flags & ~direct))
    except OSError:
        return False
    return True


def direct_works(fd: int) -> bool:
    """Whether fd's file system takes direct writes: one aligned zero block written at offset 0
    (overwritten by the file's first block). Leaves fd buffered."""
    if not _set_direct(fd, True):
        return False
    block = mmap.mmap(-1, ALIGN)
    try:
        os.pwrite(fd, block, 0)
        return True
    except OSError:
        return False
    finally:
        block.close()
        _set_direct(fd, False)


class BlockSink:
    """Aligned block writes into one file of known size; the last block is padded, then cut by close().

    ``mode`` is AUTO (measure, see the module docstring), BUFFERED or DIRECT. Thread-safe: runs of one
    file are written by several threads at once, each at its own offset.

    AUTO goes through these phases: sample buffered writes, then direct ones; choose direct unless
    buffered were clearly faster; having chosen buffered, keep timing them, and switch to direct for
    good as soon as a stretch of buffered writes runs slower than the direct sample did (memory that
    was cheap to get at first need not stay so).
    """

    def __init__(self, fd: int, size: int, mode: str = AUTO) -> None:
        self.fd = fd
        self.size = size
        self._lock = threading.Lock()
        self._serial = threading.Lock()  # one buffered write at a time
        can_direct = mode != BUFFERED and direct_works(fd)
        self._direct = mode == DIRECT and can_direct
        self._phase = _SAMPLE_BUFFERED if mode == AUTO and can_direct else _FINAL
        self._bytes = 0  # bytes of the current way written in this phase
        self._busy = 0.0  # seconds during which a write of the current way was under way
        self._active = {BUFFERED: 0, DIRECT: 0}  # writes under way, by way
        self._last = 0.0
        self._rate_buffered = self._rate_direct = 0.0
        if self._direct:
            _set_direct(fd, True)

    @property
    def chosen(self) -> str | None:
        """The way this file ended up being written, once known (None while still measuring)."""
        if self._phase in (_SAMPLE_BUFFERED, _SAMPLE_DIRECT):
            return None
        return DIRECT if self._direct else BUFFERED

    def write(self, view: memoryview, offset: int) -> None:
        """Write view (page-aligned memory, a whole number of blocks) at offset (a block boundary)."""
        direct = self._direct
        sampling = self._phase != _FINAL
        self._put(view, offset, direct, (DIRECT if direct else BUFFERED) if sampling else None)

    def _put(self, view: memoryview, offset: int, direct: bool, way: str | None = None) -> None:
        """One write; timed as way while sampling (way is None once the choice is final)."""
        if direct:
            self._enter(way)
            try:
                pwrite_all(self.fd, [view], offset)
            finally:
                self._leave(way, len(view))
            return
        with self._serial:
            self._enter(way)
            try:
                for start in range(0, len(view), BUFFERED_PIECE):
                    pwrite_all(self.fd, [view[start : start + BUFFERED_PIECE]], offset + start)
            finally:
                self._leave(way, len(view))

    def _tick(self) -> None:
        """Under the lock: count the time since the last event as busy if a write of the current way was
        under way."""
        now = _clock()
        if self._active[DIRECT if self._direct else BUFFERED]:
            self._busy += now - self._last
        self._last = now

    def _enter(self, way: str | None) -> None:
        if way is None:
            return
        with self._lock:
            self._tick()
            self._active[way] += 1

    def _leave(self, way: str | None, n: int) -> None:
        if way is None:
            return
        with self._lock:
            self._tick()
            self._active[way] -= 1
            if self._phase != _FINAL and way == (DIRECT if self._direct else BUFFERED):
                self._learn(n)  # (a write begun before the way changed counts for neither)

    def _learn(self, n: int) -> None:
        """Under the lock: n more bytes of the current way; at SAMPLE_BYTES, take the rate and move on."""
        self._bytes += n
        if self._bytes < SAMPLE_BYTES:
            return
        rate = self._bytes / max(self._busy, 1e-9)
        self._bytes, self._busy = 0, 0.0
        if self._phase == _SAMPLE_BUFFERED:
            self._rate_buffered = rate
            self._direct = _set_direct(self.fd, True)
            self._phase = _SAMPLE_DIRECT if self._direct else _FINAL
        elif self._phase == _SAMPLE_DIRECT:
            self._rate_direct = rate
            if self._rate_buffered > rate * BUFFERED_MARGIN:
                _set_direct(self.fd, False)
                self._direct = False
                self._phase = _WATCH_BUFFERED
            else:
                self._phase = _FINAL
        elif rate < self._rate_direct:  # _WATCH_BUFFERED: buffered writes got slow
            self._direct = _set_direct(self.fd, True)
            self._phase = _FINAL

    def close(self) -> None:
        """Back to buffered, and cut the padding of the last block."""
        with self._lock:
            self._phase = _FINAL
            if self._direct:
                _set_direct(self.fd, False)
        os.ftruncate(self.fd, self.size)
