"""The one place where exceptions become HTTP responses: ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from embeddings import EmbeddingError
from mosaic_memory.db import is_connection_error
from mosaic_memory.errors import DatabaseUnavailable, MosaicError

log = logging.getLogger("mosaic_memory.api")

_STATUS_NAMES = {
    400: "BadRequest",
    401: "AuthenticationFailed",
    403: "PermissionDenied",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "ContentTooLarge",
    415: "UnsupportedMediaType",
    422: "InvalidInput",
}

DATA_ERROR_DETAIL = (
    "a value in the request cannot be stored or matched: text and JSON must be valid Unicode "
    "without NUL (\\u0000) characters, and JSON numbers must be finite"
)


def error_response(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status, headers=headers)


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MosaicError)
    async def _mosaic(_: Request, exc: MosaicError) -> JSONResponse:
        if exc.status_code >= 500:
            log.warning("%s: %s", exc.error, exc.detail)
        return error_response(exc.status_code, exc.error, exc.detail, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "MalformedJSON", "the request body is not valid JSON")
        clean = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
        return error_response(422, "InvalidInput", _describe(errors), errors=clean)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, _STATUS_NAMES.get(exc.status_code, "HTTPError"), str(exc.detail))

    @app.exception_handler(EmbeddingError)
    async def _embedding(_: Request, exc: EmbeddingError) -> JSONResponse:
        log.warning("embedding provider failed: %s", exc)
        return error_response(503, "EmbeddingUnavailable", str(exc))

    @app.exception_handler(DBAPIError)
    async def _db(_: Request, exc: DBAPIError) -> JSONResponse:
        if is_connection_error(exc):
            err = DatabaseUnavailable()
            return error_response(err.status_code, err.error, err.detail)
        if isinstance(exc, DataError):
            # A value PostgreSQL cannot hold or compare (a NUL character in text or jsonb, NaN in
            # JSON): the client's input, refused before the route commits, so nothing is stored.
            log.info("database refused a value: %s", type(exc.orig).__name__)
            return error_response(422, "InvalidInput", DATA_ERROR_DETAIL)
        log.exception("database error")
        return error_response(500, "InternalError", "the database rejected the operation; see the server log")

    @app.exception_handler(OSError)
    async def _os(_: Request, exc: OSError) -> JSONResponse:
        err = DatabaseUnavailable()
        log.warning("I/O error: %s", type(exc).__name__)
        return error_response(err.status_code, err.error, err.detail)
