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
import logging
import re
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
        repeated = _repeated_param(scope.get("query_string") or b"")
        if repeated:
            # No route takes a list in the query: a repeated parameter is a client mistake,
            # not "the last one wins".
            await _refuse(send, 400, "bad_request",
                          f"query parameter {repeated!r} is given more than once")
            return
        if _disguised_secret_param(scope.get("query_string") or b""):
            await _refuse(send, 400, "bad_request",
                          "write secret query parameter names (token, key...) plainly")
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


def _repeated_param(raw: bytes) -> str | None:
    """The first query parameter name given more than once, or None."""
    from urllib.parse import parse_qsl

    seen: set[str] = set()
    for name, _ in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return name[:64]
        seen.add(name)
    return None


def _disguised_secret_param(raw: bytes) -> bool:
    """A secret parameter whose name is percent-encoded (`%74oken=`) would slip past the log
    redaction, which matches names as written: refused."""
    if b"%" not in raw:
        return False
    for part in re.split(rb"[&;]", raw):
        name_raw = part.split(b"=", 1)[0]
        if b"%" not in name_raw and b"+" not in name_raw:
            continue
        name = unquote_to_bytes(name_raw.replace(b"+", b" ")).decode("latin-1").lower()
        if name.strip() in SECRET_PARAMS:
            return True
    return False


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


#: Query parameters that carry a secret (the Agoda webhook's `token`); their values never
#: reach a log line.
SECRET_PARAMS = ("token", "key", "api_key", "apikey", "secret", "signature", "password",
                 "passphrase", "access_token")
_SECRET_QUERY = re.compile(
    r"([?&;](?:" + "|".join(SECRET_PARAMS) + r")=)[^&;\s\"']*", re.IGNORECASE)
REDACTED = "***"


def redact_query_secrets(text: str) -> str:
    """`text` with the values of secret query parameters replaced by ***."""
    return _SECRET_QUERY.sub(lambda m: m.group(1) + REDACTED, text)


class RedactQuerySecrets(logging.Filter):
    """Rewrites a record's message and arguments (uvicorn's access log passes the path with
    its query string as an argument) so no secret query value is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = redact_query_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query_secrets(a) if isinstance(a, str) and "=" in a else a
                for a in record.args
            )
        elif isinstance(record.args, dict):
            record.args = {
                k: redact_query_secrets(v) if isinstance(v, str) and "=" in v else v
                for k, v in record.args.items()
            }
        return True


#: Loggers that may see request URLs.
URL_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "innsync", "innsync.api",
               "httpx", "fastapi")


def install_log_redaction() -> None:
    """Attach the redacting filter to every logger that may write a request URL (once)."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuerySecrets) for f in logger.filters):
            logger.addFilter(RedactQuerySecrets())


_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def allowed_methods(app: Any, scope: Scope) -> list[str]:
    """Every method the OpenAPI document declares for the scope's path (so `Allow` and the
    document agree, whichever route matched first)."""
    table = getattr(app.state, "allow_table", None)
    if table is None:
        table = []
        for template, item in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            table.append((re.compile(f"^{pattern}$"), "{" not in template,
                          sorted(m.upper() for m in item if m in _HTTP_METHODS)))
        app.state.allow_table = table
    path = scope.get("path", "")
    matching = [(literal, declared) for regex, literal, declared in table if regex.match(path)]
    # A literal path (/backup/list) is that resource, not an instance of /backup/{id}.
    if any(literal for literal, _ in matching):
        matching = [m for m in matching if m[0]]
    return sorted({method for _, declared in matching for method in declared})


def install_edge(app: Any) -> None:
    """The edge guard middleware and the handler for values the database refuses."""
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import DataError

    app.add_middleware(EdgeGuard)
    install_log_redaction()

    @app.exception_handler(405)
    async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's Allow names the methods of the first route matching the path only;
        # a path served by several routes (GET and PATCH /guests/{id}) needs them all.
        allowed = allowed_methods(app, request.scope)
        return JSONResponse(
            {"error": {"code": "method_not_allowed",
                       "message": f"{request.method} is not allowed here",
                       "details": {"allow": allowed}}},
            405,
            headers={"Allow": ", ".join(allowed)},
        )

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
