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
