"""Issue 11: the HTTP edge over a real socket (uvicorn): body limits before reading, errors
that keep the keep-alive connection usable (or say Connection: close), and no secret query
value in the access log."""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import urlsplit

import pytest

from api.middleware import MAX_BODY, MAX_WEBHOOK_BODY
from tests.api.live import live_api  # noqa: F401

pytestmark = pytest.mark.postgres


def _connect(live) -> socket.socket:  # type: ignore[no-untyped-def]
    parts = urlsplit(live.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=20)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (Content-Length framed) from the socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def _request(path: str, key: str, method: str = "GET", body: bytes = b"",
             extra: str = "") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: test\r\nX-API-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n")
    return head.encode() + body


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_a_300mb_webhook_is_refused_from_its_content_length(live_api):  # noqa: F811
    with _connect(live_api) as sock:
        sock.sendall(b"POST /api/webhooks/airbnb HTTP/1.1\r\nHost: test\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 314572800\r\n\r\n"
                     + b"{" * 1000)
        status, headers, body = _read_response(sock)
        assert status == 413, body
        assert headers.get("connection") == "close"
        assert b'"payload_too_large"' in body
        assert _closed(sock)


@pytest.mark.parametrize(("path", "limit"), [("/api/webhooks/airbnb", MAX_WEBHOOK_BODY),
                                             ("/api/guests", MAX_BODY)])
def test_a_chunked_body_is_refused_once_it_passes_the_limit(live_api, path, limit):  # noqa: F811
    """No Content-Length: the count while streaming stops it, long before 300 MB arrive."""
    chunk = b"x" * 65536
    sent = 0
    with _connect(live_api) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: test\r\nX-API-Key: {live_api.admin_key}"
                     "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     .encode())
        sock.settimeout(0.2)
        response = b""
        try:
            while sent < 300 * 1024 * 1024:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
                try:
                    response = sock.recv(65536)
                except TimeoutError:
                    continue
                if response:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(20)
        if not response:
            response = sock.recv(65536)
        assert response.startswith(b"HTTP/1.1 413"), response[:200]
        assert b"connection: close" in response.lower()
    assert sent < limit + 64 * 65536  # stopped near the limit, not after the whole body


def test_errors_keep_the_connection_usable_or_say_close(live_api):  # noqa: F811
    key = live_api.admin_key
    with _connect(live_api) as sock:
        for path, method, body, want in [
            ("/api/guests/999999", "GET", b"", 404),
            ("/api/guests/9223372036854775808", "GET", b"", 422),
            ("/api/channel-sync-logs?to=0", "GET", b"", 422),
            ("/api/guests", "POST", b'{"firstName": "a\\u0000b", "lastName": "x"}', 422),
            ("/api/guests", "POST", b"{not json", 422),
            ("/api/guests", "DELETE", b"", 405),
            ("/api/guests", "GET", b"", 200),
        ]:
            sock.sendall(_request(path, key, method, body))
            status, headers, text = _read_response(sock)
            assert status == want, (path, status, text)
            assert headers.get("connection") != "close", path
    # Refused at the edge before reading: the answer says Connection: close.
    with _connect(live_api) as sock:
        sock.sendall(_request("/api/guests?q=%00", key))
        status, headers, _ = _read_response(sock)
        assert status == 422 and headers.get("connection") == "close"
        assert _closed(sock)


def test_the_agoda_token_never_reaches_the_access_log(live_api):  # noqa: F811
    import httpx

    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    handler, level = Capture(), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        secret = "s3cr3t-webhook-token-value"
        resp = httpx.post(f"{live_api.url}/api/webhooks/agoda?token={secret}&x=1",
                          json={"property_id": "1", "booking_id": "2"})
        assert resp.status_code == 401
        deadline = time.monotonic() + 5
        while not records and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    assert records, "no access log line"
    assert not any(secret in r for r in records)
    assert any("token=***" in r for r in records)


def test_a_500_says_connection_close(engine):  # type: ignore[no-untyped-def]
    """uvicorn drops the connection after an unhandled error: the answer must say so."""
    from api.app import create_app
    from tests.api.live import serve

    app = create_app()

    @app.get("/api/test-boom")
    def boom() -> None:
        raise RuntimeError("boom with SELECT secret FROM x")

    server = serve(app, engine)
    live = next(server)
    try:
        with _connect(live) as sock:
            sock.sendall(_request("/api/test-boom", live.admin_key))
            status, headers, body = _read_response(sock)
            assert status == 500
            assert headers.get("connection") == "close"
            assert b"SELECT" not in body and b"internal_error" in body
            assert _closed(sock)
    finally:
        server.close()
