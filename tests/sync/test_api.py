"""The seed's channel API and webhooks, end to end: real app, real flows, simulators."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.auth import create_api_key
from channels.base import ChannelName
from channels.simulators.server import build_app
from innsync.settings import get_settings
from tasks.resources import transport_overrides
from tests.sync.conftest import make_hotel, point_channel_at

pytestmark = pytest.mark.usefixtures("prefect_server")
CARD = re.compile(r"\d{13,19}")


@pytest.fixture
def world(committed):
    """A hotel, its four channels on in-process simulators, API keys, a live app."""
    hotel = make_hotel(committed, units=20, days=120)
    keys = {
        role: create_api_key(committed, f"t-{role}", role)[1]
        for role in ("viewer", "operator", "admin")
    }
    committed.commit()
    sims = {}
    for name, cid in hotel.channels.items():
        sims[name] = build_app(name, bookings=15, seed=21)
        point_channel_at(
            committed, cid, f"http://{name}.sim", webhookSecret=f"hook-secret-{name}-0123456789"
        )
        transport_overrides[cid] = httpx.ASGITransport(app=sims[name])
    app = create_app()
    # these tests read results: wait for them however slow the machine (the bound's own
    # behaviour is tested in tests/sync/test_api_results.py)
    app.dependency_overrides[get_settings] = lambda: get_settings().model_copy(
        update={"api_wait_seconds": 3600}
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield hotel, sims, keys, client
    for cid in hotel.channels.values():
        transport_overrides.pop(cid, None)


def h(keys, role):
    return {"X-API-Key": keys[role]}


def test_sync_bookings_answers_the_seed_shape_and_lists_results(world, committed):
    hotel, sims, keys, client = world
    cid = hotel.channels[ChannelName.AGODA]
    refused = client.post(
        f"/api/channels/{cid}/sync-bookings",
        headers=h(keys, "operator"),
        json={
            "channelName": "agoda",
            "config": {"apiKey": "leak-me-not-123", "apiSecret": "leak-me-not-456"},
        },
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "config_override_refused"
    assert "refused: apiKey, apiSecret" in error["message"] and "leak-me-not" not in refused.text
    resp = client.post(
        f"/api/channels/{cid}/sync-bookings",
        headers=h(keys, "operator"),
        json={"channelName": "agoda", "config": {"hotelId": sims[ChannelName.AGODA].state.sim.hotel_id}},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True and body["recordsProcessed"] > 0
    assert body["recordsFailed"] == 0 and body["errors"] == []
    assert body["flowRunId"]
    logs = client.get(f"/api/channel-sync-logs?channelId={cid}", headers=h(keys, "viewer"))
    assert int(logs.headers["X-Total-Count"]) >= 1
    assert any(item["flowRunId"] == body["flowRunId"] for item in logs.json())
    listed = client.get(f"/api/channel-bookings?channelId={cid}&limit=5", headers=h(keys, "viewer"))
    page, total = listed.json(), int(listed.headers["X-Total-Count"])
    assert len(page) == min(5, total) and total > 0
    detail = client.get(
        f"/api/channel-bookings/{page[0]['id']}", headers=h(keys, "viewer")
    ).json()
    assert detail["bookingData"] and not CARD.search(json.dumps(detail["bookingData"]))
    # secrets given in the request body were neither stored nor logged anywhere
    dump = (
        committed.execute(
            text(
                "SELECT coalesce(string_agg(t::text, ''), '') FROM (SELECT * FROM channel_sync_logs) t"
            )
        ).scalar()
        + committed.execute(
            text("SELECT coalesce(string_agg(t::text, ''), '') FROM (SELECT * FROM channels) t")
        ).scalar()
    )
    assert "leak-me-not" not in dump


def test_sync_triggers_need_operator_and_valid_input(world):
    hotel, sims, keys, client = world
    cid = hotel.channels[ChannelName.BOOKING_COM]
    url = f"/api/channels/{cid}/sync-bookings"
    assert client.post(url, json={}).status_code == 401
    assert client.post(url, json={}, headers=h(keys, "viewer")).status_code == 403
    bad = client.post(url, json={"channelName": "agoda"}, headers=h(keys, "operator"))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "channel_mismatch"
    bad = client.post(
        url, json={"startDate": "2026-02-01", "endDate": "2026-01-01"}, headers=h(keys, "operator")
    )
    assert bad.status_code == 422
    assert (
        client.post(
            "/api/channels/999999/sync-bookings", json={}, headers=h(keys, "operator")
        ).status_code
        == 404
    )
    avail = f"/api/channels/{cid}/sync-availability"
    bad = client.post(avail, json={"available": 3}, headers=h(keys, "operator"))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "incomplete_request"
    bad = client.post(
        avail, json={"roomType": "NOPE", "date": str(hotel.start)}, headers=h(keys, "operator")
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_reference"
    bad = client.post(
        avail,
        json={"roomType": "STD", "date": str(hotel.start), "available": -1},
        headers=h(keys, "operator"),
    )
    assert bad.status_code == 422


def test_explicit_availability_and_rate_reach_the_partner(world, committed):
    hotel, sims, keys, client = world
    cid = hotel.channels[ChannelName.EXPEDIA]
    day = hotel.start + timedelta(days=5)
    resp = client.post(
        f"/api/channels/{cid}/sync-availability",
        headers=h(keys, "operator"),
        json={"channelName": "expedia", "roomType": "STD", "date": str(day), "available": 2},
    )
    assert resp.status_code == 200 and resp.json()["success"], resp.text
    # The answer's counts are the run's sync log's (they used to answer recordsSuccess 0).
    logged = committed.execute(text(
        "SELECT records_processed, records_success, records_failed FROM channel_sync_logs "
        "WHERE channel_id = :c AND operation = 'push_values' ORDER BY id DESC LIMIT 1"),
        {"c": cid}).one()
    body = resp.json()
    assert (body["recordsProcessed"], body["recordsSuccess"], body["recordsFailed"]) == (
        tuple(logged)) == (1, 1, 0)
    resp = client.post(
        f"/api/channels/{cid}/sync-rates",
        headers=h(keys, "operator"),
        json={"roomType": "DLX", "ratePlan": "BAR", "date": str(day), "rate": "187.50"},
    )
    assert resp.status_code == 200 and resp.json()["success"], resp.text
    log = json.dumps(sims[ChannelName.EXPEDIA].state.sim.ari.log)
    assert "187.5" in log and str(day) in log


def test_delta_availability_and_full_sync_through_the_api(world):
    hotel, sims, keys, client = world
    cid = hotel.channels[ChannelName.BOOKING_COM]
    resp = client.post(
        f"/api/channels/{cid}/sync-availability",
        headers=h(keys, "operator"),
        json={
            "roomTypes": ["STD", "DLX"],
            "startDate": str(hotel.start),
            "endDate": str(hotel.start + timedelta(days=30)),
        },
    )
    assert resp.status_code == 200 and resp.json()["recordsProcessed"] > 0, resp.text
    full = client.post(
        "/api/ari/full-sync",
        headers=h(keys, "operator"),
        json={"propertyId": hotel.property_id, "horizonDays": 30},
    )
    assert full.status_code == 200 and full.json()["success"], full.text


def test_agoda_hint_webhook_fetches_once_and_rejects_bad_tokens(world, committed):
    from channels.simulators.agoda import booking_hint

    hotel, sims, keys, client = world
    sim = sims[ChannelName.AGODA]
    booking_id = sim.state.sim.queue.messages[0].booking.booking_id
    hint = booking_hint(sim, booking_id)
    url = "/api/webhooks/agoda"
    good = {"X-Webhook-Token": "hook-secret-agoda-0123456789"}
    assert client.post(url, json=hint).status_code == 401
    bad = client.post(url, json=hint, headers={"X-Webhook-Token": "guess"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    first = client.post(url, json=hint, headers=good)
    assert first.status_code == 202 and first.json()["duplicate"] is False, first.text
    cid = hotel.channels[ChannelName.AGODA]
    stored = committed.execute(
        text(
            "SELECT count(*) FROM channel_bookings WHERE channel_id = :c AND "
            "external_booking_id = :b"
        ),
        {"c": cid, "b": booking_id},
    ).scalar()
    assert stored == 1
    event = committed.execute(
        text("SELECT status FROM webhook_events WHERE id = :i"), {"i": first.json()["eventId"]}
    ).scalar()
    assert event == "processed"
    replay = client.post(url, json=hint, headers=good)
    assert replay.status_code == 202 and replay.json()["duplicate"] is True
    assert client.post(url, content=b"{not json", headers=good).status_code == 400
    assert client.post("/api/webhooks/expedia", json={}).status_code == 404


def test_agoda_documented_xml_hint_fetches_each_booking_once(world, committed):
    from lxml import etree

    from channels.simulators.agoda import booking_hint_xml

    hotel, sims, keys, client = world
    sim = sims[ChannelName.AGODA]
    ids = sorted({m.booking.booking_id for m in sim.state.sim.queue.messages})[:2]
    body = booking_hint_xml(sim, ids)
    url = "/api/webhooks/agoda"
    good = {"X-Webhook-Token": "hook-secret-agoda-0123456789", "Content-Type": "text/xml"}
    assert client.post(url, content=body, headers={"Content-Type": "text/xml"}).status_code == 401
    ok = client.post(url, content=body, headers=good)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/xml"), ok.text
    answer = etree.fromstring(ok.content)
    assert answer.tag == "result" and answer.find("success") is not None and answer.get("timestamp")
    cid = hotel.channels[ChannelName.AGODA]
    stored = committed.execute(
        text(
            "SELECT count(*) FROM channel_bookings WHERE channel_id = :c AND "
            "external_booking_id = ANY(:b)"
        ),
        {"c": cid, "b": ids},
    ).scalar()
    events = committed.execute(
        text("SELECT count(*) FROM webhook_events WHERE channel_id = :c AND event_key LIKE 'hint:%'"),
        {"c": cid},
    ).scalar()
    assert (stored, events) == (2, 2)
    again = client.post(url, content=body, headers=good)  # a re-send records nothing new
    assert again.status_code == 200
    assert committed.execute(
        text("SELECT count(*) FROM webhook_events WHERE channel_id = :c"), {"c": cid}
    ).scalar() == 2
    bad = client.post(url, content=b"<request><property id='x'/></request>", headers=good)
    assert bad.status_code == 400


def test_airbnb_signed_event_webhook(world, committed):
    from channels.airbnb import SIGNATURE_HEADER, sign_webhook
    from channels.simulators.airbnb import confirmation_code, webhook_event

    hotel, sims, keys, client = world
    sim = sims[ChannelName.AIRBNB]
    code = confirmation_code(sim.state.sim.queue.messages[0].booking.booking_id)
    body, _ = webhook_event(sim, code, "reservation_created")
    secret = "hook-secret-airbnb-0123456789"
    ok = client.post(
        "/api/webhooks/airbnb", content=body, headers={SIGNATURE_HEADER: sign_webhook(body, secret)}
    )
    assert ok.status_code == 202 and not ok.json()["duplicate"], ok.text
    stored = committed.execute(
        text(
            "SELECT count(*) FROM channel_bookings WHERE channel_id = :c AND "
            "external_booking_id = :b"
        ),
        {"c": hotel.channels[ChannelName.AIRBNB], "b": code},
    ).scalar()
    assert stored == 1
    tampered = body.replace(b"reservation_created", b"reservation_updated")
    bad = client.post(
        "/api/webhooks/airbnb",
        content=tampered,
        headers={SIGNATURE_HEADER: sign_webhook(body, secret)},
    )
    assert bad.status_code == 401
    forged = client.post(
        "/api/webhooks/airbnb",
        content=body,
        headers={SIGNATURE_HEADER: sign_webhook(body, "not-the-secret")},
    )
    assert forged.status_code == 401


def test_overbookings_are_listed_for_the_operator(world, committed):
    hotel, sims, keys, client = world
    from db.repositories.bookings import ingest_page
    from tests.sync.conftest import booking

    day = hotel.start + timedelta(days=9)
    from sqlalchemy.orm import Session

    with Session(bind=committed.get_bind()) as s:
        ingest_page(
            s,
            hotel.channels[ChannelName.BOOKING_COM],
            "booking.com",
            [booking("FULL", check_in=day, rooms=20)],
        )
        ingest_page(
            s,
            hotel.channels[ChannelName.AGODA],
            "agoda",
            [booking("OVER", channel=ChannelName.AGODA, check_in=day)],
        )
        s.commit()
    page = client.get("/api/overbookings", headers=h(keys, "viewer")).json()
    assert [i["externalBookingId"] for i in page] == ["OVER"]
    assert page[0]["guest"] == "Zoë Müller" and page[0]["propertyId"] == hotel.property_id
    # propertyId is honoured: another hotel's filter shows none of these rows
    other = client.get(
        "/api/overbookings", params={"propertyId": hotel.property_id + 100000},
        headers=h(keys, "viewer"),
    )
    assert other.status_code == 200 and other.json() == []
    assert other.headers["X-Total-Count"] == "0"
    mine = client.get(
        "/api/overbookings", params={"propertyId": hotel.property_id}, headers=h(keys, "viewer")
    )
    assert [i["externalBookingId"] for i in mine.json()] == ["OVER"]


def test_webhook_for_a_booking_the_partner_does_not_know_fails_visibly(world, committed):
    """A correctly signed hint whose fetch finds nothing: the event ends `failed` with the
    reason, the sync log says so, and nothing is stored."""
    hotel, sims, keys, client = world
    hint = {"property_id": "90210", "booking_id": "999999999", "last_action": "2026-01-01",
            "checkin": "2026-02-01", "checkout": "2026-02-03", "status": "confirm"}
    resp = client.post("/api/webhooks/agoda", json=hint,
                       headers={"X-Webhook-Token": "hook-secret-agoda-0123456789"})
    assert resp.status_code == 202 and resp.json()["duplicate"] is False, resp.text
    event = committed.execute(text("SELECT status, error FROM webhook_events WHERE id = :i"),
                              {"i": resp.json()["eventId"]}).one()
    assert event.status == "failed" and "999999999" in event.error
    log = committed.execute(text(
        "SELECT status, error_messages FROM channel_sync_logs WHERE operation = "
        "'webhook_booking' ORDER BY id DESC LIMIT 1")).one()
    assert log.status == "failed" and "999999999" in str(log.error_messages)
    stored = committed.execute(text(
        "SELECT count(*) FROM channel_bookings WHERE external_booking_id = '999999999'")).scalar()
    assert stored == 0
