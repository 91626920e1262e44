"""Models in the repository: ``run.log_model`` (save + commit as a ``model`` version) and loading a model
by reference (``models:/churn@production``, ``churn-rf@best``, ``churn-rf:v3``) or from a folder.

The folder format, flavors, trust and signatures are :mod:`mlark.models`'; this module only joins
them with versions: a referenced version is materialised like ``run.use`` does (verified, in the run
cache ``.mlark/cache/versions/<digest>/``) and the folder is then loaded with
:func:`mlark.models.load_model`, which checks every file against the manifest again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from mlark.core.refs import RegistryRef, VersionRef, is_registry_ref, parse_any_ref
from mlark.core.types import Version
from mlark.errors import InvalidInput, InvalidRef
from mlark.ops.lock import repo_lock

if TYPE_CHECKING:
    from mlark.models.model import Model
    from mlark.ops.repo import Repo
    from mlark.ops.runs import Run

MODEL_TYPE = "model"
#: Folder name of the model inside the temporary folder log_model saves into.
_FOLDER = "model"

__all__ = ["is_folder", "load_model", "log_model", "model_path", "target_of"]


# --------------------------------------------------------------------------- logging


def log_model(run: "Run", model: Any, *, name: str, input_example: Any = None, signature: Any = None,
              aliases: Sequence[str] = (), message: str | None = None, tags: Sequence[str] = (),
              flavor: str | None = None, requirements: list[str] | None = None,
              metadata: dict[str, Any] | None = None, **flavor_options: Any) -> Version:
    """Save ``model`` with :func:`mlark.models.save_model` (``run_id`` = the run) and commit the folder as a
    version of artifact ``name`` of type ``model``, produced by the run. The version's metadata is the
    manifest's summary (flavor, framework, signature, run id, size) plus the caller's ``metadata``.
    Identical content (same model, same example) is the same version.
    """
    from mlark.core.names import validate_name
    from mlark.models import save_model

    validate_name(name)  # before any work: a bad name is refused with nothing written
    repo = run.repo
    tmp_root = repo.meta_dir / "tmp"
    with repo_lock(repo.meta_dir, exclusive=False):  # gc empties tmp/ only under the exclusive lock
        tmp_root.mkdir(exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="model-", dir=tmp_root))
        try:
            target = folder / _FOLDER
            manifest = save_model(model, target, flavor=flavor, input_example=input_example, signature=signature,
                                  requirements=requirements, metadata=metadata, run_id=run.id, **flavor_options)
            summary = manifest.summary()
            if manifest.metadata:
                summary["metadata"] = manifest.metadata
            if message is None:
                message = f"{manifest.flavor} model logged by run {run.project}/{run.name} ({run.id})"
            return run.log_artifact(target, name=name, type=MODEL_TYPE, message=message, metadata=summary,
                                    aliases=aliases, tags=tags)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- loading


def is_folder(ref_or_path: object) -> bool:
    """True when ``ref_or_path`` means a folder: a path object, or a string naming an existing folder
    (a ``models:/`` reference never does)."""
    if isinstance(ref_or_path, os.PathLike):
        return True
    if not isinstance(ref_or_path, str) or not ref_or_path or is_registry_ref(ref_or_path):
        return False
    try:
        return os.path.isdir(ref_or_path)
    except (OSError, ValueError):
        return False


def target_of(ref_or_path: object) -> Path | RegistryRef | VersionRef:
    """What ``mlark.load_model`` is given: a folder, a registered model reference, or a version reference."""
    if is_folder(ref_or_path):
        return Path(ref_or_path)  # type: ignore[arg-type]
    if not isinstance(ref_or_path, str):
        raise InvalidInput(
            "load_model takes a reference (models:/churn@production, churn-rf@best, churn-rf:v3) or a folder path, "
            f"not {type(ref_or_path).__name__}",
            field="ref",
        )
    try:
        return parse_any_ref(ref_or_path)
    except InvalidRef as exc:
        if is_registry_ref(ref_or_path):
            raise
        if os.sep in ref_or_path or ref_or_path.startswith("."):
            from mlark.models.errors import ModelNotFound

            raise ModelNotFound(f"no model folder at {ref_or_path}", path=ref_or_path) from None
        raise InvalidRef(
            f"{exc} (or give the path of a model folder)", **exc.fields
        ) from None


def model_path(repo: "Repo", target: RegistryRef | VersionRef | str) -> tuple[Version, Path]:
    """The verified local folder (or sub-folder, for ``NAME:PATH@ALIAS``) of a model version."""
    from mlark.ops.run_inputs import materialise, sub_path

    parsed = parse_any_ref(target) if isinstance(target, str) else target
    if isinstance(parsed, RegistryRef):
        from mlark.ops.registry import resolve_version

        version = resolve_version(repo, parsed)
    else:
        with repo.db.read() as conn:
            from mlark.meta import catalog

            version = catalog.resolve(conn, parsed)
    if version.type != MODEL_TYPE:
        raise InvalidInput(
            f"{version.ref} is a version of {version.type!r} artifact {version.name}, not a model "
            f"(models are versions of type {MODEL_TYPE!r}, logged with run.log_model)",
            field="ref",
            ref=version.ref,
            type=version.type,
        )
    base = materialise(repo, version)
    if isinstance(parsed, VersionRef) and parsed.path is not None:
        return version, sub_path(repo, version, base, parsed.path)
    return version, base


def load_model(repo: "Repo | None", ref_or_path: Any, *, trust: str | Iterable[str] | None = None) -> "Model":
    """Load a model from a folder, or from a version reference through ``repo``.

    References: ``models:/churn@production`` (a stage or alias), ``models:/churn/2``, ``churn-rf@best``,
    ``churn-rf:v3``, ``churn-rf:1f3a9c``. ``trust`` is passed to :func:`mlark.models.load_model`.
    """
    from mlark.models import load_model as load_folder
    from mlark.models.safety import parse_trust

    parse_trust(trust)  # a malformed trust= is refused before anything is materialised
    target = target_of(ref_or_path)
    if isinstance(target, Path):
        return load_folder(target, trust=trust)
    if repo is None:
        raise InvalidInput(f"loading {ref_or_path!r} needs a repository (repo=)", field="repo")
    from mlark.ops.run_inputs import model_cache

    _version, folder = model_path(repo, target)
    return load_folder(folder, trust=trust, cache=model_cache(repo))
