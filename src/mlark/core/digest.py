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
    # 64 characters, all of them lowercase hex (the same as _HEX, a few times faster: trees check
    # every digest they hold).
    return isinstance(text, str) and len(text) == HEX_LEN and not text.strip("0123456789abcdef")


def hasher() -> "blake3.blake3":
    return blake3.blake3()
