"""What loading may run, and the checks that keep it that way (docs/design/models.md, "Trust").

Trust comes only from the caller: ``load_model(path, trust=[...])``. Nothing read from a model
folder widens it. Tokens:

- ``"pickle"``, ``"joblib"``, ``"cloudpickle"``: allow a file stored in that format to be
  unpickled. Unpickling runs whatever code the file names, so only trust files you made.
- a fully qualified type name (``"mypkg.MyTransformer"``): a type a skops file may contain beyond
  the ones the scikit-learn flavor trusts itself.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mlark.errors import InvalidInput
from mlark.models.errors import ModelIntegrityError, UntrustedModel

PICKLE_FORMATS = ("pickle", "joblib", "cloudpickle")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".bin", ".pt", ".pth", ".ckpt")
TRUST_MAX = 1000


@dataclass(frozen=True, slots=True)
class Trust:
    """What the caller trusts for one load. Empty by default."""

    names: frozenset[str] = frozenset()

    def allows(self, token: str) -> bool:
        return token in self.names

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self.names))


def parse_trust(trust: object) -> Trust:
    """``None``, a string, or an iterable of strings; ``True`` is refused: trust must name what it trusts."""
    if trust is None:
        return Trust()
    if isinstance(trust, Trust):
        return trust
    if isinstance(trust, bool):
        raise InvalidInput(
            "trust must name what is trusted, e.g. trust=['pickle'] or trust=['mypkg.MyTransformer']; "
            "trust=True is not accepted",
            field="trust",
        )
    items = [trust] if isinstance(trust, str) else trust
    try:
        names = list(items)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidInput(
            f"trust must be a string or a list of strings, got {type(trust).__name__}", field="trust"
        ) from None
    if len(names) > TRUST_MAX:
        raise InvalidInput(f"trust names more than {TRUST_MAX} items", field="trust")
    for name in names:
        if not isinstance(name, str) or not name.strip() or "\x00" in name:
            raise InvalidInput(f"trust items must be non-empty strings, got {name!r}", field="trust")
    return Trust(frozenset(n.strip() for n in names))


# ---------------------------------------------------------------------- pickle formats


def check_pickle_format(fmt: object, *, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if fmt not in allowed:
        raise InvalidInput(
            f"serialization {fmt!r} is not one of {', '.join(map(repr, allowed))}",
            field="serialization",
            value=str(fmt),
        )
    return str(fmt)


def dump_pickled(obj: Any, fmt: str) -> bytes:
    """Serialise ``obj`` with pickle, joblib or cloudpickle (only when the caller asked for it)."""
    buf = io.BytesIO()
    if fmt == "pickle":
        import pickle

        pickle.dump(obj, buf, protocol=pickle.HIGHEST_PROTOCOL)
    elif fmt == "cloudpickle":
        cloudpickle = _import_pickler("cloudpickle")
        cloudpickle.dump(obj, buf)
    elif fmt == "joblib":
        joblib = _import_pickler("joblib")
        joblib.dump(obj, buf)
    else:
        raise InvalidInput(f"unknown pickle format {fmt!r}", field="serialization")
    return buf.getvalue()


def require_pickle_trust(fmt: str, trust: Trust, *, file: str) -> None:
    """Refuse before any byte of ``file`` is read, unless the caller trusts ``fmt``."""
    if fmt not in PICKLE_FORMATS:
        raise ModelIntegrityError(f"unknown pickle format {fmt!r} in the manifest", file=file)
    if not trust.allows(fmt):
        raise UntrustedModel(
            f"model file {file!r} is a {fmt} file; unpickling it can run any code it names, so mlark loads it "
            f"only when you pass trust=[{fmt!r}] (do that only for a model you or someone you trust saved)",
            untrusted=[fmt],
            file=file,
        )


def load_pickled(data: bytes, fmt: str, trust: Trust, *, file: str) -> Any:
    require_pickle_trust(fmt, trust, file=file)
    if fmt == "joblib":
        joblib = _import_pickler("joblib")
        return joblib.load(io.BytesIO(data))
    if fmt == "cloudpickle":
        _import_pickler("cloudpickle")  # its reconstructors must be importable
    import pickle

    return pickle.loads(data)  # noqa: S301 - the caller passed trust=[fmt]


def _import_pickler(name: str) -> Any:
    import importlib

    from mlark.models.errors import MissingDependency

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependency(f"{name} is not installed: pip install {name}", package=name) from exc


# ---------------------------------------------------------------------- safetensors

SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "C64": 8,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
SAFETENSORS_HEADER_MAX = 100 * 1024 * 1024


def check_safetensors(data: bytes | memoryview, *, file: str, total: int | None = None) -> dict[str, Any]:
    """Validate a safetensors header before any library parses it; return the header.

    ``data`` is the whole file, or (with ``total``, the file's size) at least its header.

    Checks: the 8-byte length fits the file, the header is a UTF-8 JSON object, each tensor has a
    known dtype, a shape of non-negative integers and data offsets that match its size, lie inside
    the data area and neither overlap nor leave gaps. Raises ModelIntegrityError naming the file.
    """

    def bad(why: str) -> ModelIntegrityError:
        return ModelIntegrityError(f"model file {file!r} is not a valid safetensors file: {why}", file=file)

    size = len(data) if total is None else total
    if size < 8 or len(data) < 8:
        raise bad(f"it is {size} bytes long, shorter than the 8-byte header length")
    n = int.from_bytes(bytes(data[:8]), "little")
    if n == 0 or n > SAFETENSORS_HEADER_MAX or 8 + n > size:
        raise bad(f"the header length {n} does not fit a file of {size} bytes")
    if 8 + n > len(data):
        raise bad("the header was cut short")
    try:
        header = json.loads(bytes(data[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"the header is not UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    area = size - 8 - n
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise bad("__metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"tensor {name!r} must have exactly dtype, shape and data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES:
            raise bad(f"tensor {name!r} has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise bad(f"tensor {name!r} has an invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= area
        ):
            raise bad(f"tensor {name!r} has data offsets {offsets!r} outside the {area}-byte data area")
        count = 1
        for d in shape:
            count *= d
        if offsets[1] - offsets[0] != count * SAFETENSORS_DTYPES[dtype]:
            raise bad(f"tensor {name!r}: {offsets[1] - offsets[0]} bytes do not hold {dtype}{shape}")
        spans.append((offsets[0], offsets[1], name))
    position = 0
    for start, end, name in sorted(spans):
        if start != position:
            raise bad(f"tensor {name!r} starts at {start}, expected {position} (overlap or gap)")
        position = end
    if position != area:
        raise bad(f"the tensors cover {position} of the {area} data bytes")
    return header
