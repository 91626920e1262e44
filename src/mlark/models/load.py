"""``load_model``: check a model folder against its manifest, then let its flavor load it."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlark.errors import InvalidInput
from mlark.models.errors import ModelIntegrityError, ModelNotFound
from mlark.models.files import ModelFiles, verify
from mlark.models.manifest import MANIFEST_NAME, Manifest
from mlark.models.model import Model
from mlark.models.safety import parse_trust


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """The manifest of the model folder at ``path`` (decoded and checked, files not verified)."""
    folder = _folder(path)
    manifest_path = folder / MANIFEST_NAME
    try:
        if manifest_path.is_symlink() or not manifest_path.is_file():
            raise FileNotFoundError
        data = manifest_path.read_bytes()
    except FileNotFoundError:
        raise ModelNotFound(
            f"{folder} is not a model folder: it has no {MANIFEST_NAME} (save one with mlark.models.save_model)",
            path=str(folder),
        ) from None
    return Manifest.decode(data)


def verify_model(path: str | os.PathLike[str]) -> Manifest:
    """Check every file of the model folder against its manifest; return the manifest. Loads nothing."""
    from mlark.models.flavors import get_flavor

    folder = _folder(path)
    manifest = read_manifest(folder)
    get_flavor(manifest.flavor)  # an unknown flavor is refused before any file is read
    verify(folder, manifest)
    return manifest


def load_model(path: str | os.PathLike[str], *, trust: str | Iterable[str] | None = None,
               cache: str | os.PathLike[str] | None = None) -> Model:
    """Load the model folder at ``path``.

    Order: the manifest is decoded; an unknown flavor is refused naming the known ones; every file
    is checked against its size and BLAKE3 digest (a missing, changed or unlisted file is refused
    naming it); then the flavor loads the files. Nothing that can run code is loaded unless it is
    safe by construction (skops with known types, safetensors, ONNX, installed classes) or the
    caller names it in ``trust`` (``"pickle"``, ``"joblib"``, ``"cloudpickle"``, or a type name a
    skops file may contain). ``trust`` is never read from the folder. ``cache`` is a folder where
    flavors may keep data derived from the verified files, so the next load is faster (the sklearn
    flavor keeps the tree arrays of forests saved without them there).
    """
    from mlark.models.flavors import get_flavor

    allowed = parse_trust(trust)
    folder = _folder(path)
    manifest = verify_model(folder)
    flavor = get_flavor(manifest.flavor)
    if not isinstance(manifest.flavor_config, dict):
        raise ModelIntegrityError(f"{MANIFEST_NAME}: flavor_config must be an object", file=MANIFEST_NAME)
    files = ModelFiles(folder, manifest, None if cache is None else Path(cache))
    predictor = flavor.load(files, manifest.flavor_config, allowed)
    return Model(folder, manifest, predictor)


def _folder(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInput(f"path must be a folder path, got {type(path).__name__}", field="path")
    folder = Path(path).expanduser().absolute()
    if not folder.is_dir():
        hint = ""
        if isinstance(path, str) and path.startswith("models:/"):
            hint = "; references to registered models are resolved by the repository (mlark.load_model)"
        raise ModelNotFound(f"no model folder at {path}{hint}", path=str(path))
    return folder
