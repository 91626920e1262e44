"""Pack files: blobs followed by a footer that lists them (docs/format.md, section 4)."""

from __future__ import annotations

import os
import struct
import threading
from dataclasses import dataclass
from typing import BinaryIO, Callable

import blake3
import zstandard

from mlark.errors import IntegrityError
from mlark.objectstore.index import FLAG_RAW, FLAG_ZSTD, ChunkLocation, PackInfo

HEADER = b"MLKPACK1"
END_MAGIC = b"MLKPEND1"
_ENTRY = struct.Struct("<32sBQII")
_TRAILER = struct.Struct("<I32s8s")
ENTRY_SIZE = _ENTRY.size  # 49
TRAILER_SIZE = _TRAILER.size  # 44
COMPRESS_MIN_SAVING = 0.03
WRITE_BUFFER = 1 << 20
SMALL_BLOB = 16 << 10
REREAD_BUFFER = 4 << 20


def _load_sync_file_range() -> Callable[[int], None] | None:
    try:
        import ctypes

        # The symbols of the running process, libc's among them. (ctypes.util.find_library runs
        # `ldconfig -p` in a child process: 30 ms on every add.)
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    write = 2  # SYNC_FILE_RANGE_WRITE: start writeback of dirty pages, do not wait

    def start(fd: int) -> None:
        func(fd, 0, 0, write)

    return start


_SYNC_FILE_RANGE: list[Callable[[int], None] | None] = []  # loaded on first use


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing a file's dirty pages now, without waiting (Linux)."""
    if not _SYNC_FILE_RANGE:
        _SYNC_FILE_RANGE.append(_load_sync_file_range())
    start = _SYNC_FILE_RANGE[0]
    if start is not None:
        start(fd)


def pack_key(digest: str) -> str:
    return f"packs/{digest[:2]}/{digest}.pack"


@dataclass
class _Pending:
    digest: str
    flags: int
    offset: int
    stored_len: int
    raw_len: int


class PackWriter:
    """Appends blobs to a temporary file; finish() seals it and returns its PackInfo."""

    def __init__(self, tmp_dir: str, level: int = 1) -> None:
        os.makedirs(tmp_dir, exist_ok=True)
        self.path = os.path.join(tmp_dir, f"pack-{os.getpid()}-{os.urandom(8).hex()}.tmp")
        self._fh: BinaryIO = open(self.path, "wb")
        self._hash = blake3.blake3()
        self._zstd = zstandard.ZstdCompressor(level=level)
        self._entries: list[_Pending] = []
        self._footer: list[bytes] = []  # one encoded footer entry per blob
        self._offset = 0
        self._buffered: list[bytes | memoryview] = []  # blobs not yet handed to the file and the hash
        self._buffered_bytes = 0
        self._write(HEADER)
        self.raw_bytes = 0

    def _write(self, data: bytes | memoryview) -> None:
        # Small blobs are gathered and written (and hashed) together: one call per blob costs more than
        # the blob itself when a folder of small files is added. Large ones go as they are (no copy).
        self._offset += len(data)
        if len(data) >= SMALL_BLOB:
            self._flush()
            self._fh.write(data)
            self._hash.update(data)
            return
        self._buffered.append(data)
        self._buffered_bytes += len(data)
        if self._buffered_bytes >= WRITE_BUFFER:
            self._flush()

    def _flush(self) -> None:
        if not self._buffered:
            return
        data = self._buffered[0] if len(self._buffered) == 1 else b"".join(self._buffered)
        self._fh.write(data)
        self._hash.update(data)
        self._buffered = []
        self._buffered_bytes = 0

    @property
    def size(self) -> int:
        return self._offset

    def __len__(self) -> int:
        return len(self._entries)

    def compress_many(self, raws: list[bytes]) -> list[bytes | memoryview]:
        """zstd frames of these chunks, for add(): one call for all of them where the zstd binding has
        it (per call, compressing a small chunk costs several times more than the chunk itself)."""
        multi = getattr(self._zstd, "multi_compress_to_buffer", None)
        if multi is None or len(raws) < 2:
            return [self._zstd.compress(raw) for raw in raws]
        frames = multi(raws, threads=0)
        return [memoryview(frames[i]) for i in range(len(frames))]

    def add(self, digest: str, raw: bytes | memoryview, compressed: bytes | memoryview | None = None) -> int:
        """Append one chunk (compressed: its zstd frame, if already made); returns the bytes stored."""
        if compressed is None:
            compressed = self._zstd.compress(raw)
        if len(compressed) <= len(raw) * (1 - COMPRESS_MIN_SAVING):
            flags, stored = FLAG_ZSTD, compressed
        else:
            flags, stored = FLAG_RAW, raw
        self._entries.append(_Pending(digest, flags, self._offset, len(stored), len(raw)))
        # The footer entry now, while the chunks are coming (this thread works beside the chunker),
        # rather than all of them at the seal, when everything else waits.
        self._footer.append(_ENTRY.pack(bytes.fromhex(digest), flags, self._offset, len(stored), len(raw)))
        self._write(stored)
        self.raw_bytes += len(raw)
        return len(stored)

    def finish(self, *, sync: bool = True) -> PackInfo:
        """Write footer and trailer, make it durable, re-read and re-hash. Returns the sealed pack's info.

        With ``sync=False`` the data is only handed to the kernel for writeback (it starts at once, in
        the background); the caller must make the pack durable (``Backend.sync``) before anything
        points at it.
        """
        footer = b"".join(self._footer)
        self._write(footer)
        self._write(_TRAILER.pack(len(self._entries), blake3.blake3(footer).digest(), END_MAGIC))
        self._flush()
        self._fh.flush()
        if sync:
            os.fsync(self._fh.fileno())
        else:
            start_writeback(self._fh.fileno())
        self._fh.close()
        digest = self._hash.hexdigest()
        reread = blake3.blake3(max_threads=blake3.blake3.AUTO)
        buf = bytearray(REREAD_BUFFER)  # one buffer, reused: a fresh one per read costs page faults
        view = memoryview(buf)
        with open(self.path, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                reread.update(view[:n])
        if reread.hexdigest() != digest:
            raise IntegrityError(
                f"pack {self.path} reads back differently from what was written: suspect the disk or file system",
                pack=self.path,
            )
        entries = tuple(
            ChunkLocation(e.digest, digest, e.offset, e.stored_len, e.raw_len, e.flags) for e in self._entries
        )
        return PackInfo(digest=digest, size=self._offset, entries=entries)

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def parse_footer(pack_digest: str, tail: bytes, read_footer: Callable[[int], bytes]) -> PackInfo:
    """Parse a pack's trailer (the last TRAILER_SIZE bytes) and footer (fetched through read_footer)."""
    if len(tail) != TRAILER_SIZE:
        raise IntegrityError(f"pack {pack_digest} is too short to hold a trailer", pack=pack_digest)
    count, footer_digest, magic = _TRAILER.unpack(tail)
    if magic != END_MAGIC:
        raise IntegrityError(f"pack {pack_digest} has no valid trailer (truncated or overwritten)", pack=pack_digest)
    footer = read_footer(count * ENTRY_SIZE)
    if blake3.blake3(footer).digest() != footer_digest:
        raise IntegrityError(f"pack {pack_digest} has a damaged footer", pack=pack_digest)
    entries = []
    for i in range(count):
        raw_digest, flags, offset, stored_len, raw_len = _ENTRY.unpack_from(footer, i * ENTRY_SIZE)
        if flags not in (FLAG_RAW, FLAG_ZSTD):
            raise IntegrityError(f"pack {pack_digest} entry {i} has unknown flags {flags}", pack=pack_digest)
        entries.append(ChunkLocation(raw_digest.hex(), pack_digest, offset, stored_len, raw_len, flags))
    return PackInfo(pack_digest, 0, tuple(entries))


_local = threading.local()


def decode_blob(loc: ChunkLocation, stored: bytes) -> bytes:
    if loc.flags == FLAG_RAW:
        return stored
    try:
        dctx = getattr(_local, "dctx", None)
        if dctx is None:
            dctx = _local.dctx = zstandard.ZstdDecompressor()
        return dctx.decompress(stored, max_output_size=loc.raw_len)
    except zstandard.ZstdError as exc:
        raise IntegrityError(
            f"chunk {loc.digest} in pack {loc.pack} does not decompress: {exc}", chunk=loc.digest, pack=loc.pack
        ) from exc
