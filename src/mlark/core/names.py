"""Validation of every name and path a user can give. One place, used everywhere."""

from __future__ import annotations

import re

from mlark.errors import InvalidName, InvalidPath

NAME_MAX = 128
PATH_MAX = 4096
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
NAME_RULE = (
    f"letters, digits, '-', '_' and '.', starting with a letter or digit, at most {NAME_MAX} characters, no '..'"
)
RESERVED_ALIASES = frozenset({"latest"})
_VERSION_LIKE = re.compile(r"^v\d+$")


def validate_name(name: object, *, kind: str = "artifact name") -> str:
    """Return ``name`` if it is a valid artifact/alias/project name, else raise InvalidName."""
    if not isinstance(name, str):
        raise InvalidName(f"{kind} must be a string, got {type(name).__name__}", field=kind, allowed=NAME_RULE)
    shown = name if len(name) <= 60 else name[:57] + "..."
    if not name:
        raise InvalidName(f"{kind} is empty; allowed: {NAME_RULE}", field=kind, value=name, allowed=NAME_RULE)
    if len(name) > NAME_MAX:
        raise InvalidName(
            f"{kind} {shown!r} is {len(name)} characters long; allowed: {NAME_RULE}",
            field=kind,
            value=name,
            allowed=NAME_RULE,
        )
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidName(f"invalid {kind} {shown!r}; allowed: {NAME_RULE}", field=kind, value=name, allowed=NAME_RULE)
    return name


def validate_alias(alias: object, *, allow_reserved: bool = False) -> str:
    name = validate_name(alias, kind="alias")
    if _VERSION_LIKE.fullmatch(name):
        raise InvalidName(
            f"alias {name!r} looks like a version number; choose a name that is not v<number>",
            field="alias",
            value=name,
        )
    if not allow_reserved and name in RESERVED_ALIASES:
        raise InvalidName(
            f"alias {name!r} is kept by mlark itself and cannot be set or removed by hand",
            field="alias",
            value=name,
        )
    return name


#: An empty, '.' or '..' part anywhere (this also matches a leading '/' and a trailing one).
_BAD_PART = re.compile(r"(?:^|/)\.{0,2}(?:/|$)")


def validate_relpath(path: object) -> str:
    """Return a normalised repository-relative path ('a/b.csv') or raise InvalidPath.

    Refused: empty, absolute, '..' or '.' components, NUL, backslash, over PATH_MAX bytes.
    """
    # The common case in few steps (a folder of many files validates every path); any refusal is
    # explained by the checks below, one rule at a time.
    if type(path) is str and path and "\x00" not in path and "\\" not in path and not _BAD_PART.search(path):
        try:
            if len(path.encode("utf-8")) <= PATH_MAX:
                return path
        except UnicodeEncodeError:
            pass
    if not isinstance(path, str):
        raise InvalidPath(f"path must be a string, got {type(path).__name__}", field="path")
    rule = "a relative path with '/' separators, no '..' or '.' parts, no NUL or backslash"
    if not path:
        raise InvalidPath(f"path is empty; allowed: {rule}", field="path", value=path)
    if "\x00" in path:
        raise InvalidPath(f"path {path!r} contains a NUL byte; allowed: {rule}", field="path", value=path)
    if "\\" in path:
        raise InvalidPath(f"path {path!r} contains a backslash; allowed: {rule}", field="path", value=path)
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPath(
            f"path {path!r} is not valid Unicode (a file name that is not UTF-8?); allowed: {rule}",
            field="path",
            value=path.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
        ) from None
    if len(encoded) > PATH_MAX:
        raise InvalidPath(f"path is longer than {PATH_MAX} bytes", field="path", value=path[:80])
    if path.startswith("/"):
        raise InvalidPath(f"path {path!r} is absolute; allowed: {rule}", field="path", value=path)
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidPath(f"path {path!r} has an empty, '.' or '..' part; allowed: {rule}", field="path", value=path)
    return path
