from __future__ import annotations

import logging
from typing import ClassVar

import httpx
import pytest

from channels.base import (
    ChannelConfig,
    ChannelName,
    PermanentChannelError,
    TransientChannelError,
)
from channels.http import HttpAdapter, redact

pytestmark = pytest.mark.anyio


class Dummy(HttpAdapter):
    name = ChannelName.EXPEDIA
    hosts: ClassVar[dict[str, str]] = {"default": "https://partner.example", "ari": "https://ari.example"}


def adapter(handler: object, endpoint: str | None = None) -> Dummy:
    return Dummy(ChannelConfig(endpoint=endpoint), transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


async def test_endpoint_replaces_every_host() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200)

    a = adapter(handler)
    await a.request("GET", a.url("/x", "ari"))
    await a.request("GET", a.url("/y"))
    b = adapter(handler, endpoint="http://127.0.0.1:9/prefix")
    await b.request("GET", b.url("/x", "ari"))
    assert seen == ["https://ari.example/x", "https://partner.example/y", "http://127.0.0.1:9/prefix/x"]
    await a.aclose()
    await b.aclose()


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_transient_statuses(status: int) -> None:
    a = adapter(lambda r: httpx.Response(status, headers={"Retry-After": "12"}, text="busy"))
    with pytest.raises(TransientChannelError) as err:
        await a.request("POST", "/x")
    assert err.value.retry_after == 12.0 and err.value.status_code == status


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_permanent_statuses(status: int) -> None:
    a = adapter(lambda r: httpx.Response(status, text="nope"))
    with pytest.raises(PermanentChannelError) as err:
        await a.request("POST", "/x")
    assert err.value.status_code == status and not err.value.transient


async def test_ok_statuses_pass_through() -> None:
    a = adapter(lambda r: httpx.Response(207))
    assert (await a.request("POST", "/x", ok_statuses=frozenset({207}))).status_code == 207


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eh")])
async def test_transport_errors_are_transient(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(TransientChannelError):
        await adapter(handler).request("GET", "/x")


def test_redact_hides_credentials_and_cards() -> None:
    text = 'POST /api?apiKey=SECRET123&x=1 <Authentication username="u" password="hunter2"/> 4111111111111111'
    out = redact(text)
    assert "SECRET123" not in out and "hunter2" not in out and "4111111111111111" not in out
    assert "x=1" in out


async def test_httpx_request_log_has_no_api_key(caplog: pytest.LogCaptureFixture) -> None:
    a = adapter(lambda r: httpx.Response(200))
    with caplog.at_level(logging.INFO, logger="httpx"):
        await a.request("POST", "/api?apiKey=TOPSECRET")
    assert "TOPSECRET" not in caplog.text and "apiKey=***" in caplog.text


async def test_bad_endpoint_is_permanent() -> None:
    a = Dummy(ChannelConfig(endpoint="ftp://nowhere.example"))
    with pytest.raises(PermanentChannelError, match="bad endpoint"):
        await a.request("GET", "/x")
    await a.aclose()


def test_adapters_share_one_certificate_verifying_tls_context() -> None:
    """One TLS context per process (httpx would load the CA bundle per client), and it
    still verifies the partner's certificate and host name."""
    import ssl

    from channels.http import tls_context

    first, second = Dummy(ChannelConfig()), Dummy(ChannelConfig(endpoint="https://b.example"))
    contexts = [a._client._transport._pool._ssl_context for a in (first, second)]  # type: ignore[attr-defined]
    assert contexts[0] is contexts[1] is tls_context()
    assert tls_context().verify_mode == ssl.CERT_REQUIRED and tls_context().check_hostname
