"""References to versions: ``name``, ``name:v3``, ``name@alias``, ``name:<digest-prefix>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlark.core.names import validate_alias, validate_name
from mlark.errors import InvalidName, InvalidRef

REF_FORMS = "name, name:v3, name@alias or name:<digest prefix of 4 to 64 hex characters>"
_NUMBER = re.compile(r"^v([1-9][0-9]{0,17})$")
_PREFIX = re.compile(r"^[0-9a-f]{4,64}$")


@dataclass(frozen=True, slots=True)
class VersionRef:
    """A parsed reference. Exactly one of number, alias, digest_prefix is set, or none (= latest)."""

    name: str
    number: int | None = None
    alias: str | None = None
    digest_prefix: str | None = None

    def __str__(self) -> str:
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
    try:
        if "@" in text:
            name, _, alias = text.partition("@")
            if ":" in name:
                raise InvalidRef(f"reference {text!r} mixes ':' and '@'; expected {REF_FORMS}", field="ref", value=text)
            return VersionRef(validate_name(name), alias=validate_alias(alias, allow_reserved=True))
        if ":" in text:
            name, _, selector = text.partition(":")
            validate_name(name)
            match = _NUMBER.match(selector)
            if match:
                return VersionRef(name, number=int(match.group(1)))
            if _PREFIX.match(selector):
                return VersionRef(name, digest_prefix=selector)
            raise InvalidRef(
                f"reference {text!r}: {selector!r} is neither v<number> nor a digest prefix; expected {REF_FORMS}",
                field="ref",
                value=text,
            )
        return VersionRef(validate_name(text))
    except InvalidName as exc:
        raise InvalidRef(f"reference {text!r}: {exc}; expected {REF_FORMS}", field="ref", value=text) from exc
