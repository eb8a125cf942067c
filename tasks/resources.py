"""Long-lived partner adapters, one per channel, event loop and config version.

Tasks get adapters from here instead of passing them around, so a Booking.com token or an
open HTTP connection is reused across pages, tasks and flow runs in one worker process.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text

from channels.base import ChannelAdapter, ChannelName
from channels.registry import get_adapter
from db.engine import session_scope
from db.repositories.channels import open_config

_adapters: dict[tuple[int, int, str], ChannelAdapter] = {}
#: Partner auth state (token + wall-clock expiry) by (channel id, config version): Booking.com
#: allows 30 token exchanges an hour, so a token must outlive one flow run's adapter.
_auth_states: dict[tuple[int, str], dict[str, Any]] = {}
#: Tests and demos route a channel's traffic to an in-process simulator.
transport_overrides: dict[int, httpx.AsyncBaseTransport] = {}


@dataclass(frozen=True)
class ChannelInfo:
    """Plain facts about a channel (safe to log: no secrets)."""

    id: int
    name: str
    channel_name: ChannelName
    enabled: bool
    property_id: int | None


def channel_info(channel_id: int) -> ChannelInfo:
    with session_scope() as session:
        row = session.execute(
            text("SELECT id, name, channel_name, enabled, property_id FROM channels WHERE id = :c"),
            {"c": channel_id},
        ).first()
    if row is None:
        raise LookupError(f"channel {channel_id} not found")
    return ChannelInfo(
        row.id, row.name, ChannelName(row.channel_name), row.enabled, row.property_id
    )


#: Config fields a request may override for one run; secrets always come from storage.
OVERRIDABLE = frozenset({"endpoint", "hotelId", "propertyId"})


def clean_overrides(overrides: dict[str, Any] | None) -> dict[str, str]:
    """The non-secret, non-empty overrides (anything else is dropped, never logged)."""
    return {k: str(v) for k, v in (overrides or {}).items() if k in OVERRIDABLE and v}


def adapter_for(channel_id: int, overrides: dict[str, str] | None = None) -> ChannelAdapter:
    """The adapter of a channel for the running event loop (created on first use), with
    optional non-secret config overrides for this run."""
    with session_scope() as session:
        row = session.execute(
            text("SELECT channel_name, config_encrypted FROM channels WHERE id = :c"),
            {"c": channel_id},
        ).first()
    if row is None:
        raise LookupError(f"channel {channel_id} not found")
    extra = clean_overrides(overrides)
    version = hashlib.sha256(
        (row.config_encrypted + repr(sorted(extra.items()))).encode()
    ).hexdigest()[:16]
    key = (id(asyncio.get_running_loop()), channel_id, version)
    adapter = _adapters.get(key)
    if adapter is None:
        adapter = get_adapter(
            row.channel_name,
            open_config(row.config_encrypted),
            transport=transport_overrides.get(channel_id),
        )
        saved = _auth_states.get((channel_id, version))
        if saved is not None:
            adapter.import_auth_state(saved)
        _adapters[key] = adapter
    return adapter


async def close_adapters() -> None:
    """Close the adapters of the running loop (end of a flow run or test)."""
    loop = id(asyncio.get_running_loop())
    # list() snapshots the keys at once: flows in other threads may add adapters meanwhile.
    for key in [k for k in list(_adapters) if k[0] == loop]:
        adapter = _adapters.pop(key)
        state = adapter.export_auth_state()  # kept in memory only, never logged
        if state is not None:
            _auth_states[(key[1], key[2])] = state
        await adapter.aclose()
