"""Partner rate-limit slots: one per request sent, taken in bursts the limit allows."""

from __future__ import annotations

import asyncio

import pytest
from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, rate_limit

from deployments.limits import ensure_limits_async
from tasks.limits import PARTNER_LIMITS, PartnerLimit, burst_of, partner_limit, take_partner_slot

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_more_acks_than_the_burst_are_taken_in_bursts() -> None:
    """12 acknowledgement requests to Airbnb (burst 5): Prefect refuses 12 slots in one
    acquisition; take_partner_slot takes 5 + 5 + 2 and every slot is counted."""
    fast = tuple(PartnerLimit(item.channel, item.limit, slot_decay_per_second=1000.0)
                 for item in PARTNER_LIMITS)
    name = partner_limit("airbnb")

    async def scenario() -> int:
        await ensure_limits_async(fast)
        with pytest.raises(ConcurrencySlotAcquisitionError, match="greater than the limit"):
            await rate_limit(name, occupy=12, strict=False)
        await take_partner_slot("airbnb", 12)
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


def test_budgets_grow_with_a_partners_channels() -> None:
    from tasks.limits import scaled_limits

    one = {item.channel.value: item for item in scaled_limits({"booking.com": 1})}
    assert (one["booking.com"].limit, one["booking.com"].slot_decay_per_second) == (10, 2.0)
    group = {item.channel.value: item for item in scaled_limits({"booking.com": 1000,
                                                                 "airbnb": 30})}
    # 1,000 hotels x 6 requests a minute = 100/s, a burst of five seconds of it.
    assert (group["booking.com"].limit, group["booking.com"].slot_decay_per_second) == (500, 100.0)
    assert (group["airbnb"].limit, group["airbnb"].slot_decay_per_second) == (15, 3.0)
    # Airbnb counts listings: 1,000 hosts x 4 listings is 4,000 reservation reads a poll.
    hosts = {item.channel.value: item for item in scaled_limits({"airbnb": 4000})}
    assert (hosts["airbnb"].limit, hosts["airbnb"].slot_decay_per_second) == (2000, 400.0)
    assert (group["agoda"].limit, group["agoda"].slot_decay_per_second) == (10, 2.0)


def test_maintenance_updates_existing_limits_and_creates_none(committed) -> None:  # type: ignore[no-untyped-def]
    """The maintenance flow brings partner budgets in step with the enabled channels, but
    only where the limits exist (a server without them, as here, stays without)."""
    from prefect.exceptions import ObjectNotFound

    from channels.base import ChannelName
    from deployments.limits import ensure_limits
    from flows.maintenance import maintenance
    from flows.runner import run_flow
    from tests.sync.conftest import make_hotel

    for _ in range(20):
        make_hotel(committed, days=1, channels=(ChannelName.AGODA,))
    committed.commit()
    booking, agoda = partner_limit("booking.com"), partner_limit("agoda")
    ensure_limits(tuple(item for item in PARTNER_LIMITS if item.channel == ChannelName.AGODA))
    try:
        assert run_flow(maintenance).ok
        with get_client(sync_client=True) as client:
            now = client.read_global_concurrency_limit_by_name(agoda)
            with pytest.raises(ObjectNotFound):
                client.read_global_concurrency_limit_by_name(booking)
        assert (now.limit, now.slot_decay_per_second) == (10, 2.0)  # 20 x 6/min = 2/s
        for _ in range(10):
            make_hotel(committed, days=1, channels=(ChannelName.AGODA,))
        committed.commit()
        assert run_flow(maintenance).ok
        with get_client(sync_client=True) as client:
            now = client.read_global_concurrency_limit_by_name(agoda)
        assert (now.limit, now.slot_decay_per_second) == (15, 3.0)  # 30 channels
    finally:
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name(agoda)


def _count_acquisitions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The slots each rate-limit acquisition asks for, in order (the real limit still taken)."""
    import tasks.limits as limits

    asked: list[int] = []
    real = limits.rate_limit

    async def counting(names: str, occupy: int = 1, **kwargs: object) -> None:
        asked.append(occupy)
        await real(names, occupy=occupy, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(limits, "rate_limit", counting)
    return asked


def test_requests_waiting_together_share_one_acquisition(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect's client serves one process's slot requests one at a time: 23 pushes to
    Airbnb (burst 5) waiting at once take their slots in 5 acquisitions (5+5+5+5+3), every
    slot counted, not in 23 round trips in a row. A server limit smaller than the block
    (set by hand, or not yet rescaled) refuses it: the requests then take one slot each;
    a request whose single slot is refused fails."""
    import tasks.limits as limits

    fast = tuple(PartnerLimit(item.channel, item.limit, slot_decay_per_second=1000.0)
                 for item in PARTNER_LIMITS)
    asked = _count_acquisitions(monkeypatch)

    async def scenario() -> None:
        await ensure_limits_async(fast)
        await asyncio.gather(*[limits.take_partner_slot("airbnb") for _ in range(23)])
        assert sorted(asked, reverse=True) == [5, 5, 5, 5, 3]
        # a smaller limit on the server refuses the block of 4: one slot each instead
        async with get_client() as client:
            await client.delete_global_concurrency_limit_by_name(partner_limit("airbnb"))
        await ensure_limits_async((PartnerLimit(fast[3].channel, 2, 1000.0),))
        asked.clear()
        await asyncio.gather(*[limits.take_partner_slot("airbnb") for _ in range(4)])
        assert asked == [4, 1, 1, 1, 1]
        # a limit that holds no slot at all: the request fails, clearly
        await ensure_limits_async((PartnerLimit(fast[3].channel, 0, 1000.0),))
        with pytest.raises(ConcurrencySlotAcquisitionError):
            await limits.take_partner_slot("airbnb")
        # a page of 4 requests whose first slot is refused fails, and its other slots are
        # given up: the one acquisition already on its way when the refusal came, not 3
        # more for nobody; a request waiting behind it is still served (and refused too)
        asked.clear()
        page = asyncio.create_task(limits.take_partner_slot("airbnb", 4))
        await asyncio.sleep(0)
        other = asyncio.create_task(limits.take_partner_slot("airbnb"))
        with pytest.raises(ConcurrencySlotAcquisitionError):
            await page
        with pytest.raises(ConcurrencySlotAcquisitionError):
            await other
        assert asked == [1, 1, 1]

    async def remove() -> None:
        async with get_client() as client:
            for item in fast:
                await client.delete_global_concurrency_limit_by_name(item.name)

    try:
        asyncio.run(scenario())
    finally:
        asyncio.run(remove())


def test_a_page_of_several_requests_takes_its_slots_in_the_batch_block(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An Airbnb page reads 4 listings (4 slots): three such pages waiting together take
    their 12 slots in blocks as large as the burst the batch was allowed (the limit as
    scaled for the partner's listings), not the floor's 5; a server that refuses the block
    (its limit not rescaled yet) gets one slot per request from then on, whatever is allowed
    after."""
    import tasks.limits as limits

    name = partner_limit("airbnb")
    asked = _count_acquisitions(monkeypatch)
    airbnb = next(item.channel for item in PARTNER_LIMITS if item.name == name)

    async def scenario() -> None:
        await ensure_limits_async((PartnerLimit(airbnb, 10, 1000.0),))
        limits.allow_partner_burst("airbnb", 10)
        await asyncio.gather(*[limits.take_partner_slot("airbnb", 4) for _ in range(3)])
        assert sorted(asked, reverse=True) == [10, 2]
        await limits.take_partner_slot("airbnb", 0)  # a page that sends nothing waits for nothing
        assert len(asked) == 2
        asked.clear()
        limits.allow_partner_burst("airbnb", 20)  # more than the server's 10
        await asyncio.gather(*[limits.take_partner_slot("airbnb", 4) for _ in range(3)])
        assert asked == [12] + [1] * 12
        asked.clear()
        limits.allow_partner_burst("airbnb", 10)
        await limits.take_partner_slot("airbnb", 2)
        assert asked == [1, 1]

    async def remove() -> None:
        async with get_client() as client:
            await client.delete_global_concurrency_limit_by_name(name)

    try:
        asyncio.run(scenario())
    finally:
        asyncio.run(remove())


def test_limits_created_meanwhile_by_another_process_are_updated(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`innsync up --workers 4` starts 4 serve processes that each ensure the limits: two
    can read a limit as missing, and the later create conflicts (it stopped the stack with
    ObjectAlreadyExists). Here the read misses once, as in that race: the limit, created by
    the other process, is updated instead, by the sync and the async path."""
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient
    from prefect.exceptions import ObjectNotFound

    from deployments.limits import ensure_limits

    item = PartnerLimit(PARTNER_LIMITS[0].channel, 7, slot_decay_per_second=0.5)
    name = item.name

    def miss_once(cls: type) -> None:
        real = cls.read_global_concurrency_limit_by_name
        missed: list[bool] = []
        if asyncio.iscoroutinefunction(real):
            async def read(self, wanted):  # type: ignore[no-untyped-def]
                if not missed:
                    missed.append(True)
                    raise ObjectNotFound(http_exc=Exception("raced"))
                return await real(self, wanted)
        else:
            def read(self, wanted):  # type: ignore[no-untyped-def]
                if not missed:
                    missed.append(True)
                    raise ObjectNotFound(http_exc=Exception("raced"))
                return real(self, wanted)
        monkeypatch.setattr(cls, "read_global_concurrency_limit_by_name", read)

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, 3, slot_decay_per_second=0.1)
    try:
        miss_once(SyncPrefectClient)
        assert ensure_limits((item,)) == [name]
        with get_client(sync_client=True) as client:
            now = client.read_global_concurrency_limit_by_name(name)
        assert (now.limit, now.slot_decay_per_second) == (7, 0.5)
        miss_once(PrefectClient)
        again = PartnerLimit(item.channel, 9, slot_decay_per_second=0.25)
        assert asyncio.run(ensure_limits_async((again,))) == [name]
        with get_client(sync_client=True) as client:
            now = client.read_global_concurrency_limit_by_name(name)
        assert (now.limit, now.slot_decay_per_second) == (9, 0.25)
    finally:
        monkeypatch.undo()
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name(name)
