"""Loading an ONNX model for a diff: a ``.onnx`` file, a folder holding one, or a ``ModelProto``.

External data is not loaded with the graph; each initializer's bytes are read when it is compared
(``numpy_helper.to_array(tensor, base_dir)``), one at a time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlark.diff.deps import require
from mlark.diff.errors import InputNotFound, UnreadableFile
from mlark.errors import InvalidInput


@dataclass
class LoadedModel:
    label: str
    model: Any  # onnx.ModelProto
    base_dir: str


def _onnx() -> Any:
    return require("onnx", purpose="diffing ONNX models")


def _find_file(folder: Path) -> Path:
    files = sorted(p for p in folder.rglob("*.onnx") if p.is_file())
    if len(files) != 1:
        what = "no .onnx file" if not files else f"{len(files)} .onnx files ({', '.join(p.name for p in files[:5])})"
        raise UnreadableFile(str(folder), "ONNX", f"the folder holds {what}; pass the file")
    return files[0]


def load(obj: Any) -> LoadedModel:
    onnx = _onnx()
    if isinstance(obj, onnx.ModelProto):
        return LoadedModel(label=f"<model {obj.graph.name or 'unnamed'}>", model=obj, base_dir="")
    if not isinstance(obj, (str, os.PathLike)):
        raise InvalidInput(f"an ONNX model to compare must be a path or an onnx.ModelProto, got {type(obj).__name__}",
                           field="model")
    path = Path(obj)
    if not path.exists():
        raise InputNotFound(f"no such file or folder: {obj}", path=str(obj))
    if path.is_dir():
        path = _find_file(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError, OSError, onnx's own errors
        raise UnreadableFile(str(path), "ONNX", f"{type(exc).__name__}: {exc}") from exc
    if not model.HasField("graph") or (not model.ir_version and not len(model.opset_import)):
        raise UnreadableFile(str(path), "ONNX", "it parses as protobuf but holds no ONNX model "
                             "(no graph, IR version or opset)")
    return LoadedModel(label=str(obj), model=model, base_dir=str(path.parent))
