"""mlark.models: one saved format for every framework, safe loading, one ``predict`` interface.

>>> from mlark.models import save_model, load_model
>>> save_model(clf, "out/churn-rf", input_example=X.head())      # a folder: model files + mlark-model.json
>>> model = load_model("out/churn-rf")                           # checks every file's digest first
>>> model.predict(df)                                            # checked against the signature

Importing this package imports no framework (and neither numpy nor pandas); each flavor imports
its framework when it saves or loads. The format, trust model and signature rules are in
docs/design/models.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlark.core.lazy import lazy_exports

if TYPE_CHECKING:
    from mlark.models.flavors import known_flavors
    from mlark.models.infer import infer_signature
    from mlark.models.load import load_model, read_manifest, verify_model
    from mlark.models.manifest import MANIFEST_NAME, FileRecord, Manifest
    from mlark.models.model import Model
    from mlark.models.save import save_model
    from mlark.models.signature import Schema, Signature, Spec

_LAZY = {
    "save_model": ("mlark.models.save", "save_model"),
    "load_model": ("mlark.models.load", "load_model"),
    "read_manifest": ("mlark.models.load", "read_manifest"),
    "verify_model": ("mlark.models.load", "verify_model"),
    "Model": ("mlark.models.model", "Model"),
    "Manifest": ("mlark.models.manifest", "Manifest"),
    "FileRecord": ("mlark.models.manifest", "FileRecord"),
    "MANIFEST_NAME": ("mlark.models.manifest", "MANIFEST_NAME"),
    "Signature": ("mlark.models.signature", "Signature"),
    "Schema": ("mlark.models.signature", "Schema"),
    "Spec": ("mlark.models.signature", "Spec"),
    "infer_signature": ("mlark.models.infer", "infer_signature"),
    "known_flavors": ("mlark.models.flavors", "known_flavors"),
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "MANIFEST_NAME",
    "FileRecord",
    "Manifest",
    "Model",
    "Schema",
    "Signature",
    "Spec",
    "infer_signature",
    "known_flavors",
    "load_model",
    "read_manifest",
    "save_model",
    "verify_model",
]
assert sorted(__all__) == sorted(_LAZY)
