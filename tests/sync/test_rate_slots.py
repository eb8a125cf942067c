"""Partner rate-limit slots: one per request sent, taken in bursts the limit allows."""

from __future__ import annotations

import asyncio

import pytest
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, rate_limit

from deployments.limits import ensure_limits_async
from tasks.limits import PARTNER_LIMITS, PartnerLimit, burst_of, partner_limit, take_partner_slots

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_more_acks_than_the_burst_are_taken_in_bursts() -> None:
    """12 acknowledgement requests to Airbnb (burst 5): Prefect refuses 12 slots in one
    acquisition; take_partner_slots takes 5 + 5 + 2 and every slot is counted."""
    fast = tuple(PartnerLimit(item.channel, item.limit, slot_decay_per_second=1000.0)
                 for item in PARTNER_LIMITS)
    name = partner_limit("airbnb")

    async def scenario() -> int:
        await ensure_limits_async(fast)
        with pytest.raises(ConcurrencySlotAcquisitionError, match="greater than the limit"):
            await rate_limit(name, occupy=12, strict=False)
        await take_partner_slots("airbnb", 12)
        async with get_client() as client:
            limit = await client.read_global_concurrency_limit_by_name(name)
        return int(limit.limit)

    async def remove() -> None:
        async with get_client() as client:
            for item in fast:
                await client.delete_global_concurrency_limit_by_name(item.name)

    try:
        assert asyncio.run(scenario()) == burst_of("airbnb") == 5
    finally:
        asyncio.run(remove())  # the suite's other flows run without partner limits


def test_burst_of_every_partner_and_an_unknown_one() -> None:
    assert {item.channel.value: burst_of(item.channel.value) for item in PARTNER_LIMITS} == {
        "booking.com": 10, "agoda": 10, "expedia": 10, "airbnb": 5}
    with pytest.raises(KeyError):
        burst_of("hotelbeds")
