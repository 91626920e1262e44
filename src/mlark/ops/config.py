"""Finding and reading a repository's repo.json (docs/format.md, section 2.1)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mlark.core.ids import new_id
from mlark.errors import NotARepository, UnsupportedFormat
from mlark.objectstore.chunker import ChunkParams

FORMAT_VERSION = 1
SUPPORTED_FORMATS = (1,)
DIRNAME = ".mlark"
CONFIG_NAME = "repo.json"


@dataclass(frozen=True)
class RepoConfig:
    format: int
    id: str
    created: str
    database: str | None
    chunking: ChunkParams

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "format": self.format,
            "id": self.id,
            "created": self.created,
            "chunking": self.chunking.to_json(),
        }
        if self.database:
            doc["database"] = self.database
        return doc


def new_config(database: str | None = None) -> RepoConfig:
    return RepoConfig(
        FORMAT_VERSION, new_id(), datetime.now(timezone.utc).isoformat(timespec="seconds"), database, ChunkParams()
    )


def find_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding .mlark/, walking up from start (like git)."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / DIRNAME / CONFIG_NAME).is_file():
            return folder
    raise NotARepository(
        f"not inside an mlark repository (no {DIRNAME}/ in {here} or any folder above); run 'mlark init' first",
        path=str(here),
    )


def read_config(meta_dir: Path) -> RepoConfig:
    path = meta_dir / CONFIG_NAME
    try:
        doc = json.loads(path.read_text("utf-8"))
        version = doc["format"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UnsupportedFormat(f"{path} is unreadable or not an mlark repository file: {exc}", path=str(path)) from exc
    if version not in SUPPORTED_FORMATS:
        understood = ", ".join(str(v) for v in SUPPORTED_FORMATS)
        raise UnsupportedFormat(
            f"repository {meta_dir} has format version {version!r}; this mlark understands format {understood}"
            + ("; upgrade mlark to open it" if isinstance(version, int) and version > FORMAT_VERSION else ""),
            found=version,
            supported=list(SUPPORTED_FORMATS),
        )
    try:
        return RepoConfig(
            version, doc["id"], doc["created"], doc.get("database"), ChunkParams.from_json(doc["chunking"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UnsupportedFormat(f"{path} is missing or has a bad field: {exc}", path=str(path)) from exc


def write_config(meta_dir: Path, config: RepoConfig) -> None:
    tmp = meta_dir / (CONFIG_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(config.to_json(), fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, meta_dir / CONFIG_NAME)
