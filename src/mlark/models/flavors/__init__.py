"""Flavors: one module per framework, imported only when used.

Each flavor module defines ``NAME``, ``FRAMEWORK`` (the distribution whose version is recorded),
``REQUIREMENTS`` (distributions pinned into the manifest), ``EXTRA`` (the mlark extra that
installs them), ``matches(model)``, ``save(model, folder, options) -> Saved`` and
``load(files, config, trust) -> Predictor`` (see :mod:`mlark.models.flavors.base`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mlark.models.errors import UnknownFlavor

FLAVORS: dict[str, str] = {
    "sklearn": "mlark.models.flavors.sklearn",
    "pytorch": "mlark.models.flavors.pytorch",
    "onnx": "mlark.models.flavors.onnx",
    "sentence_transformers": "mlark.models.flavors.sentence_transformers",
    "python": "mlark.models.flavors.python",
}
# Checked in this order when the flavor is inferred: the most specific first ("python" takes
# anything with a predict method, and a SentenceTransformer is also a torch Module).
INFERENCE_ORDER = ("sentence_transformers", "pytorch", "sklearn", "onnx", "python")


def known_flavors() -> list[str]:
    return sorted(FLAVORS)


def get_flavor(name: object) -> ModuleType:
    if not isinstance(name, str) or name not in FLAVORS:
        raise UnknownFlavor(
            f"unknown flavor {name!r}; known flavors: {', '.join(known_flavors())}",
            field="flavor",
            value=str(name),
            known=known_flavors(),
        )
    return importlib.import_module(FLAVORS[name])


def infer_flavor(model: object) -> ModuleType:
    """The flavor for an in-memory model. Checks only frameworks already imported (cheap, no imports)."""
    for name in INFERENCE_ORDER:
        module = get_flavor(name)
        if module.matches(model):
            return module
    raise UnknownFlavor(
        f"cannot tell which flavor saves a {type(model).__module__}.{type(model).__qualname__}; "
        f"pass flavor= one of {', '.join(known_flavors())} (a plain class needs a predict method)",
        field="flavor",
        known=known_flavors(),
    )
