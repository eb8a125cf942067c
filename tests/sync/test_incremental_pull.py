"""Scheduled Airbnb pulls read what changed since the last good pull, not every reservation."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from channels.base import ChannelName
from channels.simulators.server import build_app, free_port, running_server
from flows.channel_sync import CHANGE_WINDOW_MARGIN, sync_bookings
from flows.runner import run_flow
from tests.sync.conftest import make_hotel, point_channel_at

pytestmark = pytest.mark.usefixtures("prefect_server")


def _last_log(session: Session, channel_id: int) -> tuple[str, datetime, dict]:  # type: ignore[type-arg]
    session.expire_all()
    row = session.execute(
        text("SELECT status, started_at, details FROM channel_sync_logs WHERE channel_id = :c "
             "AND operation = 'sync_bookings' ORDER BY id DESC LIMIT 1"),
        {"c": channel_id},
    ).one()
    return row.status, row.started_at, row.details or {}


def _stored(session: Session, channel_id: int) -> int:
    return int(session.execute(
        text("SELECT count(*) FROM channel_bookings WHERE channel_id = :c"), {"c": channel_id}
    ).scalar_one())


def test_scheduled_airbnb_pulls_read_only_what_changed(committed):  # type: ignore[no-untyped-def]
    hotel = make_hotel(committed, units=50, days=400, channels=(ChannelName.AIRBNB,))
    committed.commit()
    cid = hotel.channels[ChannelName.AIRBNB]
    app = build_app(ChannelName.AIRBNB, bookings=40, seed=11)
    sim = app.state.sim
    with running_server(app) as url:
        point_channel_at(committed, cid, url, apiKey="client-1", apiSecret="secret-value-1")
        first = run_flow(sync_bookings, channel_id=cid, push_availability=False)
        assert first.ok, first.error
        status, first_started, details = _last_log(committed, cid)
        total = first.value["records_processed"]
        assert status == "success" and "changed_since" not in details  # the first reads all
        # One pass over the listings (acking releases nothing more at Airbnb), no re-reads.
        assert total == len(app.state.airbnb.current_reservations()) == _stored(committed, cid)

        # Nothing new at Airbnb: the window starts before the first pull by the margin and
        # holds only the requests that pull accepted (their status changed then).
        second = run_flow(sync_bookings, channel_id=cid, push_availability=False)
        assert second.ok, second.error
        status, second_started, details = _last_log(committed, cid)
        assert datetime.fromisoformat(details["changed_since"]) == first_started - CHANGE_WINDOW_MARGIN
        since = datetime.fromisoformat(details["changed_since"]).strftime("%Y-%m-%dT%H:%M:%SZ")
        in_window = [r for r in app.state.airbnb.current_reservations() if r["updated_at"] >= since]
        assert app.state.airbnb.decisions and len(in_window) < total
        assert second.value["records_processed"] == len(in_window)

        # Guests book now: the next pull stores them, still without re-reading the rest.
        sim.add_bookings(3, live=True)
        third = run_flow(sync_bookings, channel_id=cid, push_availability=False)
        assert third.ok, third.error
        assert third.value["new"] >= 3
        assert third.value["records_processed"] < total
        assert _stored(committed, cid) == total + third.value["new"]

        # A failed pull does not move the window: the next one reaches back to the last success.
        _, third_started, _ = _last_log(committed, cid)
        point_channel_at(committed, cid, f"http://127.0.0.1:{free_port()}", apiKey="client-1",
                         apiSecret="secret-value-1")
        assert not run_flow(sync_bookings, channel_id=cid, push_availability=False).ok
        assert _last_log(committed, cid)[0] == "failed"
        point_channel_at(committed, cid, url, apiKey="client-1", apiSecret="secret-value-1")
        fourth = run_flow(sync_bookings, channel_id=cid, push_availability=False)
        assert fourth.ok, fourth.error
        details = _last_log(committed, cid)[2]
        assert datetime.fromisoformat(details["changed_since"]) == third_started - CHANGE_WINDOW_MARGIN

        # A per-run override (another endpoint or hotel) is not the history we have: read all.
        other = run_flow(sync_bookings, channel_id=cid, push_availability=False,
                         config_overrides={"endpoint": url})
        assert other.ok, other.error
        assert "changed_since" not in _last_log(committed, cid)[2]
        assert other.value["records_processed"] >= total

        # Dates given by the caller are a window of their own: a full re-read on request.
        full = run_flow(sync_bookings, channel_id=cid, push_availability=False,
                        start_date=first_started.date().replace(year=first_started.year - 1))
        assert full.ok, full.error
        assert "changed_since" not in _last_log(committed, cid)[2]
        assert full.value["records_processed"] >= total
