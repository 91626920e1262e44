"""Ids that leave the machine: UUID version 7 (RFC 9562)."""

from __future__ import annotations

import time
import uuid

from mlark.core.digest import digest_bytes, is_digest
from mlark.core.ids import is_id, new_id


def _ms(text: str) -> int:
    return uuid.UUID(text).int >> 80


def test_new_id_is_a_uuid_version_7_with_rfc_variant() -> None:
    text = new_id()
    value = uuid.UUID(text)
    assert len(text) == 36 and text == text.lower()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert is_id(text)


def test_new_id_carries_the_current_unix_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    text = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= _ms(text) <= after


def test_new_ids_are_unique() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    # The random tail really varies (not a counter in disguise).
    tails = {uuid.UUID(i).int & ((1 << 62) - 1) for i in ids}
    assert len(tails) == len(ids)


def test_new_ids_are_ordered_by_creation_time() -> None:
    ids = []
    for _ in range(5):
        ids.append(new_id())
        time.sleep(0.002)
    assert ids == sorted(ids)
    assert [_ms(i) for i in ids] == sorted({_ms(i) for i in ids})
    # Within a burst, the string order agrees with the embedded time (never goes backwards).
    burst = [new_id() for _ in range(2000)]
    stamps = [_ms(i) for i in burst]
    assert stamps == sorted(stamps)
    assert sorted(burst) == sorted(burst, key=lambda i: uuid.UUID(i).int)


def test_is_id_refuses_non_ids() -> None:
    assert not is_id("not-an-id")
    assert not is_id("")
    assert not is_id(uuid.uuid4().hex)  # 32 characters, no dashes


def test_digests_are_blake3_lowercase_hex() -> None:
    # BLAKE3 of the empty string (reference value from the BLAKE3 specification).
    assert digest_bytes(b"") == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    d = digest_bytes(b"abc")
    assert is_digest(d)
    assert not is_digest(d.upper())
    assert not is_digest(d[:-1])
    assert not is_digest(d + "\n")
