"""Cutting files into chunks (docs/format.md, section 3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator

from pyfastcdc.cy import FastCDC


@dataclass(frozen=True, slots=True)
class ChunkParams:
    min: int = 16 * 1024
    avg: int = 48 * 1024
    max: int = 256 * 1024
    small_file: int = 128 * 1024

    def to_json(self) -> dict[str, object]:
        return {"algorithm": "fastcdc2020", "min": self.min, "avg": self.avg, "max": self.max,
                "small_file": self.small_file}

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> "ChunkParams":
        if doc.get("algorithm") != "fastcdc2020":
            raise ValueError(f"unknown chunking algorithm {doc.get('algorithm')!r}")
        return cls(int(doc["min"]), int(doc["avg"]), int(doc["max"]), int(doc["small_file"]))  # type: ignore[call-overload]


class Chunker:
    def __init__(self, params: ChunkParams) -> None:
        self.params = params
        self._cdc = FastCDC(params.avg, min_size=params.min, max_size=params.max)

    def chunks(self, fh: BinaryIO, size_hint: int) -> Iterator[memoryview | bytes]:
        """Yield the chunks of an unbuffered binary file. A yielded view is valid until the next one."""
        if size_hint <= self.params.small_file:
            # Read what the file's size says (+1 to see a file that grew): a small read of a big
            # buffer would allocate and shrink it for every small file.
            data = fh.read(size_hint + 1)
            if len(data) > size_hint:
                data += fh.read(self.params.small_file + 1 - len(data))
            if len(data) <= self.params.small_file:
                if data:
                    yield data
                return
            # The file grew since it was measured: cut it like a large file.
            yield from self._cut_with_prefix(data, fh)
            return
        for chunk in self._cdc.cut_stream(fh):
            yield chunk.data

    def chunks_of_bytes(self, data: bytes) -> Iterator[memoryview | bytes]:
        if len(data) <= self.params.small_file:
            if data:
                yield data
            return
        for chunk in self._cdc.cut_buf(data):
            yield chunk.data

    def _cut_with_prefix(self, prefix: bytes, fh: BinaryIO) -> Iterator[memoryview]:
        class _Joined:
            def __init__(self) -> None:
                self.pending = memoryview(prefix)

            def readinto(self, buf: memoryview) -> int:
                if self.pending:
                    n = min(len(buf), len(self.pending))
                    buf[:n] = self.pending[:n]
                    self.pending = self.pending[n:]
                    return n
                return fh.readinto(buf)  # type: ignore[attr-defined, no-any-return]

        for chunk in self._cdc.cut_stream(_Joined()):
            yield chunk.data
