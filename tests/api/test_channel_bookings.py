"""GET /api/channel-bookings and /api/channel-bookings/{id}: the stored booking details,
camelCase, rooms included, partner groups linked, card data the last four digits at most."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from channels.base import BookingEvent, BookingRecord, ChannelName, PaymentInfo, PaymentModel
from db.repositories.bookings import ingest_page
from tests.api.helpers import assert_error
from tests.sync.booking_factory import full_booking
from tests.sync.conftest import make_hotel

EXP = ChannelName.EXPEDIA
CARD = re.compile(r"\d{13,19}")


@pytest.fixture
def stored(db_session):
    hotel = make_hotel(db_session)
    cid = hotel.channels[EXP]
    records = [
        full_booking("API-1", hotel, group_id="ORDER-1"),
        full_booking("API-2", hotel, rooms=1, group_id="ORDER-1"),
        full_booking("API-3", hotel, rooms=1, group_id=None),
    ]
    leaky = records[2].model_copy(
        update={
            "payment": PaymentInfo(model=PaymentModel.HOTEL_COLLECT, card_last4="4111111111111111")
        }
    )
    result = ingest_page(db_session, cid, str(EXP), [records[0], records[1], leaky])
    assert result.errors == []
    db_session.flush()
    return hotel, cid, records


def _by_ext(client, headers, **params):
    page = client.get("/api/channel-bookings", params=params, headers=headers)
    assert page.status_code == 200, page.text
    return {item["externalBookingId"]: item for item in page.json()}


def test_list_shows_every_stored_field_camel_case(client, viewer_headers, stored):
    hotel, cid, records = stored
    rec = records[0]
    items = _by_ext(client, viewer_headers, channelId=cid)
    assert set(items) == {"API-1", "API-2", "API-3"}
    item = items["API-1"]
    assert (item["hotelCode"], item["checkIn"], item["checkOut"]) == (
        "H-1",
        rec.check_in.isoformat(),
        rec.check_out.isoformat(),
    )
    assert (item["totalAmount"], item["amountBeforeTax"], item["taxes"], item["commission"]) == (
        "461.00",
        "420.00",
        "41.00",
        "69.15",
    )
    assert item["currency"] == "EUR" and item["bookedAt"].startswith("2026-11-01T09:30:00")
    assert item["payment"] == {
        "model": "virtual_card",
        "cardType": "VI",
        "cardLast4": "4242",
        "activationDate": rec.check_in.isoformat(),
        "deactivationDate": (rec.check_out + timedelta(days=30)).isoformat(),
        "cardAmount": "391.85",
    }
    assert item["booker"] == {
        "firstName": "Ana",
        "lastName": "Sousa",
        "email": "ana@example.org",
        "phone": "+351 21 000 0000",
        "country": "PT",
        "language": "pt",
    }
    assert item["loyalty"] == ["expedia_vip", "one_key"]
    assert (item["groupId"], item["source"], item["cancelPolicy"]) == (
        "ORDER-1",
        "Hotels.com",
        "FREE_UNTIL_48H",
    )
    (penalty,) = item["cancelPenalties"]
    assert (penalty["deadline"][:16], penalty["amount"], penalty["nights"]) == (
        "2026-12-01T12:00",
        "115.00",
        1,
    )
    assert [(e["code"], e["amount"], e["quantity"]) for e in item["extras"]] == [
        ("BRK", "30.00", 2)
    ]
    assert item["specialRequests"] == [{"code": "1.14", "text": "Non-smoking"}]
    assert item["comments"] == "arriving late"
    room0, room1 = item["rooms"]
    assert (room0["roomIndex"], room1["roomIndex"]) == (0, 1)
    assert room0["reservationId"] is not None and room0["reservationId"] != room1["reservationId"]
    assert (room0["mealPlan"], room0["childAges"], room0["extraBeds"], room0["smoking"]) == (
        "breakfast",
        [7],
        1,
        False,
    )
    assert (room0["amount"], room1["amount"], room0["taxes"], room0["commission"]) == (
        "230.00",
        "231.00",
        "20.00",
        "34.50",
    )
    assert room0["guest"] == {
        "firstName": "Stay0",
        "lastName": "Guest",
        "email": "s0@example.org",
        "phone": None,
        "country": "PT",
    }
    night = room0["nightlyPrices"][0]
    assert (night["night"], night["amount"], night["base"], night["extraPersonFees"]) == (
        rec.check_in.isoformat(),
        "115.00",
        "100.00",
        "10.00",
    )
    assert (night["serviceFees"], night["promotion"]) == ("5.00", "EARLY")
    assert room1["specialRequests"] == [{"code": "2.1", "text": "high floor 1"}]
    assert [x["code"] for x in room0["extras"]] == ["PARK"]
    # a full card number handed over by an adapter is cut to its last four digits
    assert items["API-3"]["payment"]["cardLast4"] == "1111"
    assert not CARD.search(json.dumps(list(items.values())))


def test_list_filters_by_group_and_arrival(client, viewer_headers, stored):
    hotel, cid, records = stored
    assert set(_by_ext(client, viewer_headers, groupId="ORDER-1")) == {"API-1", "API-2"}
    assert _by_ext(client, viewer_headers, groupId="NONE") == {}
    arrival = records[0].check_in
    assert (
        len(
            _by_ext(
                client,
                viewer_headers,
                checkInFrom=arrival.isoformat(),
                checkInTo=arrival.isoformat(),
            )
        )
        == 3
    )
    later = (arrival + timedelta(days=1)).isoformat()
    assert _by_ext(client, viewer_headers, checkInFrom=later) == {}
    bad = client.get(
        "/api/channel-bookings", params={"checkInFrom": "soon"}, headers=viewer_headers
    )
    assert_error(bad, 422, "validation_error")


def test_detail_has_the_partner_message_and_the_group(client, viewer_headers, stored, db_session):
    hotel, cid, records = stored
    items = _by_ext(client, viewer_headers, channelId=cid)
    resp = client.get(f"/api/channel-bookings/{items['API-1']['id']}", headers=viewer_headers)
    assert resp.status_code == 200, resp.text
    detail = resp.json()
    assert detail["bookingData"] == {"id": "API-1", "revision": "0001",
                                     "card": {"number": "************4242"}}
    assert [g["externalBookingId"] for g in detail["groupBookings"]] == ["API-2"]
    assert detail["groupBookings"][0]["id"] == items["API-2"]["id"]
    assert len(detail["rooms"]) == 2 and detail["payment"]["cardLast4"] == "4242"
    alone = client.get(f"/api/channel-bookings/{items['API-3']['id']}", headers=viewer_headers)
    assert alone.json()["groupBookings"] == []
    assert_error(
        client.get("/api/channel-bookings/999999", headers=viewer_headers), 404, "not_found"
    )
    assert_error(
        client.get("/api/channel-bookings/abc", headers=viewer_headers), 422, "validation_error"
    )
    assert client.get("/api/channel-bookings").status_code == 401


def test_a_cancel_without_amounts_still_shows_the_stored_ones(
    client, viewer_headers, stored, db_session
):
    hotel, cid, records = stored
    cancel = BookingRecord(
        channel=EXP,
        external_id="API-1",
        event=BookingEvent.CANCELLED,
        status="cancelled",
        revision="0002",
    )
    assert ingest_page(db_session, cid, str(EXP), [cancel]).updated == 1
    db_session.flush()
    item = _by_ext(client, viewer_headers, externalBookingId="API-1")["API-1"]
    assert (item["status"], item["totalAmount"], item["payment"]["model"]) == (
        "cancelled",
        "461.00",
        "virtual_card",
    )
    assert len(item["rooms"]) == 2 and item["rooms"][0]["nightlyPrices"]
