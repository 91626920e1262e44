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
        can_direct = mode != BUFFERED and direct_works(fd)
        self._direct = mode == DIRECT and can_direct
        self._phase = _SAMPLE_BUFFERED if mode == AUTO and can_direct else _FINAL
        self._seen = {BUFFERED: [0, 0.0], DIRECT: [0, 0.0]}  # bytes, seconds in pwrite, this phase
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
        if self._phase == _FINAL:
            pwrite_all(self.fd, [view], offset)
            return
        way = DIRECT if self._direct else BUFFERED
        start = _clock()
        pwrite_all(self.fd, [view], offset)
        self._learn(way, len(view), _clock() - start)

    def _learn(self, way: str, n: int, seconds: float) -> None:
        with self._lock:
            if self._phase == _FINAL or way != (DIRECT if self._direct else BUFFERED):
                return  # written while the way changed: counts for neither
            seen = self._seen[way]
            seen[0] += n
            seen[1] += seconds
            if seen[0] < SAMPLE_BYTES:
                return
            rate = seen[0] / max(seen[1], 1e-9)
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
            seen[0], seen[1] = 0, 0.0

    def close(self) -> None:
        """Back to buffered, and cut the padding of the last block."""
        with self._lock:
            self._phase = _FINAL
            if self._direct:
                _set_direct(self.fd, False)
        os.ftruncate(self.fd, self.size)
