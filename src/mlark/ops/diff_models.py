"""Two model manifests (``mlark-model.json``) compared, and which weights files to compare.

:func:`diff_manifests` is pure. It compares the flavor, the framework and its version, Python,
the signature (inputs and outputs, spec by spec: added, removed, changed dtype or shape, and
order), the requirements (by distribution: added, removed, changed pin), the flavor's own record
(``flavor_config``, by dotted key) and the caller's ``metadata``. File lists are left to the
files diff, which has them from the trees.

:func:`weight_pairs` picks the weights files present in both versions: safetensors files (state
dicts) and ONNX models at the same path or renamed, and else, when each side holds exactly one
file of a kind, those two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlark.diff.jsonable import jsonable
from mlark.diff.text import fmt_value, md_table, text_table
from mlark.models.manifest import Manifest
from mlark.models.signature import Schema, Signature
from mlark.ops.diff_files import FilesDiff

WEIGHT_KINDS = {".safetensors": "state_dict", ".onnx": "onnx"}


@dataclass(frozen=True)
class FieldChange:
    """A named value that was ``added``, ``removed`` or ``changed`` (``a`` -> ``b``)."""

    name: str
    status: str
    a: Any = None
    b: Any = None

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"name": self.name, "status": self.status, "a": self.a, "b": self.b})


def diff_values(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[FieldChange]:
    """Keys of two dicts compared (nested dicts by dotted key)."""
    out: list[FieldChange] = []
    for key in sorted(set(a) | set(b)):
        name = f"{prefix}{key}"
        if key not in b:
            out.append(FieldChange(name, "removed", a[key], None))
        elif key not in a:
            out.append(FieldChange(name, "added", None, b[key]))
        elif isinstance(a[key], dict) and isinstance(b[key], dict):
            out.extend(diff_values(a[key], b[key], f"{name}."))
        elif a[key] != b[key] or type(a[key]) is not type(b[key]):
            out.append(FieldChange(name, "changed", a[key], b[key]))
    return out


_DIST = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?")


def _requirements(lines: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        match = _DIST.match(line)
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else line.strip()
        out[name] = line.strip()
    return out


def _specs(schema: Schema | None) -> dict[str, str]:
    if schema is None:
        return {}
    return {(s.name if s.name is not None else f"#{i}"): s.describe() for i, s in enumerate(schema.specs)}


def _schema_changes(a: Schema | None, b: Schema | None) -> tuple[list[FieldChange], list[str]]:
    notes = []
    if a is not None and b is not None and a.kind != b.kind:
        notes.append(f"{a.kind} -> {b.kind}")
    sa, sb = _specs(a), _specs(b)
    changes = diff_values(sa, sb)
    common = [n for n in sa if n in sb]
    if common != [n for n in sb if n in sa]:
        notes.append("order " + ", ".join(common) + " -> " + ", ".join(n for n in sb if n in sa))
    return changes, notes


@dataclass(frozen=True)
class ManifestDiff:
    """What two model manifests say differently. Every list holds only differences."""

    fields: tuple[FieldChange, ...]  # flavor, framework, framework_version, python, run_id, ...
    inputs: tuple[FieldChange, ...]  # signature inputs by name (``#0`` for an unnamed tensor): "int64", "float32[?, 4]"
    outputs: tuple[FieldChange, ...]
    requirements: tuple[FieldChange, ...]  # by normalised distribution name: the whole pip line
    flavor_config: tuple[FieldChange, ...]
    metadata: tuple[FieldChange, ...]
    notes: tuple[str, ...] = ()  # a schema kind or order change, a signature added or removed

    @property
    def has_changes(self) -> bool:
        return bool(self.fields or self.inputs or self.outputs or self.requirements or self.flavor_config
                    or self.metadata or self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": [c.to_dict() for c in self.fields],
            "signature": {"inputs": [c.to_dict() for c in self.inputs], "outputs": [c.to_dict() for c in self.outputs]},
            "requirements": [c.to_dict() for c in self.requirements],
            "flavor_config": [c.to_dict() for c in self.flavor_config],
            "metadata": [c.to_dict() for c in self.metadata],
            "notes": list(self.notes),
        }

    def _rows(self) -> list[list[str]]:
        rows = []
        for section, changes in (("", self.fields), ("input ", self.inputs), ("output ", self.outputs),
                                 ("requirement ", self.requirements), ("flavor_config.", self.flavor_config),
                                 ("metadata.", self.metadata)):
            for c in changes:
                rows.append([f"{section}{c.name}", c.status, "-" if c.status == "added" else fmt_value(c.a, 50),
                             "-" if c.status == "removed" else fmt_value(c.b, 50)])
        return rows

    def render_lines(self, width: int) -> list[str]:
        if not self.has_changes:
            return ["Model manifest: same flavor, framework, signature, requirements and config"]
        lines = ["Model manifest"]
        rows = self._rows()
        if rows:
            lines.append(text_table(["field", "status", "old", "new"], rows, width=width))
        lines += [f"  note: {n}" for n in self.notes]
        return lines

    def markdown_lines(self) -> list[str]:
        lines = ["### Model manifest", ""]
        if not self.has_changes:
            return lines + ["Same flavor, framework, signature, requirements and config.", ""]
        rows = self._rows()
        if rows:
            lines += [md_table(["field", "status", "old", "new"], rows), ""]
        lines += [f"- {n}" for n in self.notes]
        return lines + ([""] if self.notes else [])


def diff_manifests(a: Manifest, b: Manifest) -> ManifestDiff:
    """Compare two manifests (see the module docstring)."""
    def top(m: Manifest) -> dict[str, Any]:
        return {"flavor": m.flavor, "framework": m.framework, "framework_version": m.framework_version,
                "python": m.python, "format_version": m.format_version, "mlark_version": m.mlark_version,
                "run_id": m.run_id, "input_example": m.input_example}

    sig_a: Signature | None = a.signature
    sig_b: Signature | None = b.signature
    notes: list[str] = []
    if (sig_a is None) != (sig_b is None):
        notes.append("signature added" if sig_a is None else "signature removed")
    inputs, in_notes = _schema_changes(sig_a.inputs if sig_a else None, sig_b.inputs if sig_b else None)
    outputs, out_notes = _schema_changes(sig_a.outputs if sig_a else None, sig_b.outputs if sig_b else None)
    notes += [f"signature inputs: {n}" for n in in_notes] + [f"signature outputs: {n}" for n in out_notes]
    return ManifestDiff(
        fields=tuple(diff_values(top(a), top(b))),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        requirements=tuple(diff_values(_requirements(a.requirements), _requirements(b.requirements))),
        flavor_config=tuple(diff_values(a.flavor_config, b.flavor_config)),
        metadata=tuple(diff_values(a.metadata, b.metadata)),
        notes=tuple(notes),
    )


def _kind(path: str) -> str | None:
    lower = path.lower()
    return next((k for suffix, k in WEIGHT_KINDS.items() if lower.endswith(suffix)), None)


def weight_pairs(files: FilesDiff) -> list[tuple[str, str, str, bool]]:
    """``(path_a, path_b, kind, same_content)`` for the weights files to compare (see the module docstring)."""
    pairs: list[tuple[str, str, str, bool]] = []
    only_a: dict[str, list[str]] = {}
    only_b: dict[str, list[str]] = {}
    for c in files.changes:
        if c.type != "file":
            continue
        kind = _kind(c.path)
        old_kind = _kind(c.old_path or c.path)
        if c.status in ("modified", "unchanged", "renamed") and kind is not None and kind == old_kind:
            pairs.append((c.old_path or c.path, c.path, kind, c.digest_a == c.digest_b))
        elif c.status == "removed" and old_kind is not None:
            only_a.setdefault(old_kind, []).append(c.path)
        elif c.status == "added" and kind is not None:
            only_b.setdefault(kind, []).append(c.path)
    kinds_paired = {k for _, _, k, _ in pairs}
    for kind in sorted(set(only_a) & set(only_b)):
        if kind not in kinds_paired and len(only_a[kind]) == 1 and len(only_b[kind]) == 1:
            pairs.append((only_a[kind][0], only_b[kind][0], kind, False))
    return sorted(pairs, key=lambda p: p[1])
