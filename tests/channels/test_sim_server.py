from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from channels.simulators.catalog import CATALOG, PMS_RATE_PLANS, PMS_ROOM_TYPES, partner_rate_plan
from channels.simulators.common import FaultSettings
from channels.simulators.server import build_app, running_server
from innsync.cli import app as cli


@pytest.mark.parametrize("channel", ["booking.com", "expedia"])
def test_build_app_and_loopback_admin(channel: str) -> None:
    app = build_app(channel, bookings=3, seed=1, faults=FaultSettings(latency_ms=1))
    assert app.state.sim.faults.latency_ms == 1
    with running_server(app) as base_url:
        stats = httpx.get(f"{base_url}/_sim/stats").json()
        assert stats["messages"] >= 3 and stats["acked"] == 0
        httpx.post(f"{base_url}/_sim/bookings", params={"count": 2})
        assert httpx.get(f"{base_url}/_sim/stats").json()["messages"] > stats["messages"]


@pytest.mark.parametrize("channel", ["booking.com", "agoda", "expedia", "airbnb"])
def test_admin_bookings_are_made_now_and_answered(channel: str) -> None:
    """Guests booking now: stamped within the last minutes (a change-time filter sees them
    as new), answered with ids, rooms and nights; `changes=false` makes new bookings only."""
    from datetime import UTC, datetime, timedelta

    app = build_app(channel, bookings=0, seed=4)
    with running_server(app) as base_url:
        answer = httpx.post(f"{base_url}/_sim/bookings", params={"count": 5, "changes": "false"}).json()
    assert answer["added"] == 5 and len(answer["bookings"]) == 5
    assert {b["event"] for b in answer["bookings"]} == {"new"}
    made = {m.booking.booking_id: m.booking for m in app.state.sim.queue.messages}
    for b in answer["bookings"]:
        sim = made[b["booking_id"]]
        assert b["rooms"] == [{"room_type": r.room_type, "check_in": r.check_in.isoformat(),
                               "check_out": r.check_out.isoformat()} for r in sim.rooms]
        assert b["rooms"][0]["room_type"] in PMS_ROOM_TYPES
        assert datetime.now(UTC) - timedelta(seconds=5 * 90 + 5) <= sim.created_at <= datetime.now(UTC)


def test_admin_ari_days_reads_one_rooms_accepted_values() -> None:
    from datetime import date

    app = build_app("agoda", bookings=0, seed=4)
    app.state.sim.ari.apply("3301", None, date(2027, 1, 1), date(2027, 1, 5), None, {"available": 3})
    app.state.sim.ari.apply("3301", "BAR", date(2027, 1, 2), date(2027, 1, 2), None, {"price": 90})
    app.state.sim.ari.apply("3302", None, date(2027, 1, 2), date(2027, 1, 2), None, {"available": 1})
    with running_server(app) as base_url:
        days = httpx.get(f"{base_url}/_sim/ari/days",
                         params={"room": "3301", "start": "2027-01-02", "end": "2027-01-03"}).json()
        assert days == {"2027-01-02": {"available": 3}, "2027-01-03": {"available": 3}}
        assert httpx.get(f"{base_url}/_sim/ari/days", params={"room": "3301", "start": "x",
                                                             "end": "2027-01-03"}).status_code == 422


def test_catalog_covers_every_pms_code() -> None:
    for channel, entry in CATALOG.items():
        assert set(entry["room_types"]) == set(PMS_ROOM_TYPES), channel
        assert entry["hotel_id"]
        assert len(set(entry["room_types"].values())) == len(PMS_ROOM_TYPES)
    for channel in ("booking.com", "expedia"):
        assert set(CATALOG[channel]["rate_plans"]) == set(PMS_RATE_PLANS)  # type: ignore[index]
    assert partner_rate_plan("airbnb", "NRF") == CATALOG["airbnb"]["rate_plans"]["BAR"]  # type: ignore[index]


def test_cli_has_simulate_command() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--help"])
    assert result.exit_code == 0
    for option in ("--channel", "--port", "--bookings", "--seed", "--error-rate", "--rate-limit-rate",
                   "--latency-ms", "--timeout-rate", "--malformed-rate", "--partial-failure-rate",
                   "--duplicate-rate"):
        assert option in result.output
