"""``diff_state_dicts``: compare two sets of named tensors (docs/design/diff.md, "Models")."""

from __future__ import annotations

from typing import Any

from mlark.diff.tensors.compare import compare_maps
from mlark.diff.tensors.result import TensorDiff, compare_values
from mlark.diff.tensors.source import TensorEntry, open_tensors


def diff_state_dicts(a: Any, b: Any) -> TensorDiff:
    """Compare two state dicts: ``.safetensors`` files, PyTorch ``.pt``/``.pth``/``.bin`` files (read
    only with ``torch.load(weights_only=True)``), folders of them (sharded checkpoints, model
    folders), or in-memory mappings of names to numpy arrays / torch tensors."""
    sa = open_tensors(a)
    sb = open_tensors(b)
    ta, tb, note = align_prefixes(sa.tensors, sb.tensors)
    return TensorDiff(
        a=sa.label, b=sb.label, format_a=sa.format, format_b=sb.format,
        tensors=tuple(compare_maps(ta, tb)),
        values=compare_values(sa.values, sb.values),
        notes=(note,) if note else (),
    )


def _strip(tensors: dict[str, TensorEntry]) -> tuple[str, dict[str, TensorEntry]] | None:
    """``(prefix, renamed)`` when every name starts with one ``prefix.``; otherwise None."""
    firsts = {name.split(".", 1)[0] for name in tensors}
    if len(firsts) != 1 or any("." not in name for name in tensors):
        return None
    prefix = firsts.pop()
    return prefix, {name[len(prefix) + 1:]: e for name, e in tensors.items()}


def align_prefixes(a: dict[str, TensorEntry], b: dict[str, TensorEntry]
                   ) -> tuple[dict[str, TensorEntry], dict[str, TensorEntry], str | None]:
    """A checkpoint that wraps its weights (``{"state_dict": ...}``, ``{"model": ...}``) against one
    that does not: when no name is shared and dropping one side's common first component makes
    most names shared, drop it (and say so)."""
    if not a or not b or set(a) & set(b):
        return a, b, None
    for side in ("a", "b"):
        this, other = (a, b) if side == "a" else (b, a)
        stripped = _strip(this)
        if stripped is None:
            continue
        prefix, renamed = stripped
        shared = len(set(renamed) & set(other))
        if shared * 2 >= min(len(renamed), len(other)):
            note = f"names in the {'old' if side == 'a' else 'new'} side were compared without their prefix '{prefix}.'"
            return (renamed, b, note) if side == "a" else (a, renamed, note)
    return a, b, None
