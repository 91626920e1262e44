"""Globally unique, time-ordered ids (UUID version 7, RFC 9562)."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = 0  # (ms << 12 | counter) of the previous id: ids of one process strictly increase


def new_id() -> str:
    """A UUIDv7 as a 36-character string: sortable by creation time, unique across machines.

    Within one process ids strictly increase, also within one millisecond: the 12 bits after the
    timestamp count up (RFC 9562, method 1), seeded randomly each new millisecond.
    """
    global _last
    rand = int.from_bytes(os.urandom(10), "big")
    with _lock:
        ms = time.time_ns() // 1_000_000
        stamp = (ms << 12) | ((rand >> 62) & 0x7FF)  # start below the top of the counter range
        if stamp <= _last:
            stamp = _last + 1
        _last = stamp
    ms, counter = stamp >> 12, stamp & 0xFFF
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= counter << 64  # rand_a used as a counter
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return str(uuid.UUID(int=value))


def is_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36
