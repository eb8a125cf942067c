"""Partner adapters pooled per run, and the database-backed token store they share.

A run opens an `AdapterPool` (tasks/runs.py does, for every sync run; `adapter_pool()`
for anything else) and every task inside it gets the channel's adapter from that pool, so
an open HTTP connection is reused across the pages and tasks of one run; the pool closes
its adapters when the run ends, and no adapter outlives it. Partner tokens live in the database
(`partner_auth_tokens`, see channels/tokens.py): every process and run of an account shares
one token, refreshed by one process at a time under an advisory lock.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.orm import Session

from channels.base import ChannelAdapter, ChannelConfig, ChannelName, TransientChannelError
from channels.registry import get_adapter
from channels.tokens import StoredToken, TokenKey, TokenSlot
from db.engine import get_sessionmaker, session_scope
from db.repositories import auth_tokens
from db.repositories.accounts import effective_config, sealed_configs
from db.repositories.channels import (
    channels_facts,
    config_to_dict,
    get_mappings,
    property_channels_facts,
)
from innsync.settings import get_settings

#: Tests and demos route a channel's traffic to an in-process simulator.
transport_overrides: dict[int, httpx.AsyncBaseTransport] = {}
#: How long a process waits for another one's token exchange before failing its call.
TOKEN_LOCK_WAIT_SECONDS = 15.0


class _DbSlot:
    """The account's row under its advisory lock (writes go into the locked transaction)."""

    def __init__(self, session: Session, key: TokenKey, current: StoredToken | None) -> None:
        self.session, self.key, self.current = session, key, current

    async def _reread(self) -> None:
        k = self.key
        self.current = await asyncio.to_thread(
            auth_tokens.read_token, self.session, k.partner, k.account, k.fingerprint
        )

    async def save(self, value: str, expires_at: float) -> None:
        k = self.key
        await asyncio.to_thread(
            auth_tokens.save_token, self.session, k.partner, k.account, k.fingerprint, value, expires_at
        )
        await self._reread()

    async def invalidate(self) -> None:
        await asyncio.to_thread(auth_tokens.invalidate_token, self.session, self.key.partner, self.key.account)
        await self._reread()

    async def defer(self, not_before: float) -> None:
        k = self.key
        await asyncio.to_thread(auth_tokens.defer_exchanges, self.session, k.partner, k.account, not_before)
        await self._reread()


def _finish(session: Session) -> None:
    """Commit what the slot wrote (releasing the lock); roll back if the transaction broke."""
    try:
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


class DbTokenStore:
    """TokenStore over `partner_auth_tokens` (db/repositories/auth_tokens.py). Blocking
    database calls run in threads, so waiting for the lock never blocks the event loop.

    Within one event loop (a batch pulls many channels of one account at once) only one
    coroutine per account waits for the database lock; the others wait on an asyncio lock
    and then find the fresh token. Without it every coroutine held one of the loop's few
    executor threads in `pg_advisory_xact_lock`, and the holder had no thread left to save
    the token: they all waited out the lock timeout."""

    def __init__(self, lock_wait_seconds: float = TOKEN_LOCK_WAIT_SECONDS) -> None:
        self.lock_wait_seconds = lock_wait_seconds
        self._gates: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[TokenKey, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    def _gate(self, key: TokenKey) -> asyncio.Lock:
        gates = self._gates.setdefault(asyncio.get_running_loop(), {})
        return gates.setdefault(key, asyncio.Lock())

    def __repr__(self) -> str:
        return "DbTokenStore()"

    @staticmethod
    def _load(key: TokenKey) -> StoredToken | None:
        with session_scope() as session:
            return auth_tokens.read_token(session, key.partner, key.account, key.fingerprint)

    async def load(self, key: TokenKey) -> StoredToken | None:
        return await asyncio.to_thread(self._load, key)

    def _lock_and_read(self, session: Session, key: TokenKey) -> StoredToken | None:
        auth_tokens.lock_account(session, key.partner, key.account, wait_seconds=self.lock_wait_seconds)
        return auth_tokens.read_token(session, key.partner, key.account, key.fingerprint)

    @asynccontextmanager
    async def exclusive(self, key: TokenKey) -> AsyncIterator[TokenSlot]:
        async with self._gate(key):
            session = get_sessionmaker()()
            try:
                current = await asyncio.to_thread(self._lock_and_read, session, key)
            except auth_tokens.TokenLockTimeoutError as exc:
                session.close()
                raise TransientChannelError(key.partner, str(exc)) from None
            except BaseException:
                session.close()
                raise
            try:
                yield _DbSlot(session, key, current)
            finally:
                await asyncio.to_thread(_finish, session)


#: One store for every adapter of this process (it keeps no state of its own).
token_store = DbTokenStore()


@dataclass(frozen=True)
class ChannelInfo:
    """Plain facts about a channel (safe to log: no secrets)."""

    id: int
    name: str
    channel_name: ChannelName
    enabled: bool
    property_id: int | None


def channel_info(channel_id: int) -> ChannelInfo:
    """Plain facts about a channel (LookupError when there is none)."""
    return channel_infos([channel_id])[channel_id]


def channel_infos(channel_ids: Sequence[int]) -> dict[int, ChannelInfo]:
    """channel_info of many channels in one query, by id (LookupError naming the missing)."""
    with session_scope() as session:
        facts = channels_facts(session, channel_ids)
    return {cid: ChannelInfo(f.id, f.name, ChannelName(f.channel_name), f.enabled,
                             f.property_id)
            for cid, f in facts.items()}


def property_channel_infos(property_id: int) -> dict[int, ChannelInfo]:
    """channel_info of a property's enabled channels, in one query, by id (in id order)."""
    with session_scope() as session:
        facts = property_channels_facts(session, property_id)
    return {cid: ChannelInfo(f.id, f.name, ChannelName(f.channel_name), f.enabled,
                             f.property_id)
            for cid, f in facts.items()}


def channel_infos_if_all(channel_ids: Sequence[int]) -> dict[int, ChannelInfo]:
    """`channel_infos`, or none when one of the channels was deleted meanwhile (each caller
    then reads its own channel's facts and only the deleted one's fails)."""
    try:
        return channel_infos(channel_ids)
    except LookupError:
        return {}


#: Config fields a request may override for one run; secrets always come from storage.
OVERRIDABLE = ("endpoint", "hotelId", "propertyId")


class OverrideRefusedError(ValueError):
    """A per-run config override names a field that may not be overridden."""


def clean_overrides(overrides: dict[str, Any] | None) -> dict[str, str]:
    """The non-empty overrides; OverrideRefusedError naming any other key (only key names are
    ever shown, never values: the refused ones may be secrets)."""
    given = overrides or {}
    refused = sorted(str(k) for k in given if k not in OVERRIDABLE)
    if refused:
        raise OverrideRefusedError(
            f"config overrides may set only {', '.join(OVERRIDABLE)} for a run; "
            f"refused: {', '.join(refused)}"
        )
    return {k: str(v) for k, v in given.items() if v}


def run_config(stored: ChannelConfig, overrides: dict[str, str]) -> ChannelConfig:
    """The stored config with this run's overrides applied (validated like a stored one)."""
    if not overrides:
        return stored
    return ChannelConfig.model_validate({**config_to_dict(stored), **overrides})


def _adapter_options(session: Session, channel_name: ChannelName, channel_id: int) -> dict[str, Any]:
    """Partner-specific adapter arguments read from the database."""
    if channel_name is ChannelName.AIRBNB:
        # Airbnb: one listing per room type; the mapped partner room codes are the listing ids.
        listings = sorted(set(get_mappings(session, channel_id).rooms.values()))
        return {"listing_ids": listings} if listings else {}
    return {}


class NoAdapterPoolError(RuntimeError):
    """A partner adapter was asked for outside any run's adapter pool."""


class AdapterPool:
    """The partner adapters of one run: one per channel and config version, created on
    first use, closed together by `aclose()`."""

    def __init__(self) -> None:
        self._adapters: dict[tuple[int, str], ChannelAdapter] = {}

    def __len__(self) -> int:
        return len(self._adapters)

    def get(self, channel_id: int, overrides: dict[str, str] | None = None) -> ChannelAdapter:
        """The channel's adapter, built from the stored config with this run's non-secret
        overrides (endpoint, hotelId, propertyId)."""
        extra = clean_overrides(overrides)
        with session_scope() as session:
            sealed = sealed_configs(session, channel_id)
            if sealed is None:
                raise LookupError(f"channel {channel_id} not found")
            channel_name = ChannelName(sealed.channel_name)
            options = _adapter_options(session, channel_name, channel_id)
        version = hashlib.sha256(
            (sealed.channel + (sealed.account or "") + repr(sorted(extra.items()))
             + repr(sorted(options.items()))).encode()
        ).hexdigest()[:16]
        key = (channel_id, version)
        adapter = self._adapters.get(key)
        if adapter is None:
            adapter = get_adapter(
                channel_name,
                run_config(effective_config(sealed.channel, sealed.account), extra),
                transport=transport_overrides.get(channel_id),
                timeout=partner_timeout(),
                **options,
            )
            adapter.use_token_store(token_store)
            self._adapters[key] = adapter
        return adapter

    async def aclose(self) -> None:
        """Close every adapter (their tokens stay in the database for the next run)."""
        adapters, self._adapters = list(self._adapters.values()), {}
        for adapter in adapters:
            await adapter.aclose()


#: The pool of the run the current task belongs to (set only by `adapter_pool()`).
_current_pool: ContextVar[AdapterPool | None] = ContextVar("innsync_adapter_pool", default=None)


@asynccontextmanager
async def adapter_pool() -> AsyncIterator[AdapterPool]:
    """Open a pool for the run inside the block (a nested block reuses the open one)."""
    current = _current_pool.get()
    if current is not None:
        yield current
        return
    pool = AdapterPool()
    token = _current_pool.set(pool)
    try:
        yield pool
    finally:
        _current_pool.reset(token)
        await pool.aclose()


def partner_timeout() -> httpx.Timeout:
    """Every partner call's bound (INNSYNC_PARTNER_TIMEOUT seconds; connecting: at most 5)."""
    seconds = get_settings().partner_timeout
    return httpx.Timeout(seconds, connect=min(seconds, 5.0))


def adapter_for(channel_id: int, overrides: dict[str, str] | None = None) -> ChannelAdapter:
    """The channel's adapter from the current run's pool (NoAdapterPoolError outside one)."""
    pool = _current_pool.get()
    if pool is None:
        raise NoAdapterPoolError(
            "partner adapters live in a run's pool: use tasks.runs.sync_run or "
            "tasks.resources.adapter_pool()"
        )
    return pool.get(channel_id, overrides)
