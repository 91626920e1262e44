"""Names, aliases and repository-relative paths: validated once, in mlark.core.names."""

from __future__ import annotations

import pytest

from mlark.core.names import NAME_MAX, PATH_MAX, validate_alias, validate_name, validate_relpath
from mlark.errors import InvalidInput, InvalidName, InvalidPath


@pytest.mark.parametrize(
    "name",
    ["churn", "churn-data", "churn_data", "v1.2.3", "A", "9lives", "a.b-c_d", "x" * NAME_MAX],
)
def test_valid_names_are_returned_unchanged(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("", "empty"),
        ("..", "invalid"),
        ("a..b", "invalid"),
        ("../x", "invalid"),
        ("/abs", "invalid"),
        ("a/b", "invalid"),
        ("a\\b", "invalid"),
        ("a\x00b", "invalid"),
        (".hidden", "invalid"),
        ("-dash", "invalid"),
        ("_under", "invalid"),
        ("has space", "invalid"),
        ("naïve", "invalid"),
        ("a@b", "invalid"),
        ("a:b", "invalid"),
        ("x" * (NAME_MAX + 1), "characters long"),
        ("abc\n", "invalid"),
        ("abc\r\n", "invalid"),
    ],
)
def test_invalid_names_are_refused_with_the_rule(name: str, fragment: str) -> None:
    with pytest.raises(InvalidName, match=fragment) as info:
        validate_name(name)
    err = info.value
    # The message says what is allowed, and the error is a ValueError for callers that catch builtins.
    assert "allowed" in str(err)
    assert isinstance(err, InvalidInput) and isinstance(err, ValueError)
    assert err.fields["allowed"]
    assert "\n" not in str(err)


@pytest.mark.parametrize("value", [None, 3, b"bytes", ["a"]])
def test_non_string_names_are_refused(value: object) -> None:
    with pytest.raises(InvalidName, match="must be a string"):
        validate_name(value)


def test_overlong_name_message_is_shortened() -> None:
    with pytest.raises(InvalidName) as info:
        validate_name("y" * 5000)
    assert len(str(info.value)) < 400
    assert "5000 characters" in str(info.value)


def test_kind_appears_in_the_message() -> None:
    with pytest.raises(InvalidName, match="^invalid tag "):
        validate_name("bad tag", kind="tag")


@pytest.mark.parametrize("alias", ["best", "production", "release-2024", "v", "v1a", "version3", "V3x"])
def test_valid_aliases(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize("alias", ["v3", "v0", "v12345"])
def test_version_like_aliases_are_refused(alias: str) -> None:
    with pytest.raises(InvalidName, match="looks like a version number"):
        validate_alias(alias)


def test_latest_is_reserved_unless_allowed() -> None:
    with pytest.raises(InvalidName, match="kept by mlark itself"):
        validate_alias("latest")
    assert validate_alias("latest", allow_reserved=True) == "latest"


@pytest.mark.parametrize("alias", ["", "..", "a/b", ".x", "a b", "x" * (NAME_MAX + 1)])
def test_aliases_follow_the_name_rule(alias: str) -> None:
    with pytest.raises(InvalidName):
        validate_alias(alias)


@pytest.mark.parametrize(
    "path",
    [
        "a",
        "a/b.csv",
        "deep/er/still/file.parquet",
        ".gitignore",
        "dir/.hidden",
        "données/été.csv",
        "a..b",
        "...",
        "x" * PATH_MAX,
        ("é" * (PATH_MAX // 2)),
    ],
)
def test_valid_relpaths(path: str) -> None:
    assert validate_relpath(path) == path


@pytest.mark.parametrize(
    "path, fragment",
    [
        ("", "empty"),
        ("..", r"'\.\.'"),
        ("../x", r"'\.\.'"),
        ("a/../b", r"'\.\.'"),
        ("a/..", r"'\.\.'"),
        (".", r"'\.'"),
        ("./a", r"'\.'"),
        ("a/./b", r"'\.'"),
        ("/etc/passwd", "absolute"),
        ("/", "absolute"),
        ("a//b", "empty"),
        ("a/", "empty"),
        ("a\x00b", "NUL"),
        ("a\\b", "backslash"),
        ("..\\..\\x", "backslash"),
        ("x" * (PATH_MAX + 1), "longer than"),
        ("é" * (PATH_MAX // 2 + 1), "longer than"),
    ],
)
def test_invalid_relpaths(path: str, fragment: str) -> None:
    with pytest.raises(InvalidPath, match=fragment) as info:
        validate_relpath(path)
    assert isinstance(info.value, ValueError)
    assert len(str(info.value)) < 400


def test_relpath_that_is_not_utf8_encodable_is_refused() -> None:
    # A lone surrogate (from a file name that is not valid UTF-8) cannot be written into a tree.
    with pytest.raises(InvalidPath):
        validate_relpath("bad\udcff.csv")


@pytest.mark.parametrize("value", [None, 1, b"a/b"])
def test_non_string_relpaths_are_refused(value: object) -> None:
    with pytest.raises(InvalidPath, match="must be a string"):
        validate_relpath(value)
