"""The ASGI edge, before any route runs: bounded request bodies and no NUL in the URL.

- A body larger than its limit is refused with 413: at once from `Content-Length` (the body
  is never read), or while streaming as soon as the count passes the limit (chunked bodies).
- A NUL byte in the path or the decoded query string is a 422 (PostgreSQL text cannot hold
  one; refusing at the edge keeps it out of every query).

Answers made here, before the body is read, say `Connection: close`: the client's unread
bytes would otherwise be taken for the next request on the keep-alive connection.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Request body limits (bytes): the partner webhooks are small JSON events.
MAX_BODY = 1024 * 1024
MAX_WEBHOOK_BODY = 256 * 1024
WEBHOOK_PREFIX = "/api/webhooks/"


def body_limit(path: str) -> int:
    """The request body limit of a path."""
    return MAX_WEBHOOK_BODY if path.startswith(WEBHOOK_PREFIX) else MAX_BODY


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes its limit (FastAPI re-raises
    HTTPExceptions from body reading, so this reaches the error handlers)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes",
                         headers={"Connection": "close"})


def _has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"\x00" in unquote_to_bytes(raw.replace(b"+", b" "))


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "details": None}}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    })
    await send({"type": "http.response.body", "body": body})


class EdgeGuard:
    """Pure ASGI middleware (no buffering): body limits and NUL checks."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if "\x00" in path or _has_nul(scope.get("raw_path") or b"") or _has_nul(
            scope.get("query_string") or b""
        ):
            await _refuse(send, 422, "validation_error",
                          "the URL must not contain NUL (%00) characters")
            return
        limit = body_limit(path)
        length = _content_length(scope)
        if length == -1:
            await _refuse(send, 400, "bad_request", "invalid Content-Length")
            return
        if length is not None and length > limit:
            await _refuse(send, 413, "payload_too_large",
                          f"the request body is larger than {limit} bytes")
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length, None when absent, -1 when malformed."""
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                n = int(value)
            except ValueError:
                return -1
            return n if n >= 0 else -1
    return None


def public_error(message: str) -> str:
    """An error text fit for an answer: a database error's SQL, parameters and links cut."""
    for marker in ("\n[SQL:", "[SQL:", "\n[parameters:", "\n(Background on this error"):
        cut = message.find(marker)
        if cut != -1:
            message = message[:cut]
    return message.strip()


def install_edge(app: Any) -> None:
    """The edge guard middleware and the handler for values the database refuses."""
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import DataError

    app.add_middleware(EdgeGuard)

    @app.exception_handler(DataError)
    async def _data_error(_: Request, exc: DataError) -> JSONResponse:
        # A value that passed validation but not its column (a safety net: the edge types
        # should have refused it). Never the SQL or the parameters.
        orig = getattr(exc, "orig", None)
        reason = str(orig).splitlines()[0] if orig is not None else "value refused"
        return JSONResponse(
            {"error": {"code": "validation_error",
                       "message": f"a value does not fit its column: {reason}",
                       "details": None}},
            422,
        )
