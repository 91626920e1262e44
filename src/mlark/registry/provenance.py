"""Lineage through the registry: from a registered version to its artifact version, the run that
trained it (params, metrics) and the exact versions that run used. One read transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from mlark.core.ids import is_id
from mlark.core.types import Version
from mlark.lineage import edges
from mlark.meta import catalog
from mlark.meta.schema import runs
from mlark.registry.types import ModelLineage, ModelVersion, RunSummary
from mlark.tracking import records


def source_run(conn: Connection, version: Version, manifest_run_id: str | None = None) -> str | None:
    """The run that produced ``version``: its ``produced`` edge, else the model manifest's ``run_id`` (as
    copied into the version's metadata by ``run.log_model``, or ``manifest_run_id`` read from the stored
    ``mlark-model.json`` by the caller) when that run is known here."""
    producer = edges.producer_of(conn, version.id)
    if producer is not None:
        return producer
    candidates = [version.metadata.get("run_id") if isinstance(version.metadata, dict) else None, manifest_run_id]
    for run_id in candidates:
        if isinstance(run_id, str) and is_id(run_id) and run_exists(conn, run_id.lower()):
            return run_id.lower()
    return None


def run_exists(conn: Connection, run_id: str) -> bool:
    return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None


def inputs_of(conn: Connection, run_id: str | None) -> list[Version]:
    """The versions a run used, in the order it first used them."""
    if run_id is None:
        return []
    return [catalog.version_by_id(conn, i) for i in edges.versions_used(conn, run_id)]


def run_summary(conn: Connection, run_id: str) -> RunSummary:
    record: Any = records.load_records(conn, [run_id])[0]
    return RunSummary(
        id=record.id,
        project=record.project,
        name=record.name,
        status=record.status,
        start_time=record.start_time,
        end_time=record.end_time,
        params=dict(record.params),
        metrics=dict(record.metrics),
        tags=dict(record.tags),
    )


def model_lineage(conn: Connection, ref: str, mv: ModelVersion) -> ModelLineage:
    version = catalog.version_by_id(conn, mv.version_id)
    run_id = mv.source_run_id or source_run(conn, version)
    run_source = None
    run = None
    if run_id is not None and run_exists(conn, run_id):
        run_source = "lineage" if run_id in edges.producers_of(conn, version.id) else "manifest"
        run = run_summary(conn, run_id)
    return ModelLineage(
        ref=ref,
        model_version=mv,
        version=version,
        run=run,
        run_source=run_source,
        inputs=tuple(inputs_of(conn, run.id if run is not None else None)),
    )
