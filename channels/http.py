"""Shared HTTP plumbing for adapters: one long-lived httpx client, error classification."""

from __future__ import annotations

import functools
import logging
import re
import ssl
from typing import Any, ClassVar

import httpx

from channels.base import (
    ChannelConfig,
    ChannelError,
    ChannelName,
    MalformedPayloadError,
    PermanentChannelError,
    TransientChannelError,
)
from channels.pci import scrub_text
from channels.tokens import TokenStore

log = logging.getLogger("innsync.channels")

DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=5, keepalive_expiry=60)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One certificate-verifying TLS context for every adapter of the process: httpx builds
    a new one per client otherwise (loading the CA bundle: ~20 ms of CPU), and a batch
    opens an adapter per channel it pushes to (a quarter of a pull worker's CPU measured)."""
    return httpx.create_ssl_context()

_SECRET_QUERY = re.compile(r"(?i)((?:api_?key|token|secret|password|client_secret)=)[^&\s\"']+")
_SECRET_ATTR = re.compile(r"(?i)((?:password|client_secret|apiKey)=\")[^\"]*")


def secret_text(value: Any) -> str:
    """A config value (SecretStr or plain) as text; "" when unset."""
    if value is None:
        return ""
    secret = getattr(value, "get_secret_value", None)
    return str(secret() if secret else value)


def redact(text: str) -> str:
    """Remove credentials (query keys, password attributes) and card numbers from a string."""
    return scrub_text(_SECRET_ATTR.sub(r"\1***", _SECRET_QUERY.sub(r"\1***", text)))


class _RedactingFilter(logging.Filter):
    """httpx logs full request URLs at INFO; some partners put keys in the query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        record.msg, record.args = redact(message), None
        return True


_filter = _RedactingFilter()
for _name in ("httpx", "httpcore", "innsync.channels"):
    if _filter not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_filter)


class HttpAdapter:
    """Base for partner adapters: client lifecycle, URL choice, request + error mapping."""

    name: ClassVar[ChannelName]
    #: Partner hosts by role ("default", "ari", "reservations", ...); `endpoint` replaces all.
    hosts: ClassVar[dict[str, str]] = {}
    max_updates_per_request: int = 100
    #: Whether the partner accepts weekday masks on date ranges (see channels.ari.compress).
    supports_weekdays: bool = False

    def __init__(
        self,
        config: ChannelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        self.config = config
        base = config.endpoint or self.hosts.get("default") or next(iter(self.hosts.values()), "")
        self._client = httpx.AsyncClient(
            base_url=base,
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            transport=transport,
            limits=DEFAULT_LIMITS,
            verify=tls_context(),
            headers={"User-Agent": "innsync/0.1"},
            follow_redirects=False,
        )

    def fetch_requests(self, cursor: str | None = None) -> int:
        """Partner requests one `fetch_bookings` page sends: one (see ChannelAdapter)."""
        return 1

    def url(self, path: str, host: str = "default") -> str:
        """Path relative to `endpoint` when configured, else absolute on the partner's host."""
        if self.config.endpoint or host not in self.hosts:
            return path
        return self.hosts[host].rstrip("/") + path

    def require(self, value: Any, field: str) -> str:
        """A mandatory config value as plain text, or a clear permanent error."""
        if value is None or value == "":
            raise PermanentChannelError(self.name, f"channel config is missing {field}")
        return secret_text(value)

    async def request(
        self,
        method: str,
        url: str,
        *,
        ok_statuses: frozenset[int] = frozenset(),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request; map transport errors, 429 and 5xx to TransientChannelError and
        other 4xx to PermanentChannelError, unless the status is in `ok_statuses`."""
        try:
            response = await self._client.request(method, url, **kwargs)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            # A broken endpoint in the channel config: retrying cannot help.
            raise PermanentChannelError(self.name, f"bad endpoint for {method}: {exc}") from None
        except httpx.TimeoutException as exc:
            raise TransientChannelError(
                self.name, f"timeout on {method} {redact(str(httpx.URL(url).path))}: {type(exc).__name__}"
            ) from None
        except httpx.TransportError as exc:
            raise TransientChannelError(
                self.name, f"transport error on {method}: {type(exc).__name__}: {redact(str(exc))}"
            ) from None
        if response.status_code >= 400 and response.status_code not in ok_statuses:
            raise ChannelError.from_response(self.name, response, detail=redact(response.text[:300]))
        return response

    def use_token_store(self, store: TokenStore) -> None:
        """Keep partner tokens in `store` (shared by processes); adapters without tokens ignore it."""
        return None

    def malformed(self, problem: str) -> MalformedPayloadError:
        """A MalformedPayloadError naming this partner."""
        return MalformedPayloadError(self.name, problem)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpAdapter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
