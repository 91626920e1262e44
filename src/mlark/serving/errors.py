"""Errors the server answers with: a status, a code and a message that says what to change.

Every error body has the same JSON shape, which also carries MLflow's ``error_code`` so MLflow
clients read it::

    {"error_code": "BAD_REQUEST", "error": "MalformedBody", "message": "...", "status": 400, "field": "records"}

Deliberate mlark errors are mapped by kind (:func:`from_mlark_error`): ``NotFound`` 404,
``InvalidInput`` 422 (a body that parses but does not fit), :class:`MalformedBody` 400 (one that
does not parse). Nothing a client sends can produce a 5xx other than 503 (overloaded, or not
ready), 504 (no prediction within the timeout) and a model that cannot be served.
"""

from __future__ import annotations

from typing import Any

from mlark.errors import InvalidInput, MlarkError, NotFound

_CODES = {
    400: "BAD_REQUEST",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_PARAMETER_VALUE",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "TIMEOUT",
}


class HttpError(Exception):
    """An answer other than 200: ``status``, an error name, a message and structured fields."""

    def __init__(self, status: int, message: str, *, error: str | None = None, headers: dict[str, str] | None = None,
                 **fields: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error or type(self).__name__
        self.headers = dict(headers or {})
        self.fields = fields

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "error_code": _CODES.get(self.status, "ERROR"),
            "error": self.error,
            "message": self.message,
            "status": self.status,
        }
        for key, value in self.fields.items():
            if key not in out:
                out[key] = value if isinstance(value, (str, int, float, bool, type(None), list)) else str(value)
        return out


class MalformedBody(InvalidInput):
    """A request body that does not parse (broken JSON, junk where Arrow or Parquet was announced)."""


class UnsupportedMediaType(InvalidInput):
    """A content type the endpoint does not take."""


class Overloaded(MlarkError):
    """The model's queue is full."""


def from_mlark_error(exc: MlarkError) -> HttpError:
    fields = {k: v for k, v in exc.fields.items() if k not in ("value",)}
    if "field" not in fields and isinstance(fields.get("column"), str):
        fields["field"] = fields["column"]
    if isinstance(exc, UnsupportedMediaType):
        status = 415
    elif isinstance(exc, MalformedBody):
        status = 400
    elif isinstance(exc, InvalidInput):
        status = 422
    elif isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, Overloaded):
        return HttpError(503, exc.message, error="Overloaded", headers={"retry-after": "1"}, **fields)
    else:
        status = 503
    return HttpError(status, exc.message, error=type(exc).__name__, **fields)
