"""The run-owned adapter pool: one adapter per channel per run, closed when the run ends."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.orm import Session

from channels.base import ChannelName
from tasks import resources
from tests.sync.conftest import make_hotel

pytestmark = pytest.mark.postgres


def test_adapters_live_in_a_run_pool_and_close_with_it(committed: Session) -> None:
    hotel = make_hotel(committed, days=1, channels=(ChannelName.AGODA, ChannelName.EXPEDIA))
    committed.commit()
    agoda, expedia = hotel.channels[ChannelName.AGODA], hotel.channels[ChannelName.EXPEDIA]

    with pytest.raises(resources.NoAdapterPoolError):
        resources.adapter_for(agoda)

    async def two_runs() -> None:
        async with resources.adapter_pool() as first:
            a1 = resources.adapter_for(agoda)
            assert resources.adapter_for(agoda) is a1  # reused within the run
            e1 = resources.adapter_for(expedia)
            async with resources.adapter_pool() as nested:  # a nested block joins the run's
                assert nested is first and resources.adapter_for(agoda) is a1
            # Concurrent tasks of the run see the same pool.

            async def in_task() -> object:
                return resources.adapter_for(agoda)

            assert await asyncio.gather(in_task(), in_task()) == [a1, a1]
            assert len(first) == 2
        assert a1._client.is_closed and e1._client.is_closed  # type: ignore[attr-defined]
        async with resources.adapter_pool():
            a2 = resources.adapter_for(agoda)
            assert a2 is not a1 and not a2._client.is_closed  # type: ignore[attr-defined]
        with pytest.raises(resources.NoAdapterPoolError):
            resources.adapter_for(agoda)

    asyncio.run(two_runs())


def test_partner_calls_are_cut_off_after_the_configured_timeout(committed: Session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """INNSYNC_PARTNER_TIMEOUT bounds every partner call of a run's adapters: an answer that
    takes 3 s is a transient timeout with the bound at 0.5 s (it used to be read by nothing:
    every adapter waited its built-in 20 s)."""
    from channels.base import TransientChannelError
    from channels.simulators.common import FaultSettings
    from channels.simulators.server import build_app, running_server
    from innsync.settings import get_settings
    from tests.sync.conftest import point_channel_at

    hotel = make_hotel(committed, days=1, channels=(ChannelName.EXPEDIA,))
    cid = hotel.channels[ChannelName.EXPEDIA]
    committed.commit()
    sim = build_app(ChannelName.EXPEDIA, bookings=1, seed=3,
                    faults=FaultSettings(timeout_rate=1.0, timeout_seconds=3.0))
    monkeypatch.setenv("INNSYNC_PARTNER_TIMEOUT", "0.5")
    get_settings.cache_clear()

    async def fetch() -> None:
        async with resources.adapter_pool():
            await resources.adapter_for(cid).fetch_bookings()

    try:
        with running_server(sim) as url:  # real HTTP: an in-process transport has no timeouts
            point_channel_at(committed, cid, url)
            with pytest.raises(TransientChannelError, match="timeout"):
                asyncio.run(fetch())
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
