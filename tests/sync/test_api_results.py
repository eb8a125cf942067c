"""What a sync call answers is what the sync log says, for the same flow run, for every
operation; past the wait bound (or with ?async=true) a 202 to poll, never an early success."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.auth import create_api_key
from channels.base import ChannelName
from channels.simulators.common import FaultSettings
from channels.simulators.server import build_app
from innsync.settings import Settings, get_settings
from tasks.resources import transport_overrides
from tests.sync.conftest import make_hotel, point_channel_at

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def world(committed):
    hotel = make_hotel(committed, units=20, days=60)
    key = create_api_key(committed, "t-results-operator", "operator")[1]
    committed.commit()
    sims = {}
    for name, cid in hotel.channels.items():
        # partial ARI rejections, so success and failed counts both show
        faults = FaultSettings(partial_failure_rate=0.3)
        sims[name] = build_app(name, bookings=12, seed=5, faults=faults)
        point_channel_at(committed, cid, f"http://{name}.sim")
        transport_overrides[cid] = httpx.ASGITransport(app=sims[name])
    app = create_app()
    app.dependency_overrides[get_settings] = _patient
    with TestClient(app, raise_server_exceptions=False) as client:
        yield hotel, {"X-API-Key": key}, client, app, sims
    for cid in hotel.channels.values():
        transport_overrides.pop(cid, None)


def _patient() -> Settings:
    """Wait for results however slow the machine (the bound itself has its own test)."""
    return get_settings().model_copy(update={"api_wait_seconds": 3600})


def _logged(committed, flow_run_id: str) -> dict[str, int]:
    """The sums of the channel_sync_logs rows of one flow run, read straight from the table."""
    row = committed.execute(
        text(
            "SELECT count(*) AS n, coalesce(sum(records_processed), 0) AS p, "
            "coalesce(sum(records_success), 0) AS s, coalesce(sum(records_failed), 0) AS f "
            "FROM channel_sync_logs WHERE flow_run_id = CAST(:r AS uuid)"
        ),
        {"r": flow_run_id},
    ).one()
    committed.rollback()
    return {"rows": row.n, "recordsProcessed": row.p, "recordsSuccess": row.s,
            "recordsFailed": row.f}


def _answered(body: dict) -> dict[str, int]:
    return {"rows": len(body["channels"]), **{k: body[k] for k in
            ("recordsProcessed", "recordsSuccess", "recordsFailed")}}


def _check(committed, resp) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["finished"] is True and body["state"] in ("completed", "failed"), body
    logged = _logged(committed, body["flowRunId"])
    assert logged["rows"] >= 1
    assert _answered(body) == logged
    return body


def test_sync_bookings_counts_are_the_sync_log(world, committed):
    hotel, headers, client, _, _ = world
    cid = hotel.channels[ChannelName.BOOKING_COM]
    body = _check(committed, client.post(f"/api/channels/{cid}/sync-bookings", json={},
                                         headers=headers))
    assert body["recordsProcessed"] > 0 and body["success"] is True
    stored = committed.execute(
        text("SELECT count(*) FROM channel_bookings WHERE channel_id = :c"), {"c": cid}
    ).scalar()
    committed.rollback()
    assert stored > 0


def test_availability_delta_and_explicit_counts_are_the_sync_log(world, committed):
    hotel, headers, client, _, _ = world
    cid = hotel.channels[ChannelName.EXPEDIA]
    url = f"/api/channels/{cid}/sync-availability"
    delta = _check(committed, client.post(url, headers=headers, json={
        "roomTypes": ["STD", "DLX"], "startDate": str(hotel.start),
        "endDate": str(hotel.start + timedelta(days=40))}))
    assert delta["recordsProcessed"] > 0
    day = hotel.start + timedelta(days=3)
    explicit = _check(committed, client.post(url, headers=headers, json={
        "roomTypes": ["STD", "DLX", "STE"], "date": str(day), "available": 2}))
    assert explicit["recordsProcessed"] == 3
    assert explicit["recordsSuccess"] + explicit["recordsFailed"] == 3


def test_rates_delta_and_explicit_counts_are_the_sync_log(world, committed):
    hotel, headers, client, _, _ = world
    cid = hotel.channels[ChannelName.AGODA]
    url = f"/api/channels/{cid}/sync-rates"
    delta = _check(committed, client.post(url, headers=headers, json={
        "roomType": "STD", "startDate": str(hotel.start),
        "endDate": str(hotel.start + timedelta(days=40))}))
    assert delta["recordsProcessed"] > 0
    explicit = _check(committed, client.post(url, headers=headers, json={
        "roomType": "DLX", "date": str(hotel.start + timedelta(days=4)), "rate": "150.00"}))
    assert explicit["recordsProcessed"] >= 1


def test_full_sync_counts_are_the_sync_logs_of_every_channel(world, committed):
    hotel, headers, client, _, _ = world
    body = _check(committed, client.post("/api/ari/full-sync", headers=headers, json={
        "propertyId": hotel.property_id, "horizonDays": 20}))
    assert {c["channelId"] for c in body["channels"]} == set(hotel.channels.values())


def test_async_answers_202_then_the_same_result_when_polled(world, committed):
    hotel, headers, client, _, _ = world
    cid = hotel.channels[ChannelName.AIRBNB]
    resp = client.post(f"/api/channels/{cid}/sync-bookings?async=true", json={},
                       headers=headers)
    assert resp.status_code == 202, resp.text
    started = resp.json()
    assert started["success"] is False and started["finished"] is False
    assert resp.headers["Location"] == f"/api/flow-runs/{started['flowRunId']}"
    assert started["location"] == resp.headers["Location"]
    deadline = time.monotonic() + 120
    while True:
        polled = client.get(resp.headers["Location"], headers=headers)
        assert polled.status_code == 200, polled.text
        body = polled.json()
        if body["finished"]:
            break
        assert body["success"] is False  # never a success before the end
        assert time.monotonic() < deadline, body
        time.sleep(0.5)
    assert body["state"] == "completed" and body["success"] is True
    assert _answered(body) == _logged(committed, started["flowRunId"])
    assert body["recordsProcessed"] > 0


def test_past_the_wait_bound_the_answer_is_202(world, committed):
    hotel, headers, client, app, _ = world
    app.dependency_overrides[get_settings] = lambda: get_settings().model_copy(
        update={"api_wait_seconds": 0}
    )
    cid = hotel.channels[ChannelName.BOOKING_COM]
    resp = client.post(f"/api/channels/{cid}/sync-availability", headers=headers, json={
        "roomType": "STD", "date": str(hotel.start), "available": 4})
    app.dependency_overrides[get_settings] = _patient
    assert resp.status_code == 202, resp.text
    assert resp.json()["success"] is False and resp.json()["flowRunId"]


def test_unknown_flow_run_is_404(world):
    _, headers, client, _, _ = world
    resp = client.get("/api/flow-runs/00000000-0000-4000-8000-000000000000", headers=headers)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    assert client.get("/api/flow-runs/not-a-uuid", headers=headers).status_code == 422


def test_sync_bookings_under_partner_faults_answers_the_sync_log(world, committed):
    """Garbled pages and 503s: whatever the run did, the answer is its sync log's counts."""
    hotel, headers, client, _, sims = world
    sims[ChannelName.BOOKING_COM].state.sim.faults = FaultSettings(
        malformed_rate=0.3, error_rate=0.2
    )
    cid = hotel.channels[ChannelName.BOOKING_COM]
    body = _check(committed, client.post(f"/api/channels/{cid}/sync-bookings", json={},
                                         headers=headers))
    assert body["success"] is (body["state"] == "completed")


def test_the_sync_log_counts_what_was_stored_under_faults(world, committed):
    hotel, headers, client, _, sims = world
    sims[ChannelName.BOOKING_COM].state.sim.faults = FaultSettings(
        malformed_rate=0.3, error_rate=0.2
    )
    cid = hotel.channels[ChannelName.BOOKING_COM]
    body = _check(committed, client.post(f"/api/channels/{cid}/sync-bookings", json={},
                                         headers=headers))
    stored = committed.execute(
        text("SELECT count(*) FROM channel_bookings WHERE channel_id = :c"), {"c": cid}
    ).scalar()
    committed.rollback()
    # what was stored was counted as a success in the log, hence in the answer
    assert body["recordsSuccess"] >= stored
