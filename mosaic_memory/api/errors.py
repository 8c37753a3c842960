"""The one place where exceptions become HTTP responses: ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from embeddings import EmbeddingError
from mosaic_memory.common.failures import DATA_ERROR_DETAIL, Failure, describe_validation, error_response, failure_of
from mosaic_memory.errors import MosaicError
from mosaic_memory.web.pages import error_page, is_ui_path

__all__ = ["DATA_ERROR_DETAIL", "error_response", "install_error_handlers"]


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


def _reply(exc: Exception) -> JSONResponse:
    """The body of the one mapping every edge shares (``common/failures.py``)."""
    failure = failure_of(exc) or Failure(500, "InternalError", "unexpected error; see the server log")
    return error_response(failure.status, failure.error, failure.detail, **failure.extra)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MosaicError)
    async def _mosaic(request: Request, exc: MosaicError) -> Response:
        if is_ui_path(request.url.path):  # a person in the web UI gets a page, not JSON
            page = error_page(request, exc)
            if page is not None:
                return page
        return _reply(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "MalformedJSON", "the request body is not valid JSON")
        clean = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
        return error_response(422, "InvalidInput", describe_validation(errors), errors=clean)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, _STATUS_NAMES.get(exc.status_code, "HTTPError"), str(exc.detail))

    # Embedding, database and I/O failures: mapped by failure_of, as the MCP tools map them.
    @app.exception_handler(EmbeddingError)
    async def _embedding(_: Request, exc: EmbeddingError) -> JSONResponse:
        return _reply(exc)

    @app.exception_handler(DBAPIError)
    async def _db(_: Request, exc: DBAPIError) -> JSONResponse:
        return _reply(exc)

    @app.exception_handler(OSError)
    async def _os(_: Request, exc: OSError) -> JSONResponse:
        return _reply(exc)
