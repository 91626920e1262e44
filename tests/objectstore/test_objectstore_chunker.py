"""Chunking (docs/format.md section 3): small files whole, large files by FastCDC within bounds."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from mlark.objectstore.chunker import Chunker, ChunkParams

PARAMS = ChunkParams()


def _cut_bytes(data: bytes) -> list[bytes]:
    return [bytes(c) for c in Chunker(PARAMS).chunks_of_bytes(data)]


def _cut_file(path: Path, size_hint: int | None = None) -> list[bytes]:
    with open(path, "rb", buffering=0) as fh:
        hint = path.stat().st_size if size_hint is None else size_hint
        return [bytes(c) for c in Chunker(PARAMS).chunks(fh, hint)]  # type: ignore[arg-type]


def test_parameters_match_the_format() -> None:
    assert PARAMS.to_json() == {"algorithm": "fastcdc2020", "min": 16384, "avg": 49152, "max": 262144,
                                "small_file": 131072}
    assert ChunkParams.from_json(PARAMS.to_json()) == PARAMS
    with pytest.raises(ValueError, match="unknown chunking algorithm"):
        ChunkParams.from_json({**PARAMS.to_json(), "algorithm": "rabin"})


def test_empty_file_has_no_chunk(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert _cut_file(path) == []
    assert _cut_bytes(b"") == []


@pytest.mark.parametrize("size", [1, 100, 16_383, 65_536, PARAMS.small_file])
def test_small_files_are_one_chunk(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "small"
    path.write_bytes(data)
    assert _cut_file(path) == [data]
    assert _cut_bytes(data) == [data]


@pytest.mark.parametrize("size", [PARAMS.small_file + 1, 1_000_000, 3_000_000])
def test_large_files_are_cut_within_bounds(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "large"
    path.write_bytes(data)
    chunks = _cut_file(path)
    assert b"".join(chunks) == data
    assert all(0 < len(c) <= PARAMS.max for c in chunks)
    assert all(PARAMS.min <= len(c) for c in chunks[:-1])
    if size >= 1_000_000:
        assert len(chunks) > 3
        mean = size / len(chunks)
        assert 24_000 < mean < 160_000  # about 64 KiB on average


def test_zeros_cut_at_the_maximum() -> None:
    data = bytes(1_000_000)
    chunks = _cut_bytes(data)
    assert [len(c) for c in chunks[:-1]] == [PARAMS.max] * (len(chunks) - 1)
    assert b"".join(chunks) == data


def test_equal_content_cuts_equally_from_file_stream_and_bytes(tmp_path: Path) -> None:
    data = random.Random(9).randbytes(900_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert _cut_file(path) == _cut_bytes(data)


def test_a_file_that_grew_after_it_was_measured_is_cut_like_a_large_file(tmp_path: Path) -> None:
    data = random.Random(10).randbytes(700_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    # size_hint says "small": the chunker must notice and still cut the same way.
    assert _cut_file(path, size_hint=10) == _cut_bytes(data)


def test_an_edit_changes_only_nearby_chunks() -> None:
    rng = random.Random(12)
    data = rng.randbytes(2_000_000)
    edited = data[:1_000_000] + b"INSERTED" + data[1_000_000:]
    before = set(_cut_bytes(data))
    after = _cut_bytes(edited)
    new = [c for c in after if c not in before]
    assert sum(len(c) for c in new) < 600_000
    assert len(new) <= 4


def test_chunks_from_a_bytesio_stream() -> None:
    data = random.Random(13).randbytes(400_000)
    chunks = [bytes(c) for c in Chunker(PARAMS).chunks(io.BytesIO(data), len(data))]
    assert chunks == _cut_bytes(data)
