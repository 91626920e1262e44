"""A folder on the local file system: temp file, fsync, rename, fsync folder."""

from __future__ import annotations

import mmap
import os
import threading
from collections import OrderedDict
from typing import Iterator

from mlark.errors import NotFound, StorageError
from mlark.storage.base import Backend, check_key

_MAX_OPEN = 64


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBackend(Backend):
    supports_move = True

    def __init__(self, root: str, tmp_dir: str | None = None) -> None:
        self.root = os.path.abspath(root)
        self.tmp_dir = tmp_dir or os.path.join(self.root, ".tmp")
        self._handles: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *check_key(key).split("/"))

    def _place(self, key: str, tmp: str) -> None:
        dest = self._path(key)
        folder = os.path.dirname(dest)
        try:
            created = not os.path.isdir(folder)
            os.makedirs(folder, exist_ok=True)
            os.replace(tmp, dest)
            fsync_dir(folder)
            if created:
                fsync_dir(os.path.dirname(folder))
        except OSError as exc:
            raise StorageError(f"cannot store {key} under {self.root}: {exc.strerror}", key=key) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        os.makedirs(self.tmp_dir, exist_ok=True)
        tmp = os.path.join(self.tmp_dir, f"put-{os.getpid()}-{threading.get_ident()}-{os.urandom(6).hex()}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            _unlink_quiet(tmp)
            raise StorageError(f"cannot write {key}: {exc.strerror}", key=key) from exc
        self._place(key, tmp)

    def put_file(self, key: str, local_path: str) -> None:
        self._place(key, local_path)

    def sync(self, key: str) -> None:
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StorageError(f"cannot make {key} durable: {exc.strerror}", key=key) from exc

    def _fd(self, key: str) -> int:
        with self._lock:
            fd = self._handles.get(key)
            if fd is not None:
                self._handles.move_to_end(key)
                return fd
            try:
                fd = os.open(self._path(key), os.O_RDONLY)
            except FileNotFoundError as exc:
                raise NotFound(f"{key} is missing from {self.root}", key=key) from exc
            except OSError as exc:
                raise StorageError(f"cannot open {key}: {exc.strerror}", key=key) from exc
            self._handles[key] = fd
            while len(self._handles) > _MAX_OPEN:
                _, old = self._handles.popitem(last=False)
                os.close(old)
            return fd

    def get_bytes(self, key: str) -> bytes:
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except FileNotFoundError as exc:
            raise NotFound(f"{key} is missing from {self.root}", key=key) from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror}", key=key) from exc

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        fd = self._fd(key)
        try:
            data = os.pread(fd, length, offset)
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror}", key=key) from exc
        if len(data) != length:
            raise StorageError(
                f"{key} is truncated: wanted {length} bytes at offset {offset}, got {len(data)}", key=key
            )
        return data

    def read_into(self, key: str, offset: int, out: memoryview) -> None:
        fd = self._fd(key)
        done = 0
        while done < len(out):
            try:
                n = os.preadv(fd, [out[done:]], offset + done)
            except OSError as exc:
                raise StorageError(f"cannot read {key}: {exc.strerror}", key=key) from exc
            if n == 0:
                raise StorageError(
                    f"{key} is truncated: wanted {len(out)} bytes at offset {offset}, got {done}", key=key
                )
            done += n

    def map(self, key: str) -> mmap.mmap | None:
        fd = self._fd(key)
        try:
            if os.fstat(fd).st_size == 0:
                return None  # nothing to map; get_range reports what is wrong
            return mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        except (OSError, ValueError):
            return None  # a file system that cannot map: readers fall back to get_range

    def size(self, key: str) -> int:
        try:
            return os.stat(self._path(key)).st_size
        except FileNotFoundError as exc:
            raise NotFound(f"{key} is missing from {self.root}", key=key) from exc

    def exists(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        for folder, _dirs, files in os.walk(self.root):
            rel = os.path.relpath(folder, self.root)
            for name in files:
                key = name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}"
                if key.startswith(prefix):
                    yield key

    def delete(self, key: str) -> None:
        with self._lock:
            fd = self._handles.pop(key, None)
            if fd is not None:
                os.close(fd)
        _unlink_quiet(self._path(key))

    def close(self) -> None:
        with self._lock:
            while self._handles:
                _, fd = self._handles.popitem()
                os.close(fd)


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
