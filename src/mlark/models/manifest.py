"""The manifest ``mlark-model.json``: what a model folder holds (docs/design/models.md, "Manifest").

The manifest is canonical JSON (sorted keys, two-space indent, UTF-8, trailing newline), so the
same model saved twice gives the same bytes and the repository stores it once. Decoding is
strict: a missing or unknown field, or a wrong type, is a :class:`ModelIntegrityError` naming it,
and a newer ``format_version`` is an :class:`UnsupportedModelFormat`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from mlark.core.digest import is_digest
from mlark.core.ids import is_id
from mlark.core.names import validate_relpath
from mlark.errors import InvalidInput, InvalidPath
from mlark.models.errors import ModelIntegrityError, UnsupportedModelFormat
from mlark.models.signature import Signature

MANIFEST_NAME = "mlark-model.json"
FORMAT = "mlark-model"
FORMAT_VERSION = 1
MANIFEST_MAX_BYTES = 16 * 1024 * 1024

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "format_version": int,
    "flavor": str,
    "flavor_config": dict,
    "framework": dict,
    "python": str,
    "requirements": list,
    "signature": (dict, type(None)),
    "input_example": (str, type(None)),
    "files": list,
    "run_id": (str, type(None)),
    "metadata": dict,
    "mlark_version": str,
}


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One model file: its path relative to the model folder, size in bytes and BLAKE3 digest."""

    path: str
    size: int
    digest: str

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "path": self.path, "size": self.size}


@dataclass(frozen=True, slots=True)
class Manifest:
    flavor: str
    flavor_config: dict[str, Any]
    framework: str
    framework_version: str
    python: str
    requirements: tuple[str, ...]
    files: tuple[FileRecord, ...]
    signature: Signature | None = None
    input_example: str | None = None
    run_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    mlark_version: str = ""
    format_version: int = FORMAT_VERSION

    # ------------------------------------------------------------------ reading

    @property
    def size(self) -> int:
        """Total bytes of the model files (the manifest itself not included)."""
        return sum(f.size for f in self.files)

    def file(self, path: str) -> FileRecord | None:
        for record in self.files:
            if record.path == path:
                return record
        return None

    def summary(self) -> dict[str, Any]:
        """A small JSON dict for a repository version's metadata: flavor, framework, signature, size."""
        return {
            "flavor": self.flavor,
            "framework": {"name": self.framework, "version": self.framework_version},
            "python": self.python,
            "signature": None if self.signature is None else self.signature.to_json(),
            "run_id": self.run_id,
            "size": self.size,
        }

    def with_run_id(self, run_id: str | None) -> Manifest:
        return replace(self, run_id=check_run_id(run_id))

    # ------------------------------------------------------------------ encoding

    def to_json(self) -> dict[str, Any]:
        return {
            "files": [f.to_json() for f in sorted(self.files, key=lambda f: f.path.encode("utf-8"))],
            "flavor": self.flavor,
            "flavor_config": self.flavor_config,
            "format": FORMAT,
            "format_version": self.format_version,
            "framework": {"name": self.framework, "version": self.framework_version},
            "input_example": self.input_example,
            "metadata": self.metadata,
            "mlark_version": self.mlark_version,
            "python": self.python,
            "requirements": list(self.requirements),
            "run_id": self.run_id,
            "signature": None if self.signature is None else self.signature.to_json(),
        }

    def encode(self) -> bytes:
        text = json.dumps(self.to_json(), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        return (text + "\n").encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        if len(data) > MANIFEST_MAX_BYTES:
            raise _bad(f"is larger than {MANIFEST_MAX_BYTES} bytes")
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise _bad(f"is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise _bad("is not a JSON object")
        if doc.get("format") != FORMAT:
            raise _bad(f"has format {doc.get('format')!r}, expected {FORMAT!r}")
        version = doc.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _bad(f"has an invalid format_version {version!r}")
        if version > FORMAT_VERSION:
            raise UnsupportedModelFormat(
                f"{MANIFEST_NAME} has format version {version}; this mlark reads versions up to {FORMAT_VERSION}"
                " (upgrade mlark to load this model)",
                format_version=version,
                supported=FORMAT_VERSION,
            )
        missing = sorted(set(_FIELDS) - set(doc))
        if missing:
            raise _bad(f"lacks the field(s) {', '.join(missing)}", field=missing[0])
        unknown = sorted(set(doc) - set(_FIELDS))
        if unknown:
            raise _bad(f"has unknown field(s) {', '.join(unknown)}", field=unknown[0])
        for name, kind in _FIELDS.items():
            if not isinstance(doc[name], kind) or (kind is int and isinstance(doc[name], bool)):
                raise _bad(f"field {name!r} has the wrong type ({type(doc[name]).__name__})", field=name)
        framework = doc["framework"]
        if set(framework) != {"name", "version"} or not all(isinstance(v, str) for v in framework.values()):
            raise _bad("field 'framework' must be {'name': str, 'version': str}", field="framework")
        if not all(isinstance(r, str) for r in doc["requirements"]):
            raise _bad("field 'requirements' must be a list of strings", field="requirements")
        try:
            signature = None if doc["signature"] is None else Signature.from_json(doc["signature"])
        except InvalidInput as exc:
            raise _bad(f"has an invalid signature: {exc}", field="signature") from exc
        try:
            run_id = check_run_id(doc["run_id"])
        except InvalidInput as exc:
            raise _bad(f"has an invalid run_id: {exc}", field="run_id") from exc
        files = tuple(_decode_file(raw, i) for i, raw in enumerate(doc["files"]))
        paths = [f.path for f in files]
        if len(set(paths)) != len(paths):
            raise _bad("lists a file twice", field="files")
        if MANIFEST_NAME in paths:
            raise _bad(f"lists itself ({MANIFEST_NAME}) among the model files", field="files")
        example = doc["input_example"]
        if example is not None and example not in paths:
            raise _bad(f"names input example {example!r}, which is not among its files", field="input_example")
        return cls(
            flavor=doc["flavor"],
            flavor_config=doc["flavor_config"],
            framework=framework["name"],
            framework_version=framework["version"],
            python=doc["python"],
            requirements=tuple(doc["requirements"]),
            files=files,
            signature=signature,
            input_example=example,
            run_id=run_id,
            metadata=doc["metadata"],
            mlark_version=doc["mlark_version"],
            format_version=version,
        )


def check_run_id(run_id: object) -> str | None:
    if run_id is None:
        return None
    if not isinstance(run_id, str) or not is_id(run_id):
        raise InvalidInput(
            f"run_id must be a run id (a UUID such as a mlark run's id) or None, got {run_id!r}",
            field="run_id",
            value=str(run_id),
        )
    return run_id.lower()


def check_metadata(metadata: object) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise InvalidInput("metadata must be a dict with string keys", field="metadata")
    try:
        return json.loads(json.dumps(metadata, allow_nan=False))  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"metadata must be JSON (numbers, strings, lists, dicts; no NaN): {exc}", field="metadata"
        ) from exc


def _decode_file(raw: object, index: int) -> FileRecord:
    if not isinstance(raw, dict) or set(raw) != {"path", "size", "digest"}:
        raise _bad(f"files[{index}] must be {{'path', 'size', 'digest'}}", field="files")
    path, size, digest = raw["path"], raw["size"], raw["digest"]
    try:
        validate_relpath(path)
    except InvalidPath as exc:
        raise _bad(f"files[{index}] has an invalid path: {exc}", field="files") from exc
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _bad(f"files[{index}] ({path}) has an invalid size {size!r}", field="files")
    if not isinstance(digest, str) or not is_digest(digest):
        raise _bad(f"files[{index}] ({path}) has a malformed digest", field="files")
    return FileRecord(path=path, size=size, digest=digest)


def _bad(what: str, *, field: str | None = None) -> ModelIntegrityError:
    return ModelIntegrityError(f"{MANIFEST_NAME} {what}", file=MANIFEST_NAME, field=field)
