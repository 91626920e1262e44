"""Value types the registry returns: registered models, their versions, audit events, lineage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlark.core.refs import REGISTRY_SCHEME
from mlark.core.types import Version
from mlark.registry.stages import STAGES


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered model version: ``models:/churn/2`` is ``churn-rf:v3``, in ``production``, aliased ``champion``."""

    id: str
    model: str
    number: int
    version: str  # the artifact version it registers, e.g. "churn-rf:v3"
    version_id: str
    digest: str
    stage: str
    stage_changed_at: datetime
    aliases: tuple[str, ...]
    description: str | None
    tags: dict[str, str]
    created_at: datetime
    created_by: str
    source_run_id: str | None
    version_removed: bool = False
    #: the versions the source run used (its training data), filled by ``show``
    inputs: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{REGISTRY_SCHEME}{self.model}/{self.number}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "model": self.model,
            "number": self.number,
            "version": self.version,
            "digest": self.digest,
            "stage": self.stage,
            "stage_changed_at": self.stage_changed_at.isoformat(),
            "aliases": list(self.aliases),
            "description": self.description,
            "tags": dict(self.tags),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "source_run": self.source_run_id,
            "version_removed": self.version_removed,
            "inputs": list(self.inputs),
        }


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A registered model with its versions (each with its stage and aliases)."""

    id: str
    name: str
    description: str | None
    tags: dict[str, str]
    created_at: datetime
    created_by: str
    versions: tuple[ModelVersion, ...] = ()

    @property
    def aliases(self) -> dict[str, int]:
        """``{alias: number}``."""
        return dict(sorted((a, v.number) for v in self.versions for a in v.aliases))

    @property
    def stages(self) -> dict[str, list[int]]:
        """``{stage: [numbers]}`` for every stage some version is in, in lifecycle order."""
        out: dict[str, list[int]] = {}
        for stage in STAGES:
            numbers = sorted(v.number for v in self.versions if v.stage == stage)
            if numbers:
                out[stage] = numbers
        return out

    @property
    def latest(self) -> int | None:
        return max((v.number for v in self.versions), default=None)

    def version(self, number: int) -> ModelVersion | None:
        return next((v for v in self.versions if v.number == number), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "tags": dict(self.tags),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "latest": self.latest,
            "aliases": self.aliases,
            "stages": self.stages,
            "versions": [v.to_dict() for v in self.versions],
        }


#: Kinds of registry events.
REGISTERED = "registered"
STAGE = "stage"
ALIAS = "alias"
DESCRIPTION = "description"
TAGS = "tags"
EVENT_KINDS = (REGISTERED, STAGE, ALIAS, DESCRIPTION, TAGS)


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """One recorded change: who, when, what (kind, field), from, to, why.

    - ``registered``: version ``number`` (``to``) now registers ``version`` (an artifact version);
    - ``stage``: version ``number`` moved from stage ``from`` to stage ``to`` (``field`` = ``to``);
    - ``alias``: alias ``field`` moved from version ``from`` to version ``to`` (numbers; None = unset);
    - ``description``, ``tags``: of version ``number``, or of the model when ``number`` is None
      (``field`` is the tag key; ``to`` None means removed).
    """

    id: str
    model: str
    number: int | None
    version: str | None  # the artifact version of ``number``, e.g. "churn-rf:v3"
    kind: str
    field: str | None
    from_value: str | None
    to_value: str | None
    author: str
    at: datetime
    message: str

    def describe(self) -> str:
        """One line for people: ``version 2: staging -> production``."""
        def show(value: str | None, what: str) -> str:
            if value is None:
                return "(none)"
            return f"version {value}" if what == "number" else value

        subject = f"version {self.number}" if self.number is not None else "model"
        if self.kind == REGISTERED:
            return f"registered {self.version} as version {self.to_value}"
        if self.kind == STAGE:
            return f"{subject}: {self.from_value} -> {self.to_value}"
        if self.kind == ALIAS:
            return f"@{self.field}: {show(self.from_value, 'number')} -> {show(self.to_value, 'number')}"
        if self.kind == DESCRIPTION:
            return f"description of {subject} changed"
        if self.kind == TAGS:
            if self.to_value is None:
                return f"tag {self.field} of {subject} removed"
            return f"tag {self.field} of {subject}: {self.from_value or '(none)'} -> {self.to_value}"
        return f"{self.kind} {self.field or ''}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "number": self.number,
            "ref": None if self.number is None else f"{REGISTRY_SCHEME}{self.model}/{self.number}",
            "version": self.version,
            "kind": self.kind,
            "field": self.field,
            "from": self.from_value,
            "to": self.to_value,
            "author": self.author,
            "at": self.at.isoformat(),
            "message": self.message,
            "change": self.describe(),
        }


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The run that produced a model version: what it was given and what it measured."""

    id: str
    project: str
    name: str
    status: str
    start_time: datetime
    end_time: datetime | None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # last value of each metric
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "name": self.name,
            "status": self.status,
            "start_time": self.start_time.isoformat(),
            "end_time": None if self.end_time is None else self.end_time.isoformat(),
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
        }


@dataclass(frozen=True, slots=True)
class ModelLineage:
    """Everything behind one registered model version, in one value.

    ``run_source`` says how the run was found: ``"lineage"`` (a ``produced`` edge: the run logged
    the version) or ``"manifest"`` (the ``run_id`` in the model's manifest, for a version added
    outside the run); None when no run is known. ``inputs`` are the exact versions the run used.
    """

    ref: str
    model_version: ModelVersion
    version: Version
    run: RunSummary | None
    run_source: str | None
    inputs: tuple[Version, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "model_version": self.model_version.to_dict(),
            "version": self.version.to_dict(),
            "run": None if self.run is None else self.run.to_dict(),
            "run_source": self.run_source,
            "inputs": [v.to_dict() for v in self.inputs],
        }
