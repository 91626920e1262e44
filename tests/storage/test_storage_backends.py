"""Run the backend conformance suite (mlark.storage.testing.BackendTests) on every backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlark.errors import InvalidPath, NotFound, StorageError
from mlark.storage import Backend, LocalBackend, MemoryBackend
from mlark.storage.testing import BackendTests


class ExtraBackendTests(BackendTests):
    """Behaviour every backend shares beyond the packaged suite."""

    def test_overwrite_is_atomic_replace(self, backend: Backend) -> None:
        backend.put_bytes("k/v", b"first")
        backend.put_bytes("k/v", b"second!")
        assert backend.get_bytes("k/v") == b"second!"
        assert backend.size("k/v") == 7

    def test_empty_file(self, backend: Backend) -> None:
        backend.put_bytes("k/empty", b"")
        assert backend.get_bytes("k/empty") == b""
        assert backend.size("k/empty") == 0
        assert backend.get_range("k/empty", 0, 0) == b""

    def test_range_at_the_end(self, backend: Backend) -> None:
        backend.put_bytes("k/r", b"0123456789")
        assert backend.get_range("k/r", 7, 3) == b"789"
        assert backend.get_range("k/r", 0, 10) == b"0123456789"

    def test_size_of_missing_is_not_found(self, backend: Backend) -> None:
        with pytest.raises(NotFound):
            backend.size("nope/none")

    def test_deleted_key_is_gone(self, backend: Backend) -> None:
        backend.put_bytes("d/x", b"abc")
        assert backend.get_range("d/x", 0, 1) == b"a"  # may open and cache a handle
        backend.delete("d/x")
        assert not backend.exists("d/x")
        with pytest.raises(NotFound):
            backend.get_bytes("d/x")
        with pytest.raises(NotFound):
            backend.get_range("d/x", 0, 1)

    def test_list_everything(self, backend: Backend) -> None:
        backend.put_bytes("a/1", b"x")
        backend.put_bytes("b/c/2", b"x")
        assert sorted(backend.list()) == ["a/1", "b/c/2"]
        assert list(backend.list("zzz/")) == []

    @pytest.mark.parametrize("key", ["a\n", "packs/ab\n", "a/b/", "a b", "é"])
    def test_more_bad_keys_refused(self, backend: Backend, key: str) -> None:
        with pytest.raises(InvalidPath):
            backend.put_bytes(key, b"x")
        with pytest.raises(InvalidPath):
            backend.get_bytes(key)

    def test_binary_content_is_preserved(self, backend: Backend) -> None:
        data = os.urandom(100_000)
        backend.put_bytes("bin/x", data)
        assert backend.get_bytes("bin/x") == data
        assert backend.get_range("bin/x", 12_345, 50_000) == data[12_345:62_345]


    def test_read_into_fills_the_buffer_or_says_the_file_is_short(self, backend: Backend) -> None:
        data = os.urandom(100_000)
        backend.put_bytes("bin/y", data)
        out = bytearray(50_000)
        backend.read_into("bin/y", 12_345, memoryview(out))
        assert bytes(out) == data[12_345:62_345]
        with pytest.raises(StorageError, match="truncated"):
            backend.read_into("bin/y", 60_000, memoryview(bytearray(50_000)))
        with pytest.raises(NotFound):
            backend.read_into("bin/none", 0, memoryview(bytearray(1)))


class TestLocalBackend(ExtraBackendTests):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        b = LocalBackend(str(tmp_path / "store"), tmp_dir=str(tmp_path / "tmp"))
        yield b
        b.close()

    def test_files_land_where_the_key_says_and_no_temp_is_left(self, backend: LocalBackend, tmp_path: Path) -> None:
        backend.put_bytes("packs/ab/abcd.pack", b"data")
        assert (tmp_path / "store" / "packs" / "ab" / "abcd.pack").read_bytes() == b"data"
        assert not (tmp_path / "tmp").exists() or os.listdir(tmp_path / "tmp") == []

    def test_put_file_moves_the_file(self, backend: LocalBackend, tmp_path: Path) -> None:
        src = tmp_path / "src.bin"
        src.write_bytes(b"payload")
        backend.put_file("f/moved", str(src))
        assert not src.exists()
        assert backend.get_bytes("f/moved") == b"payload"

    def test_a_second_instance_sees_the_same_files(self, backend: LocalBackend, tmp_path: Path) -> None:
        backend.put_bytes("s/x", b"shared")
        other = LocalBackend(str(tmp_path / "store"))
        try:
            assert other.get_bytes("s/x") == b"shared"
            assert list(other.list("s/")) == ["s/x"]
        finally:
            other.close()


class TestMemoryBackend(ExtraBackendTests):
    @pytest.fixture
    def backend(self) -> Backend:
        return MemoryBackend()

    def test_put_file_consumes_the_file(self, backend: MemoryBackend, tmp_path: Path) -> None:
        src = tmp_path / "src.bin"
        src.write_bytes(b"payload")
        backend.put_file("f/moved", str(src))
        assert not src.exists()
        assert backend.get_bytes("f/moved") == b"payload"
