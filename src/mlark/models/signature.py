"""Signatures: what a model takes and what it returns (docs/design/models.md, "Signatures").

A :class:`Schema` is either a table (``columns``: named scalar columns, one value per row) or a
set of ``tensors`` (arrays with a dtype and a shape, ``-1`` for a dimension of any size). A
:class:`Signature` pairs an input schema with an optional output schema. This module holds the
value types and their JSON form only; inference lives in :mod:`mlark.models.infer`, enforcement
in :mod:`mlark.models.enforce`. It imports neither numpy nor pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlark.errors import InvalidInput

INTEGER_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOAT_DTYPES = ("float16", "float32", "float64")
DTYPES = ("bool", *INTEGER_DTYPES, *FLOAT_DTYPES, "string", "binary", "datetime")
SchemaKind = Literal["columns", "tensors"]
NAME_MAX = 256


@dataclass(frozen=True, slots=True)
class Spec:
    """One column (``shape`` is None) or one tensor (``shape`` given, ``-1`` = any size)."""

    dtype: str
    name: str | None = None
    shape: tuple[int, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        out["dtype"] = self.dtype
        if self.shape is not None:
            out["shape"] = list(self.shape)
        return out

    def describe(self) -> str:
        shape = "" if self.shape is None else "[" + ", ".join("?" if d < 0 else str(d) for d in self.shape) + "]"
        return f"{self.dtype}{shape}"


@dataclass(frozen=True, slots=True)
class Schema:
    kind: SchemaKind
    specs: tuple[Spec, ...]

    def __post_init__(self) -> None:
        _check_schema(self)

    @classmethod
    def columns(cls, columns: dict[str, str] | list[tuple[str, str]]) -> Schema:
        """``Schema.columns({"age": "int64", "city": "string"})``."""
        items = list(columns.items()) if isinstance(columns, dict) else list(columns)
        return cls("columns", tuple(Spec(dtype, name) for name, dtype in items))

    @classmethod
    def tensor(cls, dtype: str, shape: list[int] | tuple[int, ...], name: str | None = None) -> Schema:
        """One tensor: ``Schema.tensor("float32", [-1, 4])``."""
        return cls("tensors", (Spec(dtype, name, tuple(shape)),))

    @classmethod
    def tensors(cls, tensors: dict[str, tuple[str, list[int] | tuple[int, ...]]]) -> Schema:
        """Named tensors: ``Schema.tensors({"ids": ("int64", [-1, 128]), "mask": ("int64", [-1, 128])})``."""
        return cls("tensors", tuple(Spec(dtype, name, tuple(shape)) for name, (dtype, shape) in tensors.items()))

    @property
    def names(self) -> list[str | None]:
        return [s.name for s in self.specs]

    def to_json(self) -> dict[str, Any]:
        return {self.kind: [s.to_json() for s in self.specs]}

    @classmethod
    def from_json(cls, doc: object, *, where: str = "schema") -> Schema:
        if not isinstance(doc, dict) or len(doc) != 1 or next(iter(doc)) not in ("columns", "tensors"):
            raise InvalidInput(
                f"{where} must be an object with one key, 'columns' or 'tensors', holding a list of specs",
                field=where,
            )
        kind, raw = next(iter(doc.items()))
        if not isinstance(raw, list):
            raise InvalidInput(f"{where}.{kind} must be a list", field=where)
        specs = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise InvalidInput(f"{where}.{kind}[{i}] must be an object", field=where)
            unknown = set(item) - {"name", "dtype", "shape"}
            if unknown:
                raise InvalidInput(
                    f"{where}.{kind}[{i}] has unknown keys {sorted(unknown)}; allowed: name, dtype, shape",
                    field=where,
                )
            shape = item.get("shape")
            if shape is not None:
                if not isinstance(shape, list) or not all(
                    isinstance(d, int) and not isinstance(d, bool) for d in shape
                ):
                    raise InvalidInput(f"{where}.{kind}[{i}].shape must be a list of integers", field=where)
                shape = tuple(shape)
            specs.append(Spec(dtype=item.get("dtype"), name=item.get("name"), shape=shape))  # type: ignore[arg-type]
        return cls(kind, tuple(specs))

    def describe(self) -> str:
        inner = ", ".join(f"{s.name}: {s.describe()}" if s.name is not None else s.describe() for s in self.specs)
        return f"{self.kind}({inner})"


@dataclass(frozen=True, slots=True)
class Signature:
    inputs: Schema
    outputs: Schema | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, Schema) or not isinstance(self.outputs, (Schema, type(None))):
            raise InvalidInput("Signature(inputs, outputs) takes Schema values", field="signature")
        if self.inputs.kind == "tensors" and len(self.inputs.specs) > 1 and None in self.inputs.names:
            raise InvalidInput("when a model takes several input tensors, each needs a name", field="signature")

    def to_json(self) -> dict[str, Any]:
        return {"inputs": self.inputs.to_json(), "outputs": None if self.outputs is None else self.outputs.to_json()}

    @classmethod
    def from_json(cls, doc: object) -> Signature:
        if not isinstance(doc, dict) or "inputs" not in doc or set(doc) - {"inputs", "outputs"}:
            raise InvalidInput("a signature is an object with 'inputs' and optional 'outputs'", field="signature")
        outputs = doc.get("outputs")
        return cls(
            Schema.from_json(doc["inputs"], where="signature.inputs"),
            None if outputs is None else Schema.from_json(outputs, where="signature.outputs"),
        )

    @classmethod
    def coerce(cls, value: object) -> Signature:
        """A :class:`Signature`, or its JSON form (a dict), as the ``signature=`` argument accepts."""
        if isinstance(value, Signature):
            return value
        if isinstance(value, Schema):
            return cls(value)
        if isinstance(value, dict):
            return cls.from_json(value)
        raise InvalidInput(
            f"signature must be a mlark.models.Signature or its JSON form (a dict), got {type(value).__name__}",
            field="signature",
        )

    def __str__(self) -> str:
        out = "none" if self.outputs is None else self.outputs.describe()
        return f"{self.inputs.describe()} -> {out}"


def _check_schema(schema: Schema) -> None:
    if schema.kind not in ("columns", "tensors"):
        raise InvalidInput(f"schema kind must be 'columns' or 'tensors', got {schema.kind!r}", field="signature")
    if not schema.specs:
        raise InvalidInput("a schema needs at least one column or tensor", field="signature")
    seen: set[str] = set()
    for spec in schema.specs:
        if spec.dtype not in DTYPES:
            raise InvalidInput(
                f"unknown dtype {spec.dtype!r} in signature; allowed: {', '.join(DTYPES)}",
                field="signature",
                value=str(spec.dtype),
                allowed=list(DTYPES),
            )
        if spec.name is not None:
            if not isinstance(spec.name, str) or not spec.name or len(spec.name) > NAME_MAX or "\x00" in spec.name:
                raise InvalidInput(
                    f"signature names must be non-empty strings of at most {NAME_MAX} characters, got {spec.name!r}",
                    field="signature",
                )
            if spec.name in seen:
                raise InvalidInput(f"signature names {spec.name!r} twice", field="signature", value=spec.name)
            seen.add(spec.name)
        if schema.kind == "columns":
            if spec.name is None:
                raise InvalidInput("every column in a 'columns' signature needs a name", field="signature")
            if spec.shape is not None:
                raise InvalidInput(
                    f"column {spec.name!r} has a shape; columns hold one value per row (use 'tensors' for arrays)",
                    field="signature",
                )
        else:
            if spec.shape is None:
                raise InvalidInput("every tensor in a 'tensors' signature needs a shape", field="signature")
            if any(d < -1 for d in spec.shape):
                raise InvalidInput(
                    f"tensor shape {list(spec.shape)} has a dimension below -1 (-1 means any size)", field="signature"
                )
