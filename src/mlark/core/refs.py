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


# --------------------------------------------------------------------------- registered models

REGISTRY_SCHEME = "models:/"
REGISTRY_REF_FORMS = (
    "models:/NAME (its latest registered version), models:/NAME/N (registered version N), "
    "models:/NAME@ALIAS or models:/NAME@STAGE (development, staging, production, archived)"
)
_REGISTRY_NUMBER = re.compile(r"^[1-9][0-9]{0,17}$")


@dataclass(frozen=True, slots=True)
class RegistryRef:
    """A parsed ``models:/NAME/N``, ``models:/NAME@ALIAS_OR_STAGE`` or ``models:/NAME`` (= ``@latest``).

    ``alias`` holds what follows ``@``: an alias or a stage name; the registry tells them apart.
    At most one of ``number`` and ``alias`` is set; neither means the latest registered version.
    """

    model: str
    number: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.number is not None:
            return f"{REGISTRY_SCHEME}{self.model}/{self.number}"
        if self.alias is not None:
            return f"{REGISTRY_SCHEME}{self.model}@{self.alias}"
        return f"{REGISTRY_SCHEME}{self.model}"

    @property
    def effective_alias(self) -> str | None:
        if self.number is None:
            return self.alias or "latest"
        return None


def is_registry_ref(text: object) -> bool:
    return isinstance(text, str) and text.startswith(REGISTRY_SCHEME)


def parse_registry_ref(text: object, *, scheme_optional: bool = False) -> RegistryRef:
    """Parse ``models:/NAME/N``, ``models:/NAME@X`` or ``models:/NAME``.

    With ``scheme_optional`` the ``models:/`` prefix may be left out (``churn@production``,
    ``churn/2``): for places that take a registered model and nothing else (``mlark models show``).
    """
    if not isinstance(text, str) or not text:
        raise InvalidRef(f"empty reference; expected {REGISTRY_REF_FORMS}", field="ref", value=text)
    shown = text if len(text) <= 80 else text[:77] + "..."
    if text.startswith(REGISTRY_SCHEME):
        body = text[len(REGISTRY_SCHEME):]
    elif scheme_optional:
        body = text
    else:
        raise InvalidRef(
            f"reference {shown!r} does not start with {REGISTRY_SCHEME!r}; expected {REGISTRY_REF_FORMS}",
            field="ref",
            value=text,
        )
    try:
        if "@" in body:
            name, _, alias = body.partition("@")
            if "/" in name and name.partition("/")[2].isdigit():
                raise InvalidRef(
                    f"reference {shown!r}: give a version number or an alias, not both; expected {REGISTRY_REF_FORMS}",
                    field="ref",
                    value=text,
                )
            model = validate_name(name, kind="registered model name")
            match = _NUMBER.fullmatch(alias)
            if match:
                raise InvalidRef(
                    f"reference {shown!r}: registered versions are numbered after '/': write "
                    f"{REGISTRY_SCHEME}{model}/{match.group(1)}; expected {REGISTRY_REF_FORMS}",
                    field="ref",
                    value=text,
                )
            return RegistryRef(model, alias=validate_alias(alias, allow_reserved=True))
        if "/" in body:
            name, _, selector = body.partition("/")
            validate_name(name, kind="registered model name")
            if _REGISTRY_NUMBER.fullmatch(selector):
                return RegistryRef(name, number=int(selector))
            hint = ""
            if selector and not selector.isdigit() and validate_alias_or_none(selector) is not None:
                hint = f" (for an alias or a stage write {REGISTRY_SCHEME}{name}@{selector.lower()})"
            raise InvalidRef(
                f"reference {shown!r}: {selector[:40]!r} is not a version number{hint}; expected {REGISTRY_REF_FORMS}",
                field="ref",
                value=text,
            )
        return RegistryRef(validate_name(body, kind="registered model name"))
    except (InvalidName, InvalidPath) as exc:
        raise InvalidRef(f"reference {shown!r}: {exc}; expected {REGISTRY_REF_FORMS}", field="ref", value=text) from exc


def validate_alias_or_none(text: str) -> str | None:
    try:
        return validate_alias(text, allow_reserved=True)
    except InvalidName:
        return None


def parse_any_ref(text: object) -> VersionRef | RegistryRef:
    """A registered model reference (``models:/...``) or a version reference (:func:`parse_ref`)."""
    if is_registry_ref(text):
        return parse_registry_ref(text)
    return parse_ref(text)
