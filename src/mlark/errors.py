"""Every error mlark raises on purpose.

::

    MlarkError
    ├── InvalidInput (ValueError)          bad name, path, ref, message, option
    │   ├── InvalidName
    │   ├── InvalidPath
    │   └── InvalidRef
    ├── NotFound (LookupError)             no such artifact, version, alias, run, file
    ├── NotARepository (FileNotFoundError) no .mlark/ here or above
    ├── UnsupportedFormat                  repository written by an unknown format version
    ├── Conflict                           the request contradicts what is stored
    │   └── AliasInUse                     removing a version an alias still points at
    ├── IntegrityError                     stored bytes do not match their digest
    └── StorageError (OSError)             a backend could not read or write

Errors carry structured fields (``.field``, ``.value``, ``.allowed``, ...) so
adapters can render them; ``str(err)`` is one line a person can act on.
Third-party errors are translated where they enter, with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import Any


class MlarkError(Exception):
    """Base class of every deliberate mlark error."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        for key, value in self.fields.items():
            out[key] = value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)
        return out


class InvalidInput(MlarkError, ValueError):
    """Input that mlark refuses; the message says what is allowed."""


class InvalidName(InvalidInput):
    pass


class InvalidPath(InvalidInput):
    pass


class InvalidRef(InvalidInput):
    pass


class NotFound(MlarkError, LookupError):
    pass


class NotARepository(MlarkError, FileNotFoundError):
    pass


class UnsupportedFormat(MlarkError):
    pass


class Conflict(MlarkError):
    pass


class AliasInUse(Conflict):
    pass


class IntegrityError(MlarkError):
    """Bytes read back do not match the digest they are stored under."""


class StorageError(MlarkError, OSError):
    pass


__all__ = [
    "AliasInUse",
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "InvalidName",
    "InvalidPath",
    "InvalidRef",
    "MlarkError",
    "NotARepository",
    "NotFound",
    "StorageError",
    "UnsupportedFormat",
]
