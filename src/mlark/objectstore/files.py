"""Whole files in and out of the object store, streamed chunk by chunk."""

from __future__ import annotations

import os
from typing import BinaryIO, Callable, Iterator

import blake3

from mlark.core.tree import ChunkRef
from mlark.errors import IntegrityError
from mlark.objectstore.store import ChunkWriter, ObjectStore

OnBytes = Callable[[int], None]
IOV_MAX = 1024


def ingest_stream(
    store: ObjectStore, writer: ChunkWriter, fh: BinaryIO, size_hint: int, on_bytes: OnBytes | None = None
) -> tuple[str, int, tuple[ChunkRef, ...]]:
    """Chunk, hash and store a stream. Returns (file digest, size, chunks)."""
    whole = blake3.blake3()
    refs: list[ChunkRef] = []
    size = 0
    for view in store.chunker().chunks(fh, size_hint):
        data = bytes(view)
        digest = blake3.blake3(data).hexdigest()
        whole.update(data)
        writer.put(digest, data)
        refs.append(ChunkRef(digest, len(data)))
        size += len(data)
        if on_bytes is not None:
            on_bytes(len(data))
    if len(refs) == 1:
        return refs[0].digest, size, tuple(refs)  # one chunk: the file's digest is the chunk's
    return whole.hexdigest(), size, tuple(refs)


def ingest_path(
    store: ObjectStore, writer: ChunkWriter, path: str, on_bytes: OnBytes | None = None
) -> tuple[str, int, tuple[ChunkRef, ...]]:
    with open(path, "rb", buffering=0) as fh:
        size_hint = os.fstat(fh.fileno()).st_size
        return ingest_stream(store, writer, fh, size_hint, on_bytes)  # type: ignore[arg-type]


EMPTY_DIGEST = blake3.blake3(b"").hexdigest()
_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def ingest_small(
    store: ObjectStore, writer: ChunkWriter, path: str, size: int
) -> tuple[str, int, tuple[ChunkRef, ...]] | None:
    """ingest_path for a file whose size (from a stat) is at most the small-file limit: one chunk.

    Three system calls (open, one read of size+1 bytes, close) and no file object: folders of many small
    files are dominated by per-file overhead. Returns None when the file is larger than that size says
    (it grew): the caller ingests it as a stream.
    """
    if size > store.params.small_file:
        return None
    fd = os.open(path, _O_READ)
    try:
        data = os.read(fd, size + 1)
    finally:
        os.close(fd)
    if len(data) > size:
        return None
    if not data:
        return EMPTY_DIGEST, 0, ()
    digest = blake3.blake3(data).hexdigest()
    writer.put(digest, data)
    return digest, len(data), (ChunkRef(digest, len(data)),)


def iter_file_blocks(store: ObjectStore, chunks: tuple[ChunkRef, ...], path: str) -> Iterator[list[bytes]]:
    """Like iter_file, in blocks of chunks that were read together (for writev)."""
    position = 0
    for block in store.read_blocks([c.digest for c in chunks]):
        for data in block:
            ref = chunks[position]
            position += 1
            if len(data) != ref.size:
                raise IntegrityError(
                    f"chunk {ref.digest} of {path!r} has the wrong length", chunk=ref.digest, path=path
                )
        yield block


def write_all(fd: int, block: list[bytes]) -> int:
    """writev the whole block, resuming after partial writes. Returns the bytes written."""
    views = [memoryview(b) for b in block if len(b)]
    written = 0
    while views:
        n = os.writev(fd, views[:IOV_MAX])
        written += n
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]
    return written


def iter_file(store: ObjectStore, chunks: tuple[ChunkRef, ...], digest: str, path: str) -> Iterator[bytes]:
    """The file's bytes, chunk by chunk, each chunk verified against its digest.

    The chunk list comes from a tree whose own digest was verified, so verified chunks in that order
    are the file; hashing the whole file again would only repeat the work.
    """
    for ref, data in zip(chunks, store.read_chunks([c.digest for c in chunks])):
        if len(data) != ref.size:
            raise IntegrityError(f"chunk {ref.digest} of {path!r} has the wrong length", chunk=ref.digest, path=path)
        yield data


def store_bytes(store: ObjectStore, writer: ChunkWriter, data: bytes) -> tuple[str, tuple[ChunkRef, ...]]:
    """Store an in-memory byte string (a tree, a small document). Returns (digest, chunks)."""
    refs = []
    for view in store.chunker().chunks_of_bytes(data):
        part = bytes(view)
        digest = blake3.blake3(part).hexdigest()
        writer.put(digest, part)
        refs.append(ChunkRef(digest, len(part)))
    return blake3.blake3(data).hexdigest(), tuple(refs)
