"""Partner bearer tokens shared by every adapter, process and flow run of one partner account.

Booking.com allows 30 token exchanges an hour, and every served flow run is a new process, so
a token cached in one adapter is not enough: `TokenProvider` keeps it in a `TokenStore` (the
database in production, see tasks/resources.py; a per-provider memory store otherwise) and

- reuses the stored token until shortly before it expires;
- refreshes it under the store's exclusive lock (a PostgreSQL advisory lock), so one process
  exchanges while the others wait briefly and then read the fresh token;
- on a 429 from the token endpoint records Retry-After as `retry_not_before` and raises
  `TokenRateLimitedError` at once: nothing sleeps while holding the lock, and until that time
  every process fails fast without calling the partner;
- on a 401 with a token, invalidates that token and refreshes once (`BearerAuth`).

Tokens and client secrets never appear in reprs, logs or error messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from channels.base import ChannelError, TransientChannelError

#: Retry-After assumed when a partner answers 429 on its token endpoint without one.
DEFAULT_TOKEN_RETRY_AFTER = 60.0


class TokenRateLimitedError(TransientChannelError):
    """The partner's token endpoint refuses exchanges until `retry_after` seconds from now.

    Transient (the next scheduled run succeeds), but not worth retrying inside the run: the
    run ends at once so it holds no slot while the partner's window passes.
    """

    retry_in_run = False


@dataclass(frozen=True)
class TokenKey:
    """Which stored token: partner, account (token URL + client id, hashed) and a fingerprint
    of the credentials (a changed secret makes the stored token unusable)."""

    partner: str
    account: str
    fingerprint: str = field(repr=False)

    @classmethod
    def of(cls, partner: str, token_url: str, client_id: str, client_secret: str) -> TokenKey:
        account = hashlib.sha256(f"{partner}|{token_url}|{client_id}".encode()).hexdigest()[:40]
        fingerprint = hashlib.sha256(f"{account}|{client_secret}".encode()).hexdigest()
        return cls(partner, account, fingerprint)


@dataclass(frozen=True)
class StoredToken:
    """A token as the store keeps it; times are wall clock (time.time())."""

    value: str | None = field(repr=False)
    expires_at: float | None = None
    refreshed_at: float | None = None
    retry_not_before: float | None = None
    exchange_count: int = 0

    def usable(self, margin: float, stale: str | None = None, now: float | None = None) -> bool:
        """Set, not `stale`, and more than the refresh margin before expiry. The margin is at
        most a tenth of the token's lifetime, so short-lived tokens are reused too."""
        if not self.value or self.expires_at is None or self.value == stale:
            return False
        lifetime = self.expires_at - (self.refreshed_at or self.expires_at)
        effective = min(margin, max(lifetime, 0.0) / 10) if lifetime > 0 else margin
        return (now or time.time()) < self.expires_at - effective

    def throttled_for(self, now: float | None = None) -> float:
        """Seconds until the partner accepts exchanges again (0 when it does now)."""
        if self.retry_not_before is None:
            return 0.0
        return max(0.0, self.retry_not_before - (now or time.time()))


class TokenSlot(Protocol):
    """The store under its exclusive lock for one key: the current row and its writers."""

    current: StoredToken | None

    async def save(self, value: str, expires_at: float) -> None:
        """Store a freshly exchanged token (counts one exchange, clears retry_not_before)."""
        ...

    async def invalidate(self) -> None:
        """Forget the token (the partner refused it)."""
        ...

    async def defer(self, not_before: float) -> None:
        """Record that the partner refuses exchanges until `not_before`."""
        ...


class TokenStore(Protocol):
    """Where tokens live between adapters. `exclusive` holds a lock on the key until exit;
    writes made through the slot are kept even when the block raises."""

    async def load(self, key: TokenKey) -> StoredToken | None: ...

    def exclusive(self, key: TokenKey) -> AbstractAsyncContextManager[TokenSlot]: ...


@dataclass
class _MemorySlot:
    store: MemoryTokenStore
    key: TokenKey
    current: StoredToken | None

    def _put(self, token: StoredToken) -> None:
        self.store.rows[self.key] = self.current = token

    async def save(self, value: str, expires_at: float) -> None:
        count = self.current.exchange_count if self.current else 0
        self._put(StoredToken(value, expires_at, time.time(), None, count + 1))

    async def invalidate(self) -> None:
        if self.current is not None:
            self._put(StoredToken(None, None, self.current.refreshed_at,
                                  self.current.retry_not_before, self.current.exchange_count))

    async def defer(self, not_before: float) -> None:
        cur = self.current or StoredToken(None)
        self._put(StoredToken(cur.value, cur.expires_at, cur.refreshed_at, not_before,
                              cur.exchange_count))


class MemoryTokenStore:
    """Tokens in this process only (adapters built outside a flow: tests, one-off scripts)."""

    def __init__(self) -> None:
        self.rows: dict[TokenKey, StoredToken] = {}
        self._locks: dict[TokenKey, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"MemoryTokenStore(tokens={len(self.rows)})"

    async def load(self, key: TokenKey) -> StoredToken | None:
        return self.rows.get(key)

    @asynccontextmanager
    async def exclusive(self, key: TokenKey) -> AsyncIterator[TokenSlot]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            yield _MemorySlot(self, key, self.rows.get(key))


@dataclass(frozen=True)
class IssuedToken:
    """What a token endpoint answered: the token and its lifetime in seconds."""

    value: str = field(repr=False)
    expires_in: float


class TokenProvider:
    """Bearer tokens of one partner account, shared through a TokenStore.

    `exchange` performs the partner's token request (without auth) and returns the token; it
    raises ChannelError on failure (429 carrying `retry_after`).
    """

    def __init__(
        self,
        partner: str,
        key: TokenKey,
        exchange: Callable[[], Awaitable[IssuedToken]],
        *,
        margin: float,
        store: TokenStore | None = None,
    ) -> None:
        self.partner = partner
        self.key = key
        self._exchange = exchange
        self.margin = margin
        self.store: TokenStore = store or MemoryTokenStore()
        self._cached: StoredToken | None = None
        #: Token exchanges this provider made (the store counts those of every process).
        self.exchanges = 0

    def __repr__(self) -> str:
        return f"TokenProvider({self.partner}, cached={self._cached is not None}, exchanges={self.exchanges})"

    def use_store(self, store: TokenStore) -> None:
        """Keep tokens in `store` from now on (forgets the locally cached one)."""
        self.store, self._cached = store, None

    def _throttled(self, seconds: float) -> TokenRateLimitedError:
        return TokenRateLimitedError(
            self.partner,
            f"token endpoint rate-limited: no token exchange for {seconds:.0f}s more",
            status_code=429,
            retry_after=seconds,
        )

    def _usable(self, token: StoredToken | None, stale: str | None = None) -> str | None:
        if token is not None and token.usable(self.margin, stale):
            self._cached = token
            return token.value
        return None

    async def bearer(self) -> str:
        """A valid token: cached, else stored by any process, else freshly exchanged."""
        value = self._usable(self._cached)
        if value is None:
            stored = await self.store.load(self.key)
            value = self._usable(stored)
            if value is None and stored is not None and stored.throttled_for() > 0:
                raise self._throttled(stored.throttled_for())  # fail fast, no lock taken
        return value if value is not None else await self._refresh(stale=None)

    async def refresh(self, stale: str) -> str:
        """A token other than `stale` (which the partner refused with 401)."""
        self._cached = None
        return await self._refresh(stale=stale)

    async def _refresh(self, stale: str | None) -> str:
        throttled: TokenRateLimitedError | None = None
        async with self.store.exclusive(self.key) as slot:
            # Another process may have refreshed while this one waited for the lock.
            value = self._usable(slot.current, stale)
            if value is not None:
                return value
            if slot.current is not None and slot.current.throttled_for() > 0:
                raise self._throttled(slot.current.throttled_for())
            if stale is not None and slot.current is not None and slot.current.value == stale:
                await slot.invalidate()
            try:
                issued = await self._exchange()
            except ChannelError as exc:
                if exc.status_code != 429:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else DEFAULT_TOKEN_RETRY_AFTER
                await slot.defer(time.time() + wait)
                throttled = self._throttled(wait)
            else:
                self.exchanges += 1
                await slot.save(issued.value, time.time() + issued.expires_in)
                self._cached = slot.current
                return issued.value
        raise throttled


class BearerAuth(httpx.Auth):
    """httpx auth for an AsyncClient: the provider's token, refreshed once on a 401."""

    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    def __repr__(self) -> str:
        return f"BearerAuth({self.provider!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("BearerAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.provider.bearer()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            # The token may have been revoked early: invalidate it, fetch another, retry once.
            token = await self.provider.refresh(stale=token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request
