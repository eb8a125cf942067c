"""Prefect global rate limits, one per partner API, created or updated at startup.

Tasks call `rate_limit(partner_limit(channel), strict=False)` before each partner request:
without the limit on the server they run unthrottled, so `innsync up` and `serve` upsert
these first. `limit` is the burst; `slot_decay_per_second` the sustained requests per second
across every worker sharing the Prefect server.
"""

from __future__ import annotations

from dataclasses import dataclass

from channels.base import ChannelName
from tasks.bookings import partner_limit


@dataclass(frozen=True)
class PartnerLimit:
    """A partner's request budget: a burst and a sustained rate (requests per second)."""

    channel: ChannelName
    limit: int
    slot_decay_per_second: float

    @property
    def name(self) -> str:
        return partner_limit(self.channel.value)


# Partners publish few hard numbers (ota-protocols.md): Booking.com asks for one poll per
# ~20 s per hotel and no concurrent calls per hotel, Channex-style managers allow ~10 ARI calls
# a minute per property, Airbnb's limits are private (429 + Retry-After). These budgets are
# per innsync install (many properties), well under what a partner throttles.
PARTNER_LIMITS: tuple[PartnerLimit, ...] = (
    PartnerLimit(ChannelName.BOOKING_COM, limit=10, slot_decay_per_second=2.0),
    PartnerLimit(ChannelName.AGODA, limit=10, slot_decay_per_second=2.0),
    PartnerLimit(ChannelName.EXPEDIA, limit=10, slot_decay_per_second=2.0),
    PartnerLimit(ChannelName.AIRBNB, limit=5, slot_decay_per_second=1.0),
)


def burst_of(channel_name: str) -> int:
    """The partner limit's burst: the most slots one acquisition may take."""
    for item in PARTNER_LIMITS:
        if item.channel.value == channel_name:
            return item.limit
    raise KeyError(f"no rate limit for partner {channel_name}")


async def ensure_limits_async(limits: tuple[PartnerLimit, ...] = PARTNER_LIMITS) -> list[str]:
    """Create or update every partner rate limit on the configured Prefect server."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        for item in limits:
            await client.upsert_global_concurrency_limit_by_name(
                item.name, item.limit, slot_decay_per_second=item.slot_decay_per_second
            )
    return [item.name for item in limits]


def ensure_limits(limits: tuple[PartnerLimit, ...] = PARTNER_LIMITS) -> list[str]:
    """`ensure_limits_async` for synchronous callers (no running event loop)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for item in limits:
            client.upsert_global_concurrency_limit_by_name(
                item.name, item.limit, slot_decay_per_second=item.slot_decay_per_second
            )
    return [item.name for item in limits]


if __name__ == "__main__":
    # `python -m deployments.limits`: for installs that run workers instead of serve.py.
    print("rate limits ready:", ", ".join(ensure_limits()))
