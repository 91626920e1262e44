"""Named tensors to compare, read lazily and in element ranges.

- ``.safetensors``: the header is parsed (and the file checked with the ``safetensors`` library);
  each tensor is a read-only memory map of its bytes, so a model bigger than memory diffs in
  bounded memory.
- PyTorch ``.pt`` / ``.pth`` / ``.bin``: ``torch.load(weights_only=True, mmap=True)`` only; a file
  that needs arbitrary unpickling is refused. Nested dicts and lists are flattened into dotted
  names (``optimizer.state.0.exp_avg``); non-tensor leaves (epoch, lr) are compared as values.
- a folder: its ``.safetensors`` files (sharded checkpoints), or else its PyTorch files, merged.
- in memory: a mapping of names to numpy arrays or torch tensors (also ONNX initializers).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlark.diff.deps import require
from mlark.diff.errors import InputNotFound, UnreadableFile
from mlark.diff.tensors.dtypes import ITEMSIZE, SAFETENSORS
from mlark.errors import InvalidInput

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
MAX_HEADER = 100 * 1024 * 1024


@dataclass
class TensorEntry:
    """One tensor: canonical dtype name, shape, and a reader of raw element ranges (uint8 bytes)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    read_raw: Callable[[int, int], Any]  # (start, stop) in elements -> uint8 numpy array
    read_float: Callable[[int, int], Any] | None = None  # (start, stop) -> float64/complex128, or None
    close: Callable[[], None] | None = None  # drops what reading loaded (called after the comparison)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= int(d)
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * ITEMSIZE.get(self.dtype, 0)


@dataclass
class TensorSet:
    label: str
    format: str
    tensors: dict[str, TensorEntry]
    values: dict[str, Any]  # non-tensor leaves and file metadata


# -- safetensors ------------------------------------------------------------------------------------


def _safetensors_header(path: Path) -> tuple[dict[str, Any], int]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise UnreadableFile(str(path), "safetensors", "file is shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise UnreadableFile(str(path), "safetensors", f"header length {n} does not fit a {size}-byte file")
        try:
            header = json.loads(fh.read(n))
        except (ValueError, UnicodeDecodeError) as exc:
            raise UnreadableFile(str(path), "safetensors", f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise UnreadableFile(str(path), "safetensors", "header is not a JSON object")
    return header, 8 + n


def _check_with_library(path: Path) -> None:
    st = require("safetensors", purpose="reading safetensors files")
    try:
        with st.safe_open(str(path), framework="numpy") as fh:
            list(fh.keys())
    except Exception as exc:  # the library raises SafetensorError and others for malformed files
        raise UnreadableFile(str(path), "safetensors", str(exc)) from exc


def read_safetensors(path: Path) -> TensorSet:
    np = require("numpy", purpose="comparing tensors")
    _check_with_library(path)
    header, data_start = _safetensors_header(path)
    meta = header.pop("__metadata__", None) or {}
    size = path.stat().st_size
    tensors: dict[str, TensorEntry] = {}
    mm = np.memmap(path, dtype=np.uint8, mode="r") if size > 0 else np.zeros(0, dtype=np.uint8)
    for name, info in header.items():
        try:
            tag, shape, (begin, end) = info["dtype"], tuple(int(d) for d in info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError) as exc:
            raise UnreadableFile(str(path), "safetensors", f"bad header entry for {name!r}: {exc}") from exc
        dtype = SAFETENSORS.get(tag, tag.lower())
        itemsize = ITEMSIZE.get(dtype)
        lo, hi = data_start + int(begin), data_start + int(end)
        if not (data_start <= lo <= hi <= size):
            raise UnreadableFile(str(path), "safetensors", f"tensor {name!r} lies outside the file")
        blob = mm[lo:hi]
        tensors[name] = TensorEntry(
            name=name, dtype=dtype, shape=shape if itemsize else (hi - lo,),  # an unknown type: its bytes
            read_raw=_slicer(blob, itemsize or 1),
            read_float=_float_reader(blob, itemsize, dtype) if itemsize else None,
        )
    return TensorSet(label=str(path), format="safetensors", tensors=tensors,
                     values={f"__metadata__.{k}": v for k, v in meta.items()})


def _slicer(blob: Any, itemsize: int) -> Callable[[int, int], Any]:
    def read(start: int, stop: int) -> Any:
        return blob[start * itemsize: stop * itemsize]

    return read


def _float_reader(blob: Any, itemsize: int, dtype: str) -> Callable[[int, int], Any]:
    from mlark.diff.tensors.dtypes import to_float

    def read(start: int, stop: int) -> Any:
        return to_float(blob[start * itemsize: stop * itemsize], dtype)

    return read


# -- numpy and torch in memory ------------------------------------------------------------------------


def array_entry(name: str, arr: Any) -> TensorEntry:
    np = require("numpy", purpose="comparing tensors")
    from mlark.diff.tensors.dtypes import to_float

    flat = np.ascontiguousarray(arr).reshape(-1)
    dtype = flat.dtype.name if flat.dtype.kind != "V" else str(flat.dtype)
    if dtype == "object" or flat.dtype.kind in "OUS":
        raise InvalidInput(f"tensor {name!r} holds {flat.dtype} values, not numbers", field="tensor", name=name)

    def raw(start: int, stop: int) -> Any:
        return flat[start:stop].view(np.uint8)

    def flt(start: int, stop: int) -> Any:
        return to_float(flat[start:stop], dtype)

    return TensorEntry(name=name, dtype=dtype, shape=tuple(int(d) for d in arr.shape), read_raw=raw, read_float=flt)


def torch_entry(name: str, t: Any) -> TensorEntry:
    torch = require("torch", purpose="reading PyTorch state dicts")
    if t.layout != torch.strided:
        t = t.to_dense()
    if t.is_quantized:
        t = t.dequantize()
    flat = t.detach().reshape(-1)
    dtype = str(t.dtype).removeprefix("torch.")

    def raw(start: int, stop: int) -> Any:
        part = flat[start:stop].contiguous()
        return part.view(torch.uint8).numpy() if part.numel() else part.numpy().view("uint8")

    def flt(start: int, stop: int) -> Any:
        part = flat[start:stop]
        if part.is_complex():
            return part.to(torch.complex128).numpy()
        return part.to(torch.float64).numpy()

    return TensorEntry(name=name, dtype=dtype, shape=tuple(int(d) for d in t.shape), read_raw=raw, read_float=flt)


def _flatten(obj: Any, prefix: str, tensors: dict[str, TensorEntry], values: dict[str, Any]) -> None:
    torch = _torch_if_loaded()
    np = require("numpy", purpose="comparing tensors")
    if torch is not None and isinstance(obj, torch.Tensor):
        tensors[prefix] = torch_entry(prefix, obj)
    elif isinstance(obj, np.ndarray):
        tensors[prefix] = array_entry(prefix, obj)
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), tensors, values)
    elif isinstance(obj, (list, tuple)) and not (torch is not None and isinstance(obj, torch.Size)):
        if not obj:
            values[prefix] = []
        for i, v in enumerate(obj):
            _flatten(v, f"{prefix}.{i}" if prefix else str(i), tensors, values)
    else:
        values[prefix] = obj if isinstance(obj, (int, float, str, bool, type(None))) else repr(obj)


def _torch_if_loaded() -> Any | None:
    import sys

    return sys.modules.get("torch")


def from_mapping(obj: Mapping[str, Any], label: str = "<state dict>") -> TensorSet:
    tensors: dict[str, TensorEntry] = {}
    values: dict[str, Any] = {}
    _flatten(obj, "", tensors, values)
    return TensorSet(label=label, format="memory", tensors=tensors, values=values)


def read_torch(path: Path) -> TensorSet:
    torch = require("torch", purpose="reading PyTorch state dicts")
    import pickle

    def load(mmap: bool) -> Any:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)

    try:
        try:
            obj = load(True)
        except RuntimeError as exc:
            if "mmap" not in str(exc).lower() and "zip" not in str(exc).lower():
                raise
            obj = load(False)  # legacy (pre-zip) serialization cannot be memory-mapped
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreadableFile(
            str(path), "PyTorch state dict",
            "it needs more than weights_only=True allows (mlark never unpickles arbitrary objects); "
            f"torch says: {first}") from exc
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError) as exc:
        raise UnreadableFile(str(path), "PyTorch state dict", f"{type(exc).__name__}: {exc}") from exc
    if isinstance(obj, torch.Tensor):
        obj = {"": obj}
    elif not isinstance(obj, (Mapping, list, tuple)):
        raise UnreadableFile(str(path), "PyTorch state dict", f"it holds a {type(obj).__name__}, not a dict of tensors")
    ts = from_mapping(obj, str(path))
    ts.format = "pytorch"
    return ts


# -- paths --------------------------------------------------------------------------------------------


def _weight_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*.safetensors") if p.is_file())
    if not files:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in TORCH_SUFFIXES)
    return files


def _read_file(path: Path) -> TensorSet:
    if path.suffix.lower() == ".safetensors":
        return read_safetensors(path)
    if path.suffix.lower() in TORCH_SUFFIXES:
        return read_torch(path)
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:2] == b"PK":
        return read_torch(path)
    if len(head) >= 9 and head[8:9] == b"{":
        return read_safetensors(path)
    raise UnreadableFile(str(path), "state dict", "not a .safetensors or PyTorch (.pt, .pth, .bin) file")


def open_tensors(obj: Any) -> TensorSet:
    """A :class:`TensorSet` for a file, a folder of weight files, or an in-memory mapping."""
    if isinstance(obj, Mapping):
        return from_mapping(obj)
    if not isinstance(obj, (str, os.PathLike)):
        raise InvalidInput(f"weights to compare must be a path or a mapping of tensors, got {type(obj).__name__}",
                           field="state_dict")
    path = Path(obj)
    if not path.exists():
        raise InputNotFound(f"no such file or folder: {obj}", path=str(obj))
    if path.is_file():
        ts = _read_file(path)
        ts.label = str(obj)
        return ts
    files = _weight_files(path)
    if not files:
        raise UnreadableFile(str(obj), "state dict", "the folder holds no .safetensors or PyTorch weight files")
    merged = TensorSet(label=str(obj), format="", tensors={}, values={})
    formats = set()
    owner: dict[str, Path] = {}
    for f in files:
        part = _read_file(f)
        formats.add(part.format)
        for name, entry in part.tensors.items():
            if name in owner:
                raise UnreadableFile(str(obj), "state dict",
                                     f"tensor {name!r} is in both {owner[name].name} and {f.name}")
            owner[name] = f
            merged.tensors[name] = entry
        rel = f.relative_to(path).as_posix()
        merged.values.update({(f"{rel}:{k}" if len(files) > 1 else k): v for k, v in part.values.items()})
    merged.format = "+".join(sorted(formats))
    return merged


def iter_chunks(total: int, chunk: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, chunk):
        yield start, min(total, start + chunk)
