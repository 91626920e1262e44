"""Where served models come from: which version a reference names *now*, and its verified folder.

One question is asked every poll interval for every reference a server follows: "which artifact
version does this reference point to now?" (:func:`resolve_version`). It is one read transaction
on the metadata database (SQLite or PostgreSQL), a handful of indexed lookups:

- ``churn-rf@best``, ``churn-rf`` (= ``@latest``), ``churn-rf:v3``, ``churn-rf:1f3a9c``: the
  catalog (:func:`mlark.meta.catalog.resolve`);
- ``models:/churn@production``, ``models:/churn@champion``, ``models:/churn/5``, ``models:/churn``:
  the registry (:func:`mlark.registry.store.resolve`), then the artifact version it registers.

A :class:`Resolution` names what was found by digest; the server loads a new version only when
the digest changes. Fetching the files (:meth:`ModelSource.fetch`) is the repository's job and is
given to :class:`RepoSource` as a function by the adapter that opened the repository (the CLI,
``mlark.spark``): this package sits below ``ops`` and does not open repositories itself.

A folder path is served as it is (:class:`FolderSource`); it does not move, so it is not followed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Protocol

from mlark.core.refs import RegistryRef, VersionRef, is_registry_ref, parse_any_ref
from mlark.errors import InvalidInput, InvalidRef, NotFound

MODEL_TYPE = "model"


@dataclass(frozen=True)
class Resolution:
    """What a reference names at one moment."""

    ref: str  # the reference as served (normalised: models:/churn@production, churn-rf@best, or a folder)
    digest: str  # the identity of what is served: a version digest, or the digest of a folder's manifest
    version: str  # a person's name for it: churn-rf:v3, or the folder
    version_id: str | None = None
    registered: str | None = None  # models:/churn/5 when the reference is a registered model's
    stage: str | None = None
    moved_at: datetime | None = None  # when the alias or stage last moved to it (None: unknown or fixed)
    handle: Any = field(default=None, compare=False, repr=False)  # the Version, for fetching

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "version": self.version,
            "digest": self.digest,
            "registered": self.registered,
            "stage": self.stage,
            "moved_at": None if self.moved_at is None else self.moved_at.isoformat(),
        }


class ModelSource(Protocol):
    def normalise(self, ref: str) -> str:
        """The canonical spelling of ``ref`` (refused with a clear error when it is not a reference)."""

    def follows(self, ref: str) -> bool:
        """True when ``ref`` can move (an alias, a stage, ``latest``)."""

    def resolve(self, ref: str, *, details: bool = False) -> Resolution:
        """Which version ``ref`` names now; ``details`` adds when it moved there (a little more work)."""

    def fetch(self, resolution: Resolution) -> Path:
        """A local, verified model folder for ``resolution``."""


# --------------------------------------------------------------------------- the resolver


def resolve_version(db: Any, ref: VersionRef | RegistryRef, *, details: bool = False) -> Resolution:
    """Which artifact version ``ref`` points to now: one read transaction on ``db`` (a meta Database)."""
    from mlark.meta import catalog

    with db.read() as conn:
        registered = stage = None
        moved_at = None
        if isinstance(ref, RegistryRef):
            from mlark.registry import store

            mv = store.resolve(conn, ref)
            version = catalog.version_by_id(conn, mv.version_id)
            registered = mv.ref
            if ref.number is None and ref.effective_alias and ref.effective_alias.lower() == mv.stage:
                stage = mv.stage
            if details:
                moved_at = _registry_moved_at(conn, ref, mv)
        else:
            version = catalog.resolve(conn, ref)
            if details and ref.effective_alias is not None:
                moved_at = _alias_moved_at(conn, ref)
    if version.removed_at is not None:
        raise NotFound(f"{ref} is {version.ref}, which was removed", ref=str(ref), version=version.ref)
    if version.type != MODEL_TYPE:
        raise InvalidInput(
            f"{ref} is {version.ref}, a version of {version.type!r} artifact {version.name}, not a model "
            f"(models are versions of type {MODEL_TYPE!r}, logged with run.log_model)",
            field="ref",
            ref=str(ref),
        )
    return Resolution(str(ref), version.digest, version.ref, version.id, registered, stage, moved_at, version)


def _alias_moved_at(conn: Any, ref: VersionRef) -> datetime | None:
    from mlark.meta import catalog

    try:
        moves = catalog.alias_moves(conn, ref.name, ref.effective_alias)
    except Exception:  # noqa: BLE001 - "since when" is informative only
        return None
    return moves[0].at if moves else None


def _registry_moved_at(conn: Any, ref: RegistryRef, mv: Any) -> datetime | None:
    if ref.number is not None:
        return None
    name = ref.effective_alias or "latest"
    if name.lower() == mv.stage:
        return mv.stage_changed_at
    if name == "latest":
        return mv.created_at
    try:
        from mlark.registry import store
        from mlark.registry.types import ALIAS

        events = store.events(conn, store.get_model(conn, ref.model), kinds=[ALIAS], field=name, limit=1)
    except Exception:  # noqa: BLE001 - informative only
        return None
    return events[0].at if events else None


# --------------------------------------------------------------------------- sources


def parse_model_ref(ref: object) -> VersionRef | RegistryRef:
    if not isinstance(ref, str) or not ref:
        raise InvalidRef("a model reference is a non-empty string (models:/churn@production, churn-rf@best)",
                         field="ref")
    return parse_any_ref(ref)


def _follows(parsed: VersionRef | RegistryRef) -> bool:
    return parsed.effective_alias is not None


class RepoSource:
    """Models from a repository: ``db`` answers :func:`resolve_version`; ``materialise(version)`` returns
    the verified local folder of a version (the repository's run cache); ``cache`` is the folder
    ``load_model`` may keep derived data in."""

    def __init__(self, db: Any, materialise: Callable[[Any], Path], *, cache: Path | None = None) -> None:
        self._db = db
        self._materialise = materialise
        self.cache = cache

    def normalise(self, ref: str) -> str:
        return str(parse_model_ref(ref))

    def follows(self, ref: str) -> bool:
        return _follows(parse_model_ref(ref))

    def resolve(self, ref: str, *, details: bool = False) -> Resolution:
        return resolve_version(self._db, parse_model_ref(ref), details=details)

    def fetch(self, resolution: Resolution) -> Path:
        folder = Path(self._materialise(resolution.handle))
        parsed = parse_model_ref(resolution.ref)
        if isinstance(parsed, VersionRef) and parsed.path is not None:
            folder = folder.joinpath(*parsed.path.split("/"))
        return folder


class FolderSource:
    """A model folder on disk (``mlark serve ./out/churn-rf``): fixed, never followed."""

    cache = None  # a plain folder has no repository cache

    def normalise(self, ref: str) -> str:
        return str(Path(ref).expanduser().absolute())

    def follows(self, ref: str) -> bool:
        return False

    def resolve(self, ref: str, *, details: bool = False) -> Resolution:
        from mlark.core.digest import digest_bytes
        from mlark.models.manifest import MANIFEST_NAME

        folder = Path(self.normalise(ref))
        try:
            data = (folder / MANIFEST_NAME).read_bytes()
        except OSError:
            raise NotFound(f"no model folder at {ref} (no {MANIFEST_NAME})", path=str(ref)) from None
        return Resolution(str(folder), digest_bytes(data), str(folder))

    def fetch(self, resolution: Resolution) -> Path:
        return Path(resolution.ref)


class Sources:
    """Folders are served by :class:`FolderSource`, references by the repository source (when there is one)."""

    def __init__(self, repo: ModelSource | None = None) -> None:
        self.repo = repo
        self.folders = FolderSource()

    @staticmethod
    def is_folder(ref: str) -> bool:
        """True for an existing folder that holds a model, or is written as a path (``./churn-rf``,
        ``out/churn-rf``); a bare name like ``churn-rf`` stays a reference unless that folder holds a model."""
        if is_registry_ref(ref):
            return False
        try:
            if not os.path.isdir(ref):
                return False
            from mlark.models.manifest import MANIFEST_NAME

            return os.sep in ref or ref.startswith((".", "~")) or os.path.isfile(os.path.join(ref, MANIFEST_NAME))
        except (OSError, ValueError):
            return False

    def _pick(self, ref: str) -> ModelSource:
        if self.is_folder(ref):
            return self.folders
        if self.repo is None:
            parse_model_ref(ref)  # a malformed reference is reported as such
            raise NotFound(
                f"{ref!r} is a reference, and no repository is open to resolve it (give a model folder, "
                "or run inside a repository / pass --repo)",
                ref=ref,
            )
        return self.repo

    def normalise(self, ref: str) -> str:
        return self._pick(ref).normalise(ref)

    def follows(self, ref: str) -> bool:
        return self._pick(ref).follows(ref)

    def resolve(self, ref: str, *, details: bool = False) -> Resolution:
        return self._pick(ref).resolve(ref, details=details)

    def fetch(self, resolution: Resolution) -> Path:
        return self._pick(resolution.ref).fetch(resolution)

    def cache_for(self, resolution: Resolution) -> Path | None:
        """The folder ``load_model`` may keep derived data in for this model (None: none)."""
        return getattr(self._pick(resolution.ref), "cache", None)
