"""A conformance suite every backend must pass: subclass BackendTests and provide a `backend` fixture."""

from __future__ import annotations

import os
import tempfile

import pytest

from mlark.errors import InvalidPath, NotFound, StorageError
from mlark.storage.base import Backend


class BackendTests:
    def test_put_get_roundtrip(self, backend: Backend) -> None:
        backend.put_bytes("packs/ab/abc.pack", b"hello world")
        assert backend.get_bytes("packs/ab/abc.pack") == b"hello world"
        assert backend.size("packs/ab/abc.pack") == 11
        assert backend.exists("packs/ab/abc.pack")

    def test_get_range(self, backend: Backend) -> None:
        backend.put_bytes("x/y", bytes(range(256)))
        assert backend.get_range("x/y", 10, 5) == bytes([10, 11, 12, 13, 14])

    def test_short_range_is_an_error(self, backend: Backend) -> None:
        backend.put_bytes("x/short", b"abc")
        with pytest.raises(StorageError, match="truncated"):
            backend.get_range("x/short", 1, 10)

    def test_missing_is_not_found(self, backend: Backend) -> None:
        with pytest.raises(NotFound):
            backend.get_bytes("nope/nothing")
        assert not backend.exists("nope/nothing")

    def test_list_and_delete(self, backend: Backend) -> None:
        for key in ("packs/aa/1", "packs/bb/2", "other/3"):
            backend.put_bytes(key, b"x")
        assert sorted(backend.list("packs/")) == ["packs/aa/1", "packs/bb/2"]
        backend.delete("packs/aa/1")
        backend.delete("packs/aa/1")  # absent: fine
        assert sorted(backend.list("packs/")) == ["packs/bb/2"]

    def test_put_file(self, backend: Backend) -> None:
        fd, path = tempfile.mkstemp()
        os.write(fd, b"file contents")
        os.close(fd)
        backend.put_file("f/g", path)
        assert backend.get_bytes("f/g") == b"file contents"

    @pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/./b", "a\\b", "a\x00b", ""])
    def test_bad_keys_refused(self, backend: Backend, key: str) -> None:
        with pytest.raises(InvalidPath):
            backend.put_bytes(key, b"x")
