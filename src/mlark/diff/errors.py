"""Errors of ``mlark.diff``, each a subclass of the tree in :mod:`mlark.errors`.

::

    InvalidInput (ValueError)
    ├── UnreadableFile           a table, weights file or ONNX model that does not parse (names the file
    │                            and says what the parser said)
    ├── KeyColumnMissing         a --key column that one of the tables does not have (lists its columns)
    ├── DuplicateKeys            a key that is not unique (how many duplicated values, some examples)
    └── KindMismatch             comparing a table with a model, or two kinds mlark cannot compare
    NotFound (LookupError)
    └── InputNotFound            a path that does not exist
    MissingDependency (ImportError)   pyarrow / numpy / onnx / torch is not installed (with the pip hint)

Every error carries structured fields (``err.fields``): ``file``, ``format``, ``reason``, ``column``,
``columns``, ``duplicates``, ``examples``, ...
"""

from __future__ import annotations

from typing import Any

from mlark.errors import InvalidInput, MlarkError, NotFound


class UnreadableFile(InvalidInput):
    """A file that does not parse as what it should be; ``fields``: ``file``, ``format``, ``reason``."""

    def __init__(self, file: str, format: str, reason: str, **fields: Any) -> None:
        reason = " ".join(str(reason).split()) or "unknown error"
        if len(reason) > 500:
            reason = reason[:497] + "..."
        super().__init__(f"cannot read {file} as {format}: {reason}", file=file, format=format, reason=reason,
                         **fields)


class KeyColumnMissing(InvalidInput):
    """A key column that a table does not have; ``fields``: ``column``, ``file``, ``columns``."""


class DuplicateKeys(InvalidInput):
    """A key that is not unique; ``fields``: ``file``, ``key``, ``duplicates`` (distinct key values
    that occur more than once), ``rows`` (rows that carry them) and ``examples``."""


class KindMismatch(InvalidInput):
    """Two inputs of kinds that cannot be compared with each other (a table and a model)."""


class InputNotFound(NotFound):
    """A path to compare that does not exist."""


class MissingDependency(MlarkError, ImportError):
    """A library the diff needs is not installed; the message says what to install."""


__all__ = ["DuplicateKeys", "InputNotFound", "KeyColumnMissing", "KindMismatch", "MissingDependency",
           "UnreadableFile"]
