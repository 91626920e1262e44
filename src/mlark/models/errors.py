"""Errors and warnings of ``mlark.models``, each a subclass of the tree in :mod:`mlark.errors`.

::

    InvalidInput (ValueError)
    ├── UnknownFlavor                a flavor name mlark does not know (given, or read from a manifest)
    ├── SignatureMismatch            predict() input that does not fit the signature (names the column)
    └── UntrustedModel               loading would run code the caller did not trust (pickle, unknown types)
    NotFound (LookupError)
    ├── ModelNotFound                no model folder / no manifest at the path
    └── ImportPathNotFound           a class path (module:qualname) that does not resolve
    Conflict
    └── ModelPathExists              save_model() into a folder that is not empty
    UnsupportedFormat
    └── UnsupportedModelFormat       a manifest written by a newer format version
    IntegrityError
    └── ModelIntegrityError          missing, extra or tampered file; corrupt manifest or weights
    MissingDependency (ImportError)  the framework a flavor needs is not installed (with the pip hint)

Warnings are :class:`ModelWarning` (a ``UserWarning``); :class:`ExtraColumnsWarning` names the
input columns ``predict`` ignored.
"""

from __future__ import annotations

from mlark.errors import Conflict, IntegrityError, InvalidInput, MlarkError, NotFound, UnsupportedFormat


class UnknownFlavor(InvalidInput):
    """A flavor name mlark does not know; ``.fields['known']`` lists the ones it does."""


class SignatureMismatch(InvalidInput):
    """Input to ``predict`` that the model's signature refuses; ``.fields['column']`` names the column."""


class UntrustedModel(InvalidInput):
    """Loading needs an explicit ``trust=`` naming what is trusted (``.fields['untrusted']``)."""


class ModelNotFound(NotFound):
    pass


class ImportPathNotFound(NotFound):
    """A ``module:qualname`` class path that cannot be imported or does not name a class."""


class ModelPathExists(Conflict):
    pass


class UnsupportedModelFormat(UnsupportedFormat):
    pass


class ModelIntegrityError(IntegrityError):
    """A model folder whose files do not match its manifest, or whose files do not decode.

    ``.fields['file']`` names the file (relative to the model folder) when there is one.
    """


class MissingDependency(MlarkError, ImportError):
    """The framework a flavor needs is not installed; the message says what to install."""


class ModelWarning(UserWarning):
    """Something about a model worth knowing that does not stop the operation."""


class ExtraColumnsWarning(ModelWarning):
    """``predict`` ignored input columns that are not in the signature (``.columns``)."""

    def __init__(self, message: str, columns: list[str]) -> None:
        super().__init__(message)
        self.columns = columns


__all__ = [
    "ExtraColumnsWarning",
    "ImportPathNotFound",
    "MissingDependency",
    "ModelIntegrityError",
    "ModelNotFound",
    "ModelPathExists",
    "ModelWarning",
    "SignatureMismatch",
    "UnknownFlavor",
    "UnsupportedModelFormat",
    "UntrustedModel",
]
