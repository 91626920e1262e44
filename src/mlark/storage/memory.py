"""An in-memory backend: the twin of LocalBackend for tests."""

from __future__ import annotations

import threading
from typing import Iterator

from mlark.errors import NotFound, StorageError
from mlark.storage.base import Backend, check_key


class MemoryBackend(Backend):
    def __init__(self) -> None:
        self._files: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._lock:
            self._files[check_key(key)] = bytes(data)

    def put_file(self, key: str, local_path: str) -> None:
        import os

        with open(local_path, "rb") as fh:
            data = fh.read()
        self.put_bytes(key, data)
        os.unlink(local_path)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._files[check_key(key)]
        except KeyError as exc:
            raise NotFound(f"{key} is missing", key=key) from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        data = self.get_bytes(key)[offset : offset + length]
        if len(data) != length:
            raise StorageError(f"{key} is truncated: wanted {length} bytes at offset {offset}", key=key)
        return data

    def size(self, key: str) -> int:
        return len(self.get_bytes(key))

    def exists(self, key: str) -> bool:
        return check_key(key) in self._files

    def list(self, prefix: str = "") -> Iterator[str]:
        with self._lock:
            keys = list(self._files)
        return (k for k in keys if k.startswith(prefix))

    def delete(self, key: str) -> None:
        with self._lock:
            self._files.pop(check_key(key), None)
