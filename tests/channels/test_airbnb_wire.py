"""Airbnb wire format: recorded reservation pages, calendar bodies, webhook signatures."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from channels.airbnb import parse_bookings, sign_webhook, verify_webhook_signature
from channels.airbnb_wire import calendar_body, parse_reservations
from channels.base import ARIUpdate, BookingEvent, MalformedPayloadError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "airbnb"
SECRET = "whsec-test"


def test_reservations_page_fixture_parses_masked() -> None:
    body = (FIX / "reservations_page.json").read_bytes()
    records = parse_bookings(body)
    assert [r.event for r in records] == [
        BookingEvent.NEW, BookingEvent.MODIFIED, BookingEvent.CANCELLED, BookingEvent.NEW,
    ]
    first = records[0]
    assert first.external_id == "HM01U5HVR6" and first.rooms[0].partner_room_type_code == "51000001"
    assert first.total_amount == Decimal("327.52")
    assert first.rooms[0].nightly_rates[date(2026, 11, 28)] == Decimal("122.82")
    assert records[3].status == "pending" and records[3].guest.last_name == "山田"
    raw = orjson.loads(body)["reservations"]
    for rec, src in zip(records, raw, strict=True):
        number = src["payment_card"]["card_number"]
        dumped = rec.model_dump_json()
        assert number not in dumped and rec.card_last4 == number[-4:]
        assert "cvc" not in rec.raw_payload["payment_card"]
    assert "4111 1111 1111 1111" not in (records[1].comments or "")
    # The caller's dict is not mutated by masking.
    assert "cvc" in raw[0]["payment_card"]


def test_children_and_infants() -> None:
    res = orjson.loads((FIX / "webhook_reservation_created.json").read_bytes())["reservation"]
    (rec,) = parse_reservations({"reservations": [res]})
    assert (rec.rooms[0].adults, rec.rooms[0].children) == (2, 1)
    assert rec.card_last4 == "5100" and rec.raw_payload["payment_card"]["card_number"].endswith("5100")


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"reservations": 3}',
                                  b'{"reservations": [{"status": "accepted"}]}',
                                  b'{"reservations": [{"confirmation_code": "X", "checkin_date": "2026-02-30"}]}'])
def test_malformed_pages(body: bytes) -> None:
    with pytest.raises(MalformedPayloadError, match="airbnb"):
        parse_bookings(body)


def test_calendar_body() -> None:
    u = ARIUpdate(partner_room_type_code="1", start=date(2026, 1, 1), end=date(2026, 1, 2),
                  available=1, rate=Decimal("149.5"), min_los=2)
    assert calendar_body(u) == {"availability": "available", "daily_price": 149.5, "min_nights": 2}
    closed = u.model_copy(update={"stop_sell": True, "rate": None, "min_los": None})
    assert calendar_body(closed) == {"availability": "unavailable"}
    assert calendar_body(u.model_copy(update={"available": 0}))["availability"] == "unavailable"


def test_webhook_signature_good_bad_tampered() -> None:
    body = (FIX / "webhook_reservation_created.json").read_bytes()
    header = sign_webhook(body, SECRET)
    assert header.startswith("sha256=") and verify_webhook_signature(body, header, SECRET)
    assert verify_webhook_signature(body, header.removeprefix("sha256="), SECRET)  # bare hex accepted
    assert not verify_webhook_signature(body, header, "other-secret")
    assert not verify_webhook_signature(body.replace(b"pending", b"accepted"), header, SECRET)
    assert not verify_webhook_signature(body, "sha256=" + "0" * 64, SECRET)
    assert not verify_webhook_signature(body, "", SECRET)
    assert not verify_webhook_signature(body, header, "")
