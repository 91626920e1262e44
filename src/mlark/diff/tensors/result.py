"""The typed result of a state-dict diff (:class:`TensorDiff`) and its parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mlark.diff.jsonable import jsonable
from mlark.diff.result import DiffResult

STATUSES = ("added", "removed", "reshaped", "retyped", "changed", "unchanged")


@dataclass(frozen=True)
class TensorChange:
    """One tensor name compared. Value statistics are None when values were not compared."""

    name: str
    status: str  # added | removed | reshaped | retyped | changed | unchanged
    dtype_a: str | None
    dtype_b: str | None
    shape_a: tuple[int, ...] | None
    shape_b: tuple[int, ...] | None
    max_abs_diff: float | None = None
    rel_l2: float | None = None
    changed_elements: int | None = None

    @property
    def numel(self) -> int:
        shape = self.shape_b if self.shape_b is not None else self.shape_a
        n = 1
        for d in shape or ():
            n *= d
        return n

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "name": self.name, "status": self.status, "dtype_a": self.dtype_a, "dtype_b": self.dtype_b,
            "shape_a": list(self.shape_a) if self.shape_a is not None else None,
            "shape_b": list(self.shape_b) if self.shape_b is not None else None,
            "max_abs_diff": self.max_abs_diff, "rel_l2": self.rel_l2, "changed_elements": self.changed_elements,
        })


@dataclass(frozen=True)
class ValueChange:
    """A non-tensor entry (``epoch``, ``lr``, safetensors ``__metadata__``): added, removed or changed."""

    name: str
    status: str
    a: Any = None
    b: Any = None

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"name": self.name, "status": self.status, "a": self.a, "b": self.b})


def compare_values(a: dict[str, Any], b: dict[str, Any]) -> tuple[ValueChange, ...]:
    out = []
    for name in list(a) + [n for n in b if n not in a]:
        if name not in b:
            out.append(ValueChange(name, "removed", a[name], None))
        elif name not in a:
            out.append(ValueChange(name, "added", None, b[name]))
        elif a[name] != b[name] and not (a[name] != a[name] and b[name] != b[name]):  # NaN equals NaN
            out.append(ValueChange(name, "changed", a[name], b[name]))
    return tuple(out)


def count_statuses(entries: tuple[TensorChange, ...]) -> dict[str, int]:
    counts = {s: 0 for s in STATUSES}
    for e in entries:
        counts[e.status] += 1
    return counts


@dataclass(frozen=True)
class TensorDiff(DiffResult):
    """Two state dicts compared tensor by tensor (plus their non-tensor values)."""

    kind: ClassVar[str] = "state_dict"

    a: str
    b: str
    format_a: str
    format_b: str
    tensors: tuple[TensorChange, ...]
    values: tuple[ValueChange, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        return count_statuses(self.tensors)

    @property
    def changes(self) -> tuple[TensorChange, ...]:
        return tuple(t for t in self.tensors if t.status != "unchanged")

    def by_status(self, status: str) -> tuple[TensorChange, ...]:
        return tuple(t for t in self.tensors if t.status == status)

    def tensor(self, name: str) -> TensorChange:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def params_a(self) -> int:
        return sum(_numel(t.shape_a) for t in self.tensors if t.shape_a is not None)

    @property
    def params_b(self) -> int:
        return sum(_numel(t.shape_b) for t in self.tensors if t.shape_b is not None)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes or self.values)

    def summary(self) -> str:
        c = self.counts
        parts = [f"{c[s]} {s}" for s in STATUSES if c[s]]
        return f"state dict {self.a} -> {self.b}: " + (", ".join(parts) or "no tensors")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "has_changes": self.has_changes, "a": self.a, "b": self.b,
            "format_a": self.format_a, "format_b": self.format_b, "counts": self.counts,
            "params_a": self.params_a, "params_b": self.params_b,
            "tensors": [t.to_dict() for t in self.tensors if t.status != "unchanged"],
            "unchanged": [t.name for t in self.tensors if t.status == "unchanged"],
            "values": [v.to_dict() for v in self.values],
            "notes": list(self.notes),
        }

    def render(self, width: int | None = None) -> str:
        from mlark.diff.tensors.render import render_text

        return render_text(self, width)

    def to_markdown(self) -> str:
        from mlark.diff.tensors.render import render_markdown

        return render_markdown(self)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
