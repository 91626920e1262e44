"""Pack files (docs/format.md section 4): write, parse, compress where it pays, detect damage."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import blake3
import pytest
import zstandard

from mlark.errors import IntegrityError
from mlark.objectstore.index import FLAG_RAW, FLAG_ZSTD, PackInfo
from mlark.objectstore.pack import (
    COMPRESS_MIN_SAVING,
    END_MAGIC,
    ENTRY_SIZE,
    HEADER,
    TRAILER_SIZE,
    PackWriter,
    decode_blob,
    pack_key,
    parse_footer,
)


def _digest(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def _write_pack(tmp: Path, chunks: list[bytes]) -> tuple[PackInfo, bytes]:
    writer = PackWriter(str(tmp))
    for c in chunks:
        writer.add(_digest(c), c)
    info = writer.finish()
    data = Path(writer.path).read_bytes()
    return info, data


def _parse(digest: str, data: bytes) -> PackInfo:
    return parse_footer(digest, data[-TRAILER_SIZE:], lambda n: data[len(data) - TRAILER_SIZE - n : len(data) - TRAILER_SIZE])


def _chunks() -> list[bytes]:
    rng = random.Random(3)
    return [rng.randbytes(5000), b"z" * 20000, b"", rng.randbytes(1), b"csv,line\n" * 3000]


def test_layout_matches_the_spec(tmp_path: Path) -> None:
    chunks = _chunks()
    info, data = _write_pack(tmp_path, chunks)
    assert data[:8] == HEADER == b"MLKPACK1"
    assert data[-8:] == END_MAGIC == b"MLKPEND1"
    assert ENTRY_SIZE == 49 and TRAILER_SIZE == 44
    count, footer_digest, _ = struct.unpack("<I32s8s", data[-TRAILER_SIZE:])
    assert count == len(chunks)
    footer = data[-TRAILER_SIZE - count * ENTRY_SIZE : -TRAILER_SIZE]
    assert blake3.blake3(footer).digest() == footer_digest
    # The pack is named by the digest of the whole file.
    assert info.digest == _digest(data)
    assert info.size == len(data)
    assert pack_key(info.digest) == f"packs/{info.digest[:2]}/{info.digest}.pack"
    # The first blob starts right after the header, and blobs follow each other.
    assert info.entries[0].offset == 8
    for a, b in zip(info.entries, info.entries[1:]):
        assert b.offset == a.offset + a.stored_len
    # Footer entries: digest[32] flags:u8 offset:u64 stored_len:u32 raw_len:u32, little-endian.
    first = struct.unpack_from("<32sBQII", footer, 0)
    assert first == (bytes.fromhex(info.entries[0].digest), info.entries[0].flags, 8,
                     info.entries[0].stored_len, info.entries[0].raw_len)


def test_write_then_parse_round_trip(tmp_path: Path) -> None:
    chunks = _chunks()
    info, data = _write_pack(tmp_path, chunks)
    parsed = _parse(info.digest, data)
    assert parsed.entries == info.entries
    for loc, raw in zip(parsed.entries, chunks):
        assert loc.digest == _digest(raw)
        assert loc.raw_len == len(raw)
        assert loc.pack == info.digest
        assert decode_blob(loc, data[loc.offset : loc.offset + loc.stored_len]) == raw


def test_empty_pack_round_trips(tmp_path: Path) -> None:
    info, data = _write_pack(tmp_path, [])
    assert len(data) == 8 + TRAILER_SIZE
    assert _parse(info.digest, data).entries == ()


def test_compression_only_where_it_pays(tmp_path: Path) -> None:
    rng = random.Random(11)
    noise = rng.randbytes(50_000)
    text = b"the same line again and again\n" * 2000
    info, _ = _write_pack(tmp_path, [noise, text])
    by_digest = {e.digest: e for e in info.entries}
    assert by_digest[_digest(noise)].flags == FLAG_RAW
    assert by_digest[_digest(noise)].stored_len == len(noise)
    assert by_digest[_digest(text)].flags == FLAG_ZSTD
    assert by_digest[_digest(text)].stored_len < len(text) // 10


def _mix(saving_target: float) -> bytes:
    """Random bytes followed by zeros, sized so zstd saves about saving_target of the length."""
    rng = random.Random(5)
    size = 40_000
    zeros = int(size * saving_target)
    return rng.randbytes(size - zeros) + bytes(zeros)


def test_the_three_percent_threshold(tmp_path: Path) -> None:
    """A blob that compresses by a little less than 3% is stored raw; a little more, compressed."""
    level = 3
    cctx = zstandard.ZstdCompressor(level=level)
    below = above = None
    for permille in range(0, 80):
        raw = _mix(permille / 1000)
        saving = 1 - len(cctx.compress(raw)) / len(raw)
        if 0.005 < saving < COMPRESS_MIN_SAVING - 0.003 and below is None:
            below = raw
        if COMPRESS_MIN_SAVING + 0.003 < saving < 0.06 and above is None:
            above = raw
    assert below is not None and above is not None, "could not build blobs around the threshold"
    writer = PackWriter(str(tmp_path), level=level)
    stored_below = writer.add(_digest(below), below)
    stored_above = writer.add(_digest(above), above)
    info = writer.finish()
    flags = {e.digest: e.flags for e in info.entries}
    assert flags[_digest(below)] == FLAG_RAW and stored_below == len(below)
    assert flags[_digest(above)] == FLAG_ZSTD and stored_above < len(above) * (1 - COMPRESS_MIN_SAVING)


def test_finish_leaves_the_written_file(tmp_path: Path) -> None:
    writer = PackWriter(str(tmp_path))
    writer.add(_digest(b"x"), b"x")
    assert len(writer) == 1
    info = writer.finish()
    assert os.path.getsize(writer.path) == info.size


def test_abort_removes_the_temporary_file(tmp_path: Path) -> None:
    writer = PackWriter(str(tmp_path))
    writer.add(_digest(b"x"), b"x")
    writer.abort()
    assert not os.path.exists(writer.path)
    writer.abort()  # twice is fine


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def test_damaged_footer_is_detected(tmp_path: Path) -> None:
    info, data = _write_pack(tmp_path, _chunks())
    footer_start = len(data) - TRAILER_SIZE - len(info.entries) * ENTRY_SIZE
    for index in (footer_start, footer_start + 40, len(data) - TRAILER_SIZE - 1):
        with pytest.raises(IntegrityError, match="damaged footer") as err:
            _parse(info.digest, _flip(data, index))
        assert err.value.fields["pack"] == info.digest
        assert info.digest in str(err.value)


def test_damaged_footer_digest_is_detected(tmp_path: Path) -> None:
    info, data = _write_pack(tmp_path, _chunks())
    with pytest.raises(IntegrityError, match="damaged footer"):
        _parse(info.digest, _flip(data, len(data) - 8 - 1))  # last byte of footer_digest


def test_damaged_trailer_magic_is_detected(tmp_path: Path) -> None:
    info, data = _write_pack(tmp_path, _chunks())
    with pytest.raises(IntegrityError, match="no valid trailer"):
        _parse(info.digest, _flip(data, len(data) - 1))


def test_truncated_pack_is_detected(tmp_path: Path) -> None:
    info, data = _write_pack(tmp_path, _chunks())
    with pytest.raises(IntegrityError):
        _parse(info.digest, data[:-1])
    with pytest.raises(IntegrityError, match="too short"):
        parse_footer(info.digest, data[-10:], lambda n: b"")


def test_unknown_flags_are_refused(tmp_path: Path) -> None:
    info, data = _write_pack(tmp_path, [b"abc"])
    footer_start = len(data) - TRAILER_SIZE - ENTRY_SIZE
    footer = bytearray(data[footer_start : len(data) - TRAILER_SIZE])
    footer[32] = 2  # reserved flags value
    trailer = struct.pack("<I32s8s", 1, blake3.blake3(bytes(footer)).digest(), END_MAGIC)
    forged = data[:footer_start] + bytes(footer) + trailer
    with pytest.raises(IntegrityError, match="unknown flags 2"):
        _parse(info.digest, forged)


def test_corrupt_zstd_blob_names_chunk_and_pack(tmp_path: Path) -> None:
    text = b"compressible " * 5000
    info, data = _write_pack(tmp_path, [text])
    loc = info.entries[0]
    assert loc.flags == FLAG_ZSTD
    damaged = bytes(b ^ 0xFF for b in data[loc.offset : loc.offset + loc.stored_len])
    with pytest.raises(IntegrityError) as err:
        decode_blob(loc, damaged)
    assert loc.digest in str(err.value) and info.digest in str(err.value)
