"""Typed domain errors and the one error body every 4xx/5xx answer uses:
`{"error": {"code": str, "message": str, "details": any}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("innsync.api")


class AppError(Exception):
    """A business failure with a stable code; maps to a 4xx."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Unprocessable(AppError):
    status_code = 422
    code = "validation_error"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "unavailable"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def _clean_validation_errors(errors: list[Any]) -> list[dict[str, Any]]:
    # Never echo the rejected input back: it may hold a secret (a partner apiSecret).
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
        for e in errors
    ]


def database_error(exc: Exception, what: str = "the request") -> AppError | None:
    """The API error for a write the database refused, by SQLSTATE (the same on every
    supported server version): unique / in use (23505, 23503 or 23001 on delete) -> 409,
    bad reference, not null, check, data exceptions (23503 on insert, 23502, 23514, 22xxx)
    -> 422. None for anything else (connection loss, bugs): those stay 500."""
    from db.repositories.base import (
        DuplicateError,
        InUseError,
        RepositoryError,
        classify,
        is_refused_write,
    )

    if isinstance(exc, RepositoryError):
        refused = exc
    elif is_refused_write(exc):
        refused = classify(exc, what)
    else:
        return None
    if isinstance(refused, DuplicateError | InUseError):
        return Conflict(refused.message)
    return Unprocessable(refused.message)


def install_error_handlers(app: FastAPI) -> None:
    from sqlalchemy.exc import DBAPIError

    from db.repositories.base import RepositoryError

    @app.exception_handler(RepositoryError)
    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        mapped = database_error(exc)
        if mapped is None:
            return await _unexpected(request, exc)
        return JSONResponse(error_body(mapped.code, mapped.message, mapped.details),
                            mapped.status_code)

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        headers = {"WWW-Authenticate": "ApiKey"} if exc.status_code == 401 else None
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), exc.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body(
                "validation_error",
                "the request is not valid",
                _clean_validation_errors(list(exc.errors())),
            ),
            422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # The server drops the connection after an unhandled error: say so.
        return JSONResponse(error_body("internal_error", "internal server error"), 500,
                            headers={"Connection": "close"})
