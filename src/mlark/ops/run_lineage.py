"""What a run used and produced: versions read into it and committed from it, recorded as lineage edges.

The bodies of ``Run.use``, ``Run.log_artifact`` and ``Run.log_dataset``. Each edge is written
inside :func:`~mlark.ops.run_lifecycle.critical`; an edge that would close a cycle in the lineage
graph is refused with a :class:`~mlark.errors.Conflict` that names the run, the version and the cycle.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from mlark.core.names import validate_name, validate_relpath
from mlark.core.refs import VersionRef, parse_ref
from mlark.core.types import Version
from mlark.errors import Conflict, InvalidInput
from mlark.lineage import edges
from mlark.meta import catalog
from mlark.ops.lock import repo_lock
from mlark.ops.run_inputs import is_table, materialise, sub_path, write_parquet
from mlark.ops.run_lifecycle import critical

if TYPE_CHECKING:
    from mlark.ops.repo import Repo
    from mlark.ops.runs import Run

__all__ = ["log_artifact", "log_dataset", "use"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def use(run: "Run", ref: str | Version) -> Path:
    """Record that ``run`` used a version; return its local, verified path (see ``Run.use``)."""
    repo = run.repo
    version, parsed = _resolve(repo, ref)
    base = materialise(repo, version)
    path = base if parsed is None or parsed.path is None else sub_path(repo, version, base, parsed.path)
    now = _now()
    with critical():
        try:
            repo.db.run_write(lambda conn: edges.record_used(conn, version.id, run.id, now=now))
        except Conflict as exc:
            raise _refused(
                run, version, exc,
                f"cannot use {version.ref}: the run produced it, directly or through what was made from its "
                "outputs, and lineage must stay acyclic",
            ) from exc
    return path


def log_artifact(run: "Run", path: str | os.PathLike[str], *, name: str, type: str | None = None,
                 message: str | None = None, metadata: dict[str, Any] | None = None,
                 aliases: Sequence[str] = (), tags: Sequence[str] = ()) -> Version:
    """Commit a file or folder as a version of artifact ``name`` and record that ``run`` produced it."""
    if message is None:
        message = f"Output of run {run.project}/{run.name} ({run.id})"
    repo = run.repo
    with critical():
        version = repo.add(path, name=name, type=type, message=message, metadata=metadata, aliases=aliases,
                           tags=tags)
        now = _now()
        try:
            repo.db.run_write(lambda conn: edges.record_produced(conn, run.id, version.id, now=now))
        except Conflict as exc:
            raise _refused(
                run, version, exc,
                f"cannot have produced {version.ref}: it used that version (the content logged is identical "
                "to an input, or was made from it), and lineage must stay acyclic; the version itself is committed",
            ) from exc
    return version


def log_dataset(run: "Run", data: Any, *, name: str, message: str | None = None, type: str = "dataset",
                metadata: dict[str, Any] | None = None, aliases: Sequence[str] = (),
                tags: Sequence[str] = (), filename: str | None = None) -> Version:
    """Commit a DataFrame or Table (as Parquet), or an existing path, as an output of ``run`` (``Run.log_dataset``)."""
    if isinstance(data, (str, os.PathLike)):
        return run.log_artifact(data, name=name, type=type, message=message, metadata=metadata,
                                aliases=aliases, tags=tags)
    if not is_table(data):
        raise InvalidInput(
            f"log_dataset takes a pandas DataFrame, a pyarrow Table or a path, not {data.__class__.__name__}",
            field="data",
        )
    fname = filename if filename is not None else f"{validate_name(name)}.parquet"
    if "/" in validate_relpath(fname):
        raise InvalidInput(f"filename {fname!r} must be a plain file name, without '/'", field="filename")
    meta_dir = run.repo.meta_dir
    tmp_root = meta_dir / "tmp"
    with repo_lock(meta_dir, exclusive=False):  # gc empties tmp/ only under the exclusive lock
        tmp_root.mkdir(exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="dataset-", dir=tmp_root))
        try:
            target = folder / fname
            info = write_parquet(data, target)
            meta = {**info, **(metadata or {})}
            return run.log_artifact(target, name=name, type=type, message=message, metadata=meta,
                                    aliases=aliases, tags=tags)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _resolve(repo: "Repo", ref: str | Version) -> tuple[Version, VersionRef | None]:
    if isinstance(ref, Version):
        return ref, None
    parsed = parse_ref(ref)
    with repo.db.read() as conn:
        return catalog.resolve(conn, parsed), parsed


def _refused(run: "Run", version: Version, exc: Conflict, why: str) -> Conflict:
    """The edge from ``run`` to ``version`` would close a cycle: say so, with the cycle the lineage check found."""
    cycle_text = exc.fields.get("cycle_text")
    return Conflict(
        f"run {run.name} ({run.id}) {why}" + (f" (cycle: {cycle_text})" if cycle_text else ""),
        run=run.id, ref=version.ref, cycle=exc.fields.get("cycle"),
    )
