"""``save_model``: write a model folder (model files + ``mlark-model.json``) in one atomic step."""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

from mlark.errors import InvalidInput
from mlark.models import environment
from mlark.models.errors import ModelPathExists, ModelWarning
from mlark.models.files import describe
from mlark.models.manifest import MANIFEST_NAME, Manifest, check_metadata, check_run_id
from mlark.models.signature import Signature


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: Signature | dict[str, Any] | None = None,
    requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    run_id: str | None = None,
    **flavor_options: Any,
) -> Manifest:
    """Save ``model`` as a model folder at ``path`` and return its manifest.

    ``path`` must not exist or be an empty folder. ``flavor`` is inferred from the model's type
    when not given. The signature is, in order: ``signature`` if given; what the flavor knows by
    itself (an ONNX graph, a sentence encoder); inferred from ``input_example`` (the outputs by
    running the model on it). ``requirements`` adds pip lines to the pinned framework ones.
    ``flavor_options`` go to the flavor (for example ``serialization="pickle"`` or
    ``init_args={...}``); see docs/design/models.md.
    """
    from mlark import __version__
    from mlark.models.flavors import get_flavor, infer_flavor

    target = _check_target(path)
    module = infer_flavor(model) if flavor is None else get_flavor(flavor)
    explicit = None if signature is None else Signature.coerce(signature)
    extra_requirements = environment.check_requirements(requirements)
    meta = check_metadata(metadata)
    run = check_run_id(run_id)

    tmp = target.parent / f".{target.name}.mlark-tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir(parents=False)
    try:
        saved = module.save(model, tmp, dict(flavor_options))
        sig = explicit or saved.signature
        example_name = None
        if input_example is not None:
            from mlark.models.example import EXAMPLE_NAME, encode_example

            example_name = EXAMPLE_NAME
            (tmp / EXAMPLE_NAME).write_bytes(encode_example(input_example))
            sig = _check_or_infer(sig, explicit is not None, input_example, saved.predictor)
        pinned = environment.pinned([*module.REQUIREMENTS, *saved.requirements])
        manifest = Manifest(
            flavor=module.NAME,
            flavor_config=_json(saved.config),
            framework=module.FRAMEWORK,
            framework_version=saved.framework_version or environment.installed_version(module.FRAMEWORK) or "unknown",
            python=environment.python_version(),
            requirements=tuple(environment.merge_requirements(pinned, extra_requirements)),
            files=describe(tmp),
            signature=sig,
            input_example=example_name,
            run_id=run,
            metadata=meta,
            mlark_version=__version__,
        )
        (tmp / MANIFEST_NAME).write_bytes(manifest.encode())
        _fsync_tree(tmp)
        if target.exists():
            target.rmdir()  # empty (checked above); rename() cannot replace a non-empty folder anyway
        os.rename(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _check_target(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInput(f"path must be a folder path, got {type(path).__name__}", field="path")
    target = Path(path).expanduser().absolute()
    if target.exists() or target.is_symlink():
        if not target.is_dir() or target.is_symlink():
            raise ModelPathExists(
                f"{target} exists and is not a folder; save_model writes a new folder", path=str(target)
            )
        if any(target.iterdir()):
            raise ModelPathExists(
                f"{target} is not empty; save_model writes into a new or empty folder and never overwrites",
                path=str(target),
            )
    if not target.parent.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _check_or_infer(sig: Signature | None, explicit: bool, example: Any, predictor: Any) -> Signature | None:
    """Check the example fits a known signature, or infer one from it (outputs by running the model)."""
    from mlark.models.enforce import enforce
    from mlark.models.infer import infer_output_schema, infer_schema

    if sig is not None:
        prepared = enforce(sig.inputs, example)  # an example that does not fit is a mistake worth reporting now
        if sig.outputs is not None or explicit:
            return sig
        inputs = sig.inputs
    else:
        inputs = infer_schema(example)
        prepared = enforce(inputs, example)
    try:
        output = predictor.predict(prepared)
    except Exception as exc:  # the model's own error: keep the inputs, say why outputs are unknown
        warnings.warn(
            ModelWarning(
                f"the model failed on the input example ({type(exc).__name__}: {exc}); "
                "the signature records inputs only"
            ),
            stacklevel=3,
        )
        return Signature(inputs)
    return Signature(inputs, infer_output_schema(output))


def _json(config: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(config, allow_nan=False))  # type: ignore[no-any-return]


def _fsync_tree(folder: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(folder):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
