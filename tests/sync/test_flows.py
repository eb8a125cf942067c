"""Channel sync flows against the partner simulators, with a real Prefect server."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from channels.base import ChannelName
from channels.simulators.server import build_app, running_server
from db.models import ChannelBooking, ChannelSyncLog
from flows.channel_sync import sync_bookings
from flows.runner import run_flow
from tests.sync.conftest import make_hotel, point_channel_at

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_sync_bookings_over_loopback_stores_and_acks_each_once(committed):
    hotel = make_hotel(committed, units=50, days=400, channels=(ChannelName.BOOKING_COM,))
    committed.commit()
    cid = hotel.channels[ChannelName.BOOKING_COM]
    sim = build_app(ChannelName.BOOKING_COM, bookings=30, seed=7)
    with running_server(sim) as url:
        point_channel_at(committed, cid, url)
        out = run_flow(sync_bookings, channel_id=cid)
        assert out.ok, out.error
        assert out.flow_run_id is not None
        result = out.value
        assert result["recordsFailed"] == 0, result["errors"]
        state = sim.state.sim
        assert state.queue.stats()["pending"] == 0
        ids = {m.booking.booking_id for m in state.queue.messages}
        stored = committed.scalar(
            select(func.count()).select_from(ChannelBooking).where(ChannelBooking.channel_id == cid)
        )
        assert stored == len(ids)
        again = run_flow(sync_bookings, channel_id=cid)
        assert again.ok and again.value["new"] == 0 and again.value["acked"] == 0
    log = committed.scalars(
        select(ChannelSyncLog).where(ChannelSyncLog.channel_id == cid).order_by(ChannelSyncLog.id)
    ).first()
    assert log.status == "success" and log.flow_run_id == out.flow_run_id
    assert log.records_processed == result["recordsProcessed"]
    last = committed.execute(
        text("SELECT last_successful_sync FROM channels WHERE id = :c"), {"c": cid}
    ).scalar()
    assert "sync_bookings" in last
