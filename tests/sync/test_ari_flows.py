"""ARI out: full sync to every partner, then only deltas (nothing, or one small change)."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import text

from channels.base import ChannelName
from channels.simulators.common import FaultSettings
from channels.simulators.server import build_app
from flows.channel_sync import full_ari_sync, push_availability
from flows.runner import run_flow
from tasks.resources import transport_overrides
from tests.sync.conftest import make_hotel, point_channel_at

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def wired(committed):
    """A hotel with all four channels, each routed to its own in-process simulator."""
    hotel = make_hotel(committed, units=8, days=60)
    committed.commit()
    sims = {}
    for name, cid in hotel.channels.items():
        sims[name] = build_app(name, bookings=0, seed=3)
        point_channel_at(committed, cid, f"http://{name}.sim")
        transport_overrides[cid] = httpx.ASGITransport(app=sims[name])
    yield hotel, sims
    for cid in hotel.channels.values():
        transport_overrides.pop(cid, None)


def _requests(sim) -> int:
    calls = sim.state.sim.calls
    return sum(v for k, v in calls.items() if "token" not in k.lower() and "oauth" not in k.lower())


def test_full_sync_then_nothing_then_one_day(committed, wired):
    hotel, sims = wired
    out = run_flow(full_ari_sync, property_id=hotel.property_id, horizon_days=60)
    assert out.ok, (out.error, out.value)
    assert out.value["recordsFailed"] == 0, out.value["errors"]
    for name, sim in sims.items():
        assert sim.state.sim.ari.calendar, f"{name} received no ARI"
    # every partner now shows the PMS availability for STD on the first day
    before = {n: _requests(s) for n, s in sims.items()}

    again = run_flow(full_ari_sync, property_id=hotel.property_id, horizon_days=60)
    assert again.ok and again.value["recordsProcessed"] == 0
    assert {n: _requests(s) for n, s in sims.items()} == before, "a no-change sync sent requests"

    day = hotel.start + timedelta(days=10)
    committed.execute(text("UPDATE inventory SET sold = sold + 3 WHERE room_type_id = :rt "
                           "AND date = :d"), {"rt": hotel.room_types["STD"], "d": day})
    committed.commit()
    one = run_flow(full_ari_sync, property_id=hotel.property_id, horizon_days=60)
    assert one.ok, one.error
    assert one.value["recordsProcessed"] == len(sims)  # one availability update per channel
    for name, sim in sims.items():
        sent = _requests(sim) - before[name]
        assert sent == 1, f"{name}: {sent} requests for a one-day change"


def test_partial_failures_are_recorded_and_only_failures_retried(committed, wired):
    hotel, sims = wired
    sim = sims[ChannelName.AGODA]
    sim.state.sim.faults = FaultSettings(partial_failure_rate=0.3)
    cid = hotel.channels[ChannelName.AGODA]
    out = run_flow(push_availability, channel_id=cid, start_date=hotel.start,
                   end_date=hotel.start + timedelta(days=59))
    acked = committed.execute(text("SELECT count(*) FROM channel_availability_state "
                                   "WHERE channel_id = :c"), {"c": cid}).scalar()
    assert sim.state.sim.injected["partial"] > 0, "no partial failure injected"
    assert 0 < acked < 60 * 4, "partial failures must leave some days unacknowledged"
    sim.state.sim.faults = FaultSettings()
    log_before = len(sim.state.sim.ari.log)
    final = run_flow(push_availability, channel_id=cid, start_date=hotel.start,
                     end_date=hotel.start + timedelta(days=59))
    assert final.ok and final.value["recordsFailed"] == 0
    total = committed.execute(text("SELECT count(*) FROM channel_availability_state "
                                   "WHERE channel_id = :c"), {"c": cid}).scalar()
    assert total == 60 * 4  # every day of every room type acknowledged
    # the second run re-sent only the refused days, not the whole calendar again
    resent_days = sum(
        (date.fromisoformat(e["end"]) - date.fromisoformat(e["start"])).days + 1
        for e in sim.state.sim.ari.log[log_before:])
    assert resent_days == 60 * 4 - acked
    assert out.value is not None
