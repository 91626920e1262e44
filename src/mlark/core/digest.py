"""BLAKE3 digests, written as 64 lowercase hex characters."""

from __future__ import annotations

import re

import blake3

DIGEST_SIZE = 32
HEX_LEN = 64
_HEX = re.compile(r"^[0-9a-f]{64}$")


def digest_bytes(data: bytes | bytearray | memoryview) -> str:
    return blake3.blake3(data).hexdigest()


def is_digest(text: str) -> bool:
    return bool(_HEX.fullmatch(text))


def hasher() -> "blake3.blake3":
    return blake3.blake3()
