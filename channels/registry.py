"""Adapter registry keyed by ChannelName: `get_adapter("expedia", config)`."""

from __future__ import annotations

import importlib
from typing import Any

import httpx

from channels.base import ChannelAdapter, ChannelConfig, ChannelName

# "module:Class" paths, imported lazily so one broken adapter cannot break the others.
# Adding a partner is one line here.
_ADAPTERS: dict[ChannelName, str] = {
    ChannelName.BOOKING_COM: "channels.booking_com:BookingComAdapter",
    ChannelName.EXPEDIA: "channels.expedia:ExpediaAdapter",
    ChannelName.AGODA: "channels.agoda:AgodaAdapter",
    ChannelName.AIRBNB: "channels.airbnb:AirbnbAdapter",
}


#: Partners whose booking pull serves every hotel of an account in one call (Booking.com's
#: provider queue; Expedia's BookingRetrievalRQ without `Hotel`): pulled once for all the
#: account's hotels, routed by hotel code (flows/channel_sync.pull_account_bookings).
ACCOUNT_WIDE_PULL = frozenset({ChannelName.BOOKING_COM.value, ChannelName.EXPEDIA.value})


def register(name: ChannelName | str, target: str | type) -> None:
    """Register (or replace) the adapter class for a channel, as a class or "module:Class"."""
    _ADAPTERS[ChannelName(name)] = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def adapter_class(name: ChannelName | str) -> type:
    """The adapter class registered for a channel."""
    channel = ChannelName(name)
    try:
        module_name, _, attr = _ADAPTERS[channel].partition(":")
    except KeyError:
        raise KeyError(f"no adapter registered for channel {channel!s}") from None
    cls: type = getattr(importlib.import_module(module_name), attr)
    return cls


def get_adapter(
    name: ChannelName | str,
    config: ChannelConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    **options: Any,
) -> ChannelAdapter:
    """A new adapter for `name` (call `await adapter.aclose()` when done)."""
    adapter: ChannelAdapter = adapter_class(name)(config, transport=transport, **options)
    return adapter


def channels() -> list[ChannelName]:
    """Channels with a registered adapter."""
    return list(_ADAPTERS)
