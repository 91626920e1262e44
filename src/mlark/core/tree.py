"""Trees: the canonical description of one version's files (docs/format.md, section 5)."""

from __future__ import annotations

import json
import json.encoder
from dataclasses import dataclass, field
from typing import Iterator, Literal

from mlark.core.digest import digest_bytes, is_digest
from mlark.core.names import validate_relpath
from mlark.errors import IntegrityError, InvalidPath

TREE_FORMAT = 1
_json_str = json.encoder.encode_basestring  # json.dumps(text, ensure_ascii=False), in C
EntryType = Literal["file", "dir", "symlink"]


@dataclass(frozen=True, slots=True)
class ChunkRef:
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    type: EntryType
    mode: int = 0o644
    size: int = 0
    digest: str = ""
    chunks: tuple[ChunkRef, ...] = ()
    target: str = ""

    def to_json(self) -> dict[str, object]:
        if self.type == "file":
            return {
                "path": self.path,
                "type": "file",
                "mode": self.mode,
                "size": self.size,
                "digest": self.digest,
                "chunks": [[c.digest, c.size] for c in self.chunks],
            }
        if self.type == "dir":
            return {"path": self.path, "type": "dir", "mode": self.mode}
        return {"path": self.path, "type": "symlink", "target": self.target}


@dataclass(frozen=True, slots=True)
class Tree:
    entries: tuple[Entry, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(sorted(self.entries, key=lambda e: e.path.encode("utf-8"))))
        _check(self.entries)

    def encode(self) -> bytes:
        """The canonical bytes (docs/format.md, section 5): what json.dumps(sort_keys=True,
        separators=(",", ":"), ensure_ascii=False) makes of the document, written out directly because
        a tree of many files is encoded at every add (tests hold the two to the same bytes)."""
        body = ",".join(_entry_json(e) for e in self.entries)
        return f'{{"entries":[{body}],"format":{TREE_FORMAT}}}'.encode("utf-8")

    @property
    def digest(self) -> str:
        return digest_bytes(self.encode())

    def files(self) -> Iterator[Entry]:
        return (e for e in self.entries if e.type == "file")

    @property
    def size(self) -> int:
        return sum(e.size for e in self.files())

    @property
    def file_count(self) -> int:
        return sum(1 for _ in self.files())

    def chunk_digests(self) -> set[str]:
        return {c.digest for e in self.files() for c in e.chunks}

    def get(self, path: str) -> Entry | None:
        for entry in self.entries:
            if entry.path == path:
                return entry
        return None

    @classmethod
    def decode(cls, data: bytes) -> "Tree":
        try:
            doc = json.loads(data.decode("utf-8"))
            if doc.get("format") != TREE_FORMAT:
                raise IntegrityError(f"tree has unknown format {doc.get('format')!r}")
            entries = []
            for raw in doc["entries"]:
                kind = raw["type"]
                if kind == "file":
                    entries.append(
                        Entry(
                            path=raw["path"],
                            type="file",
                            mode=int(raw["mode"]),
                            size=int(raw["size"]),
                            digest=raw["digest"],
                            chunks=tuple(ChunkRef(d, int(n)) for d, n in raw["chunks"]),
                        )
                    )
                elif kind == "dir":
                    entries.append(Entry(path=raw["path"], type="dir", mode=int(raw["mode"])))
                elif kind == "symlink":
                    entries.append(Entry(path=raw["path"], type="symlink", target=raw["target"]))
                else:
                    raise IntegrityError(f"tree entry has unknown type {kind!r}")
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"tree does not decode: {exc}") from exc
        return cls(tuple(entries))


def _entry_json(e: Entry) -> str:
    """Entry.to_json() in canonical JSON: keys in sorted order, no spaces, strings escaped by json."""
    if e.type == "file":
        chunks = ",".join(f'["{c.digest}",{int(c.size)}]' for c in e.chunks)
        return (f'{{"chunks":[{chunks}],"digest":"{e.digest}","mode":{int(e.mode)},'
                f'"path":{_json_str(e.path)},"size":{int(e.size)},"type":"file"}}')
    if e.type == "dir":
        return f'{{"mode":{int(e.mode)},"path":{_json_str(e.path)},"type":"dir"}}'
    return f'{{"path":{_json_str(e.path)},"target":{_json_str(e.target)},"type":"symlink"}}'


def _check(entries: tuple[Entry, ...]) -> None:
    seen: dict[str, EntryType] = {}
    for entry in entries:
        validate_relpath(entry.path)
        if entry.path in seen:
            raise InvalidPath(f"path {entry.path!r} appears twice in one tree", field="path", value=entry.path)
        seen[entry.path] = entry.type
        if entry.type == "file":
            if entry.size != sum(c.size for c in entry.chunks):
                raise IntegrityError(f"file {entry.path!r}: chunk sizes do not add up to {entry.size}")
            if not is_digest(entry.digest) or not all(is_digest(c.digest) for c in entry.chunks):
                raise IntegrityError(f"file {entry.path!r}: malformed digest")
        if entry.type == "symlink":
            check_link_target(entry.path, entry.target)
    for path in seen:
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if seen.get(parent) in ("file", "symlink"):
                raise InvalidPath(
                    f"path {path!r} lies inside {parent!r}, which is a {seen[parent]}", field="path", value=path
                )


def check_link_target(path: str, target: str) -> None:
    """A symlink's target must be relative and resolve inside the tree."""
    if not target or target.startswith("/") or "\x00" in target or "\\" in target:
        raise InvalidPath(
            f"symlink {path!r} points to {target!r}; only relative links that stay inside the added folder are kept",
            field="path",
            value=path,
        )
    depth = len(path.split("/")) - 1
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise InvalidPath(
                    f"symlink {path!r} points to {target!r}, outside the added folder; "
                    "only relative links that stay inside it are kept",
                    field="path",
                    value=path,
                )
        elif part not in ("", "."):
            depth += 1
