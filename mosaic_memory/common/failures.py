"""One mapping from an exception to what an edge reports: status, error name, detail.

Every edge translates once, through :func:`failure_of`: the REST handlers turn the result into
the body ``{"error": ..., "detail": ...}`` (:func:`error_response`), the MCP tools into a
``ToolError`` whose text is ``"<error>: <detail>"``. Details never carry secrets: domain errors
build them from ids, and database or I/O failures are reported by kind, never by message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DataError, DBAPIError
from starlette.responses import JSONResponse

from embeddings import EmbeddingError
from mosaic_memory.db import is_connection_error
from mosaic_memory.errors import DatabaseUnavailable, MosaicError

__all__ = ["DATA_ERROR_DETAIL", "Failure", "describe_validation", "error_response", "failure_of"]

log = logging.getLogger("mosaic_memory.api")

DATA_ERROR_DETAIL = (
    "a value in the request cannot be stored or matched: text and JSON must be valid Unicode "
    "without NUL (\\u0000) characters, and JSON numbers must be finite"
)


@dataclass(frozen=True)
class Failure:
    """What an edge reports for one failed call."""

    status: int
    error: str
    detail: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The one-line form, as MCP tools and the CLI show it."""
        return f"{self.error}: {self.detail}"


def describe_validation(errors: Sequence[Mapping[str, Any]]) -> str:
    """The first few pydantic errors as ``"loc: message; ..."`` (a request body's ``body`` left out)."""
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def failure_of(exc: BaseException) -> Failure | None:
    """The failure to report for ``exc``, or None when it is not one the service expects
    (a bug: the edge logs it and answers 500). Logs what the operator should see."""
    if isinstance(exc, MosaicError):
        if exc.status_code >= 500:
            log.warning("%s: %s", exc.error, exc.detail)
        return Failure(exc.status_code, exc.error, exc.detail, exc.extra)
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        clean = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
        return Failure(422, "InvalidInput", describe_validation(errors), {"errors": clean})
    if isinstance(exc, EmbeddingError):
        log.warning("embedding provider failed: %s", exc)
        return Failure(503, "EmbeddingUnavailable", str(exc))
    if isinstance(exc, DBAPIError):
        if is_connection_error(exc):
            down = DatabaseUnavailable()
            return Failure(down.status_code, down.error, down.detail)
        if isinstance(exc, DataError):
            # A value PostgreSQL cannot hold or compare (a NUL character in text or jsonb, NaN in
            # JSON): the client's input, refused before the edge commits, so nothing is stored.
            log.info("database refused a value: %s", type(exc.orig).__name__)
            return Failure(422, "InvalidInput", DATA_ERROR_DETAIL)
        log.exception("database error")
        return Failure(500, "InternalError", "the database rejected the operation; see the server log")
    if isinstance(exc, OSError):
        down = DatabaseUnavailable()
        log.warning("I/O error: %s", type(exc).__name__)
        return Failure(down.status_code, down.error, down.detail)
    return None


def error_response(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    """The HTTP form of a failure: ``{"error", "detail", **extra}``; a 401 names the Bearer scheme,
    a failure with ``retry_after`` (a 429, a 503) says it as ``Retry-After`` too."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status, headers=headers)
