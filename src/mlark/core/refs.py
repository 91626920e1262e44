"""References to versions: ``name``, ``name:v3``, ``name@alias``, ``name:<digest-prefix>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlark.core.names import validate_alias, validate_name, validate_relpath
from mlark.errors import InvalidName, InvalidPath, InvalidRef

REF_FORMS = (
    "name, name:v3, name@alias, name:<digest prefix of 4 to 64 hex characters>, "
    "or name:path@alias for a file or folder inside a version"
)
_NUMBER = re.compile(r"^v([1-9][0-9]{0,17})$")
_PREFIX = re.compile(r"^[0-9a-f]{4,64}$")


@dataclass(frozen=True, slots=True)
class VersionRef:
    """A parsed reference. Exactly one of number, alias, digest_prefix is set, or none (= latest)."""

    name: str
    number: int | None = None
    alias: str | None = None
    digest_prefix: str | None = None
    path: str | None = None  # a file or folder inside the version (NAME:PATH@ALIAS)

    def __str__(self) -> str:
        if self.path is not None:
            return f"{self.name}:{self.path}@{self.alias or 'latest'}"
        if self.number is not None:
            return f"{self.name}:v{self.number}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.digest_prefix is not None:
            return f"{self.name}:{self.digest_prefix}"
        return self.name

    @property
    def effective_alias(self) -> str | None:
        if self.number is None and self.digest_prefix is None:
            return self.alias or "latest"
        return None


def parse_ref(text: object) -> VersionRef:
    if not isinstance(text, str) or not text:
        raise InvalidRef(f"empty reference; expected {REF_FORMS}", field="ref", value=text)
    shown = text if len(text) <= 80 else text[:77] + "..."  # never echo a huge input back whole
    try:
        if "@" in text:
            left, _, alias = text.rpartition("@")
            name, colon, path = left.partition(":")
            checked_alias = validate_alias(alias, allow_reserved=True)
            if colon:
                return VersionRef(validate_name(name), alias=checked_alias, path=validate_relpath(path))
            return VersionRef(validate_name(name), alias=checked_alias)
        if ":" in text:
            name, _, selector = text.partition(":")
            validate_name(name)
            match = _NUMBER.fullmatch(selector)
            if match:
                return VersionRef(name, number=int(match.group(1)))
            if _PREFIX.fullmatch(selector):
                return VersionRef(name, digest_prefix=selector)
            raise InvalidRef(
                f"reference {shown!r}: {selector[:40]!r} is neither v<number> nor a digest prefix; "
                f"expected {REF_FORMS}",
                field="ref",
                value=text,
            )
        return VersionRef(validate_name(text))
    except (InvalidName, InvalidPath) as exc:
        raise InvalidRef(f"reference {shown!r}: {exc}; expected {REF_FORMS}", field="ref", value=text) from exc
