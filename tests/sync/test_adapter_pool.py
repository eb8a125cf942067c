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
