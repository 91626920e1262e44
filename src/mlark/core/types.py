"""The domain's value types, as the API returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Artifact:
    id: str
    name: str
    type: str
    created_at: datetime
    created_by: str
    version_count: int = 0
    latest: int | None = None


@dataclass(frozen=True, slots=True)
class Version:
    id: str
    artifact_id: str
    name: str
    type: str
    number: int
    digest: str
    message: str
    author: str
    created_at: datetime
    size: int
    new_bytes: int
    file_count: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    parent_number: int | None = None
    aliases: tuple[str, ...] = ()
    removed_at: datetime | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}:v{self.number}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "name": self.name,
            "type": self.type,
            "number": self.number,
            "digest": self.digest,
            "message": self.message,
            "author": self.author,
            "created_at": self.created_at.isoformat(),
            "size": self.size,
            "new_bytes": self.new_bytes,
            "file_count": self.file_count,
            "metadata": self.metadata,
            "tags": list(self.tags),
            "parent": None if self.parent_number is None else f"{self.name}:v{self.parent_number}",
            "aliases": list(self.aliases),
            "removed_at": None if self.removed_at is None else self.removed_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class AliasMove:
    id: str
    artifact: str
    alias: str
    from_number: int | None
    to_number: int | None
    author: str
    at: datetime
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "artifact": self.artifact,
            "alias": self.alias,
            "from": None if self.from_number is None else f"{self.artifact}:v{self.from_number}",
            "to": None if self.to_number is None else f"{self.artifact}:v{self.to_number}",
            "author": self.author,
            "at": self.at.isoformat(),
            "message": self.message,
        }
