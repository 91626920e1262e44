"""The backend port: a flat namespace of keys ('packs/ab/abcd.pack') holding immutable bytes."""

from __future__ import annotations

import mmap
import re
from abc import ABC, abstractmethod
from typing import Iterator

from mlark.errors import InvalidPath

_KEY = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key) or any(part in (".", "..") for part in key.split("/")):
        raise InvalidPath(f"invalid storage key {key!r}", field="key", value=key)
    return key


class Backend(ABC):
    """Immutable named byte files. Writes are atomic: a reader sees all of a file or none of it."""

    #: can list keys under a prefix
    supports_listing: bool = True
    #: put_file moves a local file into place without copying
    supports_move: bool = False

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store data under key, atomically and durably."""

    @abstractmethod
    def put_file(self, key: str, local_path: str) -> None:
        """Store a finished local file under key (moved where possible), atomically and durably."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The whole file; NotFound if absent."""

    @abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """length bytes at offset; StorageError if the file is shorter."""

    @abstractmethod
    def size(self, key: str) -> int:
        ...

    @abstractmethod
    def exists(self, key: str) -> bool:
        ...

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys that start with prefix, in no particular order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove key; absent keys are not an error."""

    def read_into(self, key: str, offset: int, out: memoryview) -> None:
        """Fill out with the bytes at offset; StorageError if the file is shorter.

        Backends with local files read straight into out, so the copy happens in the kernel, without
        Python's interpreter lock held and without a buffer in between."""
        out[:] = self.get_range(key, offset, len(out))

    def map(self, key: str) -> mmap.mmap | None:
        """A read-only memory map of the whole file, or None when this backend has no local file to map.

        Readers use it to hash and copy ranges without reading them into fresh buffers. The file must
        not shrink while it is mapped (packs never change once stored); ``close()`` the map when done.
        """
        return None

    def sync(self, key: str) -> None:
        """Make a file stored with ``put_file`` durable (backends that write durably need do nothing)."""

    def close(self) -> None:
        """Release cached handles."""
