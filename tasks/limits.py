"""Partner request budgets (Prefect global rate limits) and taking their slots.

Tasks call `rate_limit(partner_limit(channel), strict=False)` before each partner request;
deployments/limits.py creates the limits on the Prefect server. `limit` is the burst,
`slot_decay_per_second` the sustained requests per second across every worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect.concurrency.asyncio import rate_limit

from channels.base import ChannelName


def partner_limit(channel_name: str) -> str:
    """Name of the Prefect global rate limit for one partner's API."""
    return f"partner-{channel_name.replace('.', '-')}"


async def take_partner_slots(channel_name: str, requests: int) -> None:
    """Wait for `requests` slots of the partner's rate limit, in bursts the limit allows
    (Prefect refuses a request for more slots than the limit holds)."""
    burst = burst_of(channel_name)
    while requests > 0:
        take = min(requests, burst)
        await rate_limit(partner_limit(channel_name), occupy=take, strict=False)
        requests -= take


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
