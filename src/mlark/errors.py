"""Every error mlark raises on purpose.

::

    MlarkError
    ├── InvalidInput (ValueError)          bad name, path, ref, message, option
    │   ├── InvalidName
    │   ├── InvalidPath
    │   ├── InvalidRef
    │   └── FilterSyntaxError              a run filter or order-by that does not parse (position, expected)
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


class FilterSyntaxError(InvalidInput):
    """A run filter or order-by expression that does not parse.

    Fields: ``position`` (0-based character offset into ``text``), ``expected``
    (what the grammar allows there), ``found`` (what is there instead),
    ``text`` (the whole expression) and ``kind`` ("filter" or "order-by").
    ``str()`` is one line, then the expression and a caret under ``position``.
    """

    def __init__(self, text: str, position: int, expected: str, *, found: str | None = None,
                 kind: str = "filter", hint: str | None = None) -> None:
        position = max(0, min(position, len(text)))
        where = f"at position {position}"
        if found is not None:
            where += f", found {found}"
        message = f"invalid {kind}: expected {expected} {where}"
        if hint:
            message += f" ({hint})"
        super().__init__(message, field=kind, position=position, expected=expected, found=found, text=text)
        self.text = text
        self.position = position
        self.expected = expected
        self.found = found
        self.kind = kind

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.text, self.position, self.expected), self.__dict__)

    def caret_lines(self) -> tuple[str, str]:
        """The line of ``text`` holding ``position`` and a line with a caret under it."""
        start = self.text.rfind("\n", 0, self.position) + 1
        end = self.text.find("\n", self.position)
        line = self.text[start:] if end < 0 else self.text[start:end]
        pad = "".join("\t" if ch == "\t" else " " for ch in line[: self.position - start])
        return line, pad + "^"

    def __str__(self) -> str:
        line, caret = self.caret_lines()
        return f"{self.message}\n    {line}\n    {caret}"


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
    "FilterSyntaxError",
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
