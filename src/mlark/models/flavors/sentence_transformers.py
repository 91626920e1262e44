"""Sentence-transformers encoders (for example ``all-MiniLM-L6-v2``): text in, embeddings out.

Saved with the library's own ``save`` (weights in safetensors, tokenizer and configs as JSON)
into the ``model/`` folder of the model folder. Before the library reads that folder, loading
refuses what could run code: a weights file in a pickle format (``.bin``, ``.pt``, ...) unless
``trust=["pickle"]``, a ``modules.json`` entry outside the library's own module classes, and a
config with ``auto_map`` (remote code). It loads with ``local_files_only=True`` and
``trust_remote_code=False``, so nothing is downloaded and no code is fetched. Every safetensors
file's header is checked first.

``predict`` takes texts: a list or 1-D array of strings, a one-column DataFrame, or a dict with
one key; it returns a float32 array of shape ``[n, dimension]``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlark.errors import InvalidInput
from mlark.models.errors import ModelIntegrityError, UntrustedModel
from mlark.models.files import ModelFiles
from mlark.models.flavors.base import Saved, check_config_keys, config_value, loaded, require, take_options
from mlark.models.safety import PICKLE_SUFFIXES, SAFETENSORS_HEADER_MAX, Trust, check_safetensors
from mlark.models.signature import Schema, Signature, Spec

NAME = "sentence_transformers"
FRAMEWORK = "sentence-transformers"
REQUIREMENTS = ("sentence-transformers", "transformers", "tokenizers", "torch", "safetensors", "numpy")
EXTRA = "transformers"
FOLDER = "model"
# The library's own module classes; a modules.json type must end in one of these names.
MODULE_CLASSES = frozenset(
    {
        "Transformer", "Pooling", "Normalize", "Dense", "LayerNorm", "Dropout", "WordEmbeddings",
        "WordWeights", "StaticEmbedding", "CNN", "LSTM", "BoW", "WeightedLayerPooling", "Router", "Asym",
        "CLIPModel", "InputModule", "Module",
    }
)  # fmt: skip
_MODULE_TYPE = re.compile(r"^sentence_transformers(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def matches(model: object) -> bool:
    module = loaded("sentence_transformers")
    return module is not None and isinstance(model, module.SentenceTransformer)


def save(model: Any, folder: Path, options: dict[str, Any]) -> Saved:
    require("sentence_transformers", extra=EXTRA, package="sentence-transformers")
    take_options(NAME, options, {})
    if not matches(model):
        raise InvalidInput(
            f"the sentence_transformers flavor saves a SentenceTransformer, got {type(model).__name__}", field="model"
        )
    target = folder / FOLDER
    model.save(str(target), create_model_card=False, safe_serialization=True)
    for path in target.rglob("*"):
        if path.is_file():
            path.chmod(0o644)  # the library writes weights 0600; a model folder is shared like any version
    get_dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dimension = get_dimension()
    signature = Signature(
        Schema("tensors", (Spec("string", None, (-1,)),)),
        Schema("tensors", (Spec("float32", None, (-1, int(dimension)) if dimension else (-1, -1)),)),
    )
    return Saved(config={"folder": FOLDER}, predictor=_Predictor(model), signature=signature)


def load(files: ModelFiles, config: dict[str, Any], trust: Trust) -> _Predictor:
    check_config_keys(config, {"folder"})
    folder = config_value(config, "folder", str)
    root = files.subfolder(folder)
    listed = [f.path for f in files.manifest.files if f.path.startswith(folder + "/")]
    _refuse_code(files, folder, listed, trust)
    st = require("sentence_transformers", extra=EXTRA, package="sentence-transformers")
    try:
        model = st.SentenceTransformer(str(root), device="cpu", local_files_only=True, trust_remote_code=False)
    except Exception as exc:
        raise ModelIntegrityError(f"sentence-transformers cannot load {folder!r}: {type(exc).__name__}: {exc}") from exc
    model.eval()
    return _Predictor(model)


def _refuse_code(files: ModelFiles, folder: str, listed: list[str], trust: Trust) -> None:
    pickled = [p for p in listed if p.lower().endswith(PICKLE_SUFFIXES)]
    if pickled and not trust.allows("pickle"):
        raise UntrustedModel(
            f"the encoder folder holds pickle-format weights ({', '.join(pickled)}); loading them can run code. "
            "Pass trust=['pickle'] only if you trust who saved them",
            untrusted=["pickle"],
            file=pickled[0],
        )
    for rel in listed:
        if rel.endswith(".safetensors"):
            head, size = files.read_head(rel, 8)
            length = int.from_bytes(head[:8], "little") if len(head) == 8 else 0
            head, size = files.read_head(rel, 8 + min(length, SAFETENSORS_HEADER_MAX))
            check_safetensors(head, file=rel, total=size)
    modules = f"{folder}/modules.json"
    if modules in listed:
        try:
            entries = json.loads(files.read_bytes(modules))
            types = [e["type"] for e in entries]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelIntegrityError(f"{modules!r} does not decode: {exc}", file=modules) from exc
        refused = [
            t for t in types
            if not isinstance(t, str) or not _MODULE_TYPE.fullmatch(t) or t.rsplit(".", 1)[-1] not in MODULE_CLASSES
        ]  # fmt: skip
        refused = [t for t in refused if not trust.allows(str(t))]
        if refused:
            raise UntrustedModel(
                f"{modules!r} names module classes outside sentence-transformers' own: {', '.join(map(str, refused))}; "
                f"importing them runs their code. If you trust them, pass trust={refused!r}",
                untrusted=refused,
                file=modules,
            )
    for rel in listed:
        if rel.endswith("config.json"):
            try:
                doc = json.loads(files.read_bytes(rel))
            except ValueError as exc:
                raise ModelIntegrityError(f"{rel!r} is not JSON: {exc}", file=rel) from exc
            if isinstance(doc, dict) and "auto_map" in doc:
                raise UntrustedModel(
                    f"{rel!r} asks for custom model code (auto_map); mlark never loads remote or custom code here",
                    untrusted=["auto_map"],
                    file=rel,
                )


class _Predictor:
    def __init__(self, model: Any) -> None:
        self.raw = model

    def predict(self, data: Any) -> Any:
        import numpy as np

        texts = _texts(data)
        return np.asarray(self.raw.encode(texts, convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)


def _texts(data: Any) -> list[str]:
    import numpy as np

    if hasattr(data, "columns"):
        if data.shape[1] != 1:
            raise InvalidInput("a sentence encoder takes one column of texts", field="data")
        data = data.iloc[:, 0].to_numpy()
    if isinstance(data, dict):
        if len(data) != 1:
            raise InvalidInput("a sentence encoder takes one list of texts", field="data")
        data = next(iter(data.values()))
    array = np.asarray(data, dtype=object).ravel()
    bad = next((v for v in array if not isinstance(v, str)), None)
    if bad is not None:
        raise InvalidInput(f"a sentence encoder takes texts; got {bad!r}", field="data")
    return [str(v) for v in array]
