"""References: name, name:v3, name@alias, name:<digest prefix>."""

from __future__ import annotations

import pytest

from mlark.core.refs import VersionRef, parse_ref
from mlark.errors import InvalidInput, InvalidRef

DIGEST = "3f2a9c" + "0" * 58


def test_bare_name_means_latest() -> None:
    ref = parse_ref("churn")
    assert ref == VersionRef("churn")
    assert (ref.number, ref.alias, ref.digest_prefix) == (None, None, None)
    assert ref.effective_alias == "latest"
    assert str(ref) == "churn"


@pytest.mark.parametrize("text, number", [("churn:v1", 1), ("churn:v3", 3), ("c.d-e_f:v42", 42), ("x:v999999", 999999)])
def test_version_number(text: str, number: int) -> None:
    ref = parse_ref(text)
    assert ref.number == number
    assert ref.alias is None and ref.digest_prefix is None
    assert ref.effective_alias is None
    assert str(ref) == text


@pytest.mark.parametrize("alias", ["production", "best", "latest", "release-1"])
def test_alias(alias: str) -> None:
    ref = parse_ref(f"churn@{alias}")
    assert ref.name == "churn"
    assert ref.alias == alias
    assert ref.number is None and ref.digest_prefix is None
    assert ref.effective_alias == alias
    assert str(ref) == f"churn@{alias}"


@pytest.mark.parametrize("prefix", ["3f2a", "3f2a9c", "0123456789abcdef", DIGEST, "1234"])
def test_digest_prefix(prefix: str) -> None:
    ref = parse_ref(f"churn:{prefix}")
    assert ref.digest_prefix == prefix
    assert ref.number is None and ref.alias is None
    assert ref.effective_alias is None
    assert str(ref) == f"churn:{prefix}"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty reference"),
        ("churn:", "neither v<number> nor a digest prefix"),
        ("churn:v0", "neither v<number> nor a digest prefix"),
        ("churn:v-1", "neither v<number> nor a digest prefix"),
        ("churn:V3", "neither v<number> nor a digest prefix"),
        ("churn:v3x", "neither v<number> nor a digest prefix"),
        ("churn:v3\n", "neither v<number> nor a digest prefix"),
        ("churn:abc", "neither v<number> nor a digest prefix"),  # too short for a prefix
        ("churn:ABCD", "neither v<number> nor a digest prefix"),  # digests are lowercase
        ("churn:3f2g", "neither v<number> nor a digest prefix"),
        ("churn:3f2a\n", "neither v<number> nor a digest prefix"),
        ("churn:" + "a" * 65, "neither v<number> nor a digest prefix"),
        ("churn@", "alias is empty"),
        ("churn@v3", "looks like a version number"),
        ("churn@bad alias", "invalid alias"),
        ("../churn", "invalid artifact name"),
        ("../churn:v1", "invalid artifact name"),
        ("../churn@best", "invalid artifact name"),
        (":v1", "artifact name is empty"),
        ("@best", "artifact name is empty"),
        ("churn\n", "invalid artifact name"),
        ("/abs", "invalid artifact name"),
    ],
)
def test_bad_refs_are_refused_with_the_forms_allowed(text: str, fragment: str) -> None:
    with pytest.raises(InvalidRef) as info:
        parse_ref(text)
    message = str(info.value)
    assert fragment in message
    # Every refusal lists what is allowed, names the input, and is one line.
    assert "name:v3" in message and "name@alias" in message
    assert "\n" not in message.replace(repr(text), "")
    assert isinstance(info.value, InvalidInput) and isinstance(info.value, ValueError)
    assert info.value.fields["field"] == "ref"


@pytest.mark.parametrize("value", [None, 3, b"churn"])
def test_non_string_refs_are_refused(value: object) -> None:
    with pytest.raises(InvalidRef, match="empty reference"):
        parse_ref(value)


def test_refs_round_trip_through_str() -> None:
    for text in ("a", "a:v7", "a@prod", "a:deadbeef"):
        assert str(parse_ref(str(parse_ref(text)))) == text
