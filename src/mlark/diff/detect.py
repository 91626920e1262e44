"""What kind of thing a path holds, and ``diff_paths``: the diff that fits two inputs of one kind.

Kinds: ``table`` (Parquet, CSV, Arrow IPC), ``state_dict`` (safetensors, PyTorch ``.pt``/``.pth``/
``.bin``/``.ckpt``) and ``onnx``. Known by suffix first, then by magic bytes (``PAR1``, ``ARROW1``,
a zip for PyTorch, a safetensors header); a folder is the kind of the files in it (one ``.onnx``
file makes it an ONNX model, weights a state dict, table files a table)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlark.diff.errors import InputNotFound, KindMismatch
from mlark.diff.result import DiffResult
from mlark.errors import InvalidInput

KINDS = ("table", "state_dict", "onnx")
_STATE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
_NAMES = {"table": "a table", "state_dict": "a state dict", "onnx": "an ONNX model"}


def _kind_of_file(path: Path) -> str | None:
    from mlark.diff.table.source import format_of_name

    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in _STATE_SUFFIXES:
        return "state_dict"
    if format_of_name(path.name):
        return "table"
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return None
    if head[:4] == b"PAR1" or head[:6] == b"ARROW1" or head[:4] == b"\xff\xff\xff\xff":
        return "table"
    if head[:2] == b"PK":
        return "state_dict"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (100 << 20):
        return "state_dict"
    return None


def detect_kind(obj: Any) -> str | None:
    """``table``, ``state_dict``, ``onnx``, or None when mlark cannot tell."""
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(obj, (pa.Table, pa.RecordBatch)):
        return "table"
    onnx = sys.modules.get("onnx")
    if onnx is not None and isinstance(obj, onnx.ModelProto):
        return "onnx"
    if isinstance(obj, Mapping):
        return "state_dict"
    if not isinstance(obj, (str, os.PathLike)):
        return None
    path = Path(obj)
    if not path.exists():
        raise InputNotFound(f"no such file or folder: {obj}", path=str(obj))
    if path.is_file():
        return _kind_of_file(path)
    kinds = set()
    for p in path.rglob("*"):
        if p.is_file() and not p.name.startswith((".", "_")):
            k = _kind_of_file(p) if p.suffix else None
            if k == "onnx":
                return "onnx"
            if k:
                kinds.add(k)
    if "state_dict" in kinds:
        return "state_dict"
    if kinds == {"table"}:
        return "table"
    return None


def diff_paths(a: Any, b: Any, *, kind: str | None = None, key: str | Sequence[str] | None = None,
               format: Any = None, sample: int = 10) -> DiffResult:
    """The diff that fits ``a`` and ``b``; both must be of one kind (``KindMismatch`` otherwise).

    ``key``, ``format`` and ``sample`` apply to tables only.
    """
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"unknown kind {kind!r}; allowed: {', '.join(KINDS)}", field="kind", allowed=list(KINDS))
    ka = kind or detect_kind(a)
    kb = kind or detect_kind(b)
    for obj, k in ((a, ka), (b, kb)):
        if k is None:
            raise InvalidInput(f"cannot tell what {obj} is; mlark compares tables (.parquet, .csv, .arrow), "
                               "state dicts (.safetensors, .pt) and ONNX models (.onnx)", field="path", path=str(obj))
    assert ka is not None and kb is not None
    if ka != kb:
        raise KindMismatch(f"cannot compare {_NAMES[ka]} ({a}) with {_NAMES[kb]} ({b})", kind_a=ka, kind_b=kb)
    if ka != "table" and (key is not None or format is not None):
        raise InvalidInput("key and format apply to tables only", field="key")
    if ka == "table":
        from mlark.diff.table import diff_tables

        return diff_tables(a, b, key=key, format=format, sample=sample)
    if ka == "state_dict":
        from mlark.diff.tensors import diff_state_dicts

        return diff_state_dicts(a, b)
    from mlark.diff.onnxgraph import diff_onnx

    return diff_onnx(a, b)
