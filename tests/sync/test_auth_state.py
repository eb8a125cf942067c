"""Partner tokens outlive one flow run's adapters (tasks.resources keeps their auth state)."""

from __future__ import annotations

import asyncio
import time

import httpx

from channels.base import ChannelName
from channels.simulators.server import build_app
from tests.sync.conftest import make_hotel, point_channel_at


def test_booking_com_token_reused_across_runs(committed):  # type: ignore[no-untyped-def]
    """Two runs (adapters closed in between) make one token exchange; an expired saved token
    makes the next run exchange again."""
    from tasks import resources

    hotel = make_hotel(committed, channels=(ChannelName.BOOKING_COM,))
    committed.commit()
    cid = hotel.channels[ChannelName.BOOKING_COM]
    sim = build_app(ChannelName.BOOKING_COM, bookings=3, seed=2)
    point_channel_at(committed, cid, "http://booking.sim", apiKey="k", apiSecret="s",
                     hotelId=sim.state.sim.hotel_id)
    resources.transport_overrides[cid] = httpx.ASGITransport(app=sim)
    for k in [k for k in resources._auth_states if k[0] == cid]:
        resources._auth_states.pop(k)  # left by earlier tests whose channel had this id

    async def run() -> None:
        await resources.adapter_for(cid).fetch_bookings()
        await resources.close_adapters()

    try:
        asyncio.run(run())
        asyncio.run(run())
        assert len(sim.state.sim.extra["exchanges"]) == 1
        (key,) = [k for k in resources._auth_states if k[0] == cid]
        resources._auth_states[key] = {**resources._auth_states[key], "expires_at": time.time() - 1}
        asyncio.run(run())
        assert len(sim.state.sim.extra["exchanges"]) == 2
    finally:
        resources.transport_overrides.pop(cid, None)
        for k in [k for k in resources._auth_states if k[0] == cid]:
            resources._auth_states.pop(k)
