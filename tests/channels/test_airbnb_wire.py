"""Airbnb wire format: recorded reservation pages, calendar bodies, webhook signatures."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from channels.airbnb import parse_bookings, sign_webhook, verify_webhook_signature
from channels.airbnb_wire import calendar_body, decision_request, parse_reservations
from channels.base import ARIUpdate, BookingEvent, MalformedPayloadError, PaymentModel

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "airbnb"
SECRET = "whsec-test"


def test_reservations_page_fixture_parses_documented_fields() -> None:
    # Expected values read off tests/fixtures/airbnb/reservations_page.json (written in the
    # field names public Airbnb clients document; see tests/fixtures/README.md).
    records = parse_bookings((FIX / "reservations_page.json").read_bytes())
    assert [r.event for r in records] == [
        BookingEvent.NEW, BookingEvent.MODIFIED, BookingEvent.CANCELLED, BookingEvent.NEW,
    ]
    assert [r.status for r in records] == ["accept", "accept", "cancelled_by_guest", "pending"]
    first = records[0]
    assert (first.external_id, first.hotel_code, first.revision) == (
        "HMABCD1234", "51000001", "2026-11-24T01:01:14Z",
    )
    assert first.booked_at == datetime(2026, 11, 24, 1, 1, 14, tzinfo=UTC)
    assert (first.check_in, first.check_out) == (date(2026, 11, 28), date(2026, 12, 1))
    assert (first.guest.first_name, first.guest.last_name, first.guest.email) == (
        "Anna", "Smith", "anna-x1k2@guest.airbnb.com",
    )
    assert (first.guest.phone, first.guest.language, first.guest.country) == (
        "+44 20 7946 0000", "en", None,
    )
    # payout is the amount, the host fee (base + VAT) the commission
    assert (first.total_amount, first.currency, first.commission) == (
        Decimal("354.28"), "EUR", Decimal("13.24"),
    )
    assert (first.amount_before_tax, first.taxes) == (Decimal("354.28"), Decimal("0.00"))
    assert first.payment.model == PaymentModel.OTA_COLLECT and first.card_last4 is None
    assert [(e.code, e.amount) for e in first.extras] == [("CLEANING_FEE", Decimal("40.00"))]
    assert first.cancel_policy == "moderate"
    (room,) = first.rooms
    assert (room.partner_room_type_code, room.adults, room.children) == ("51000001", 2, 0)
    assert (room.amount, room.commission) == (Decimal("354.28"), Decimal("13.24"))
    assert [(p.night, p.amount) for p in room.nightly_prices] == [
        (date(2026, 11, 28), Decimal("122.82")),
        (date(2026, 11, 29), Decimal("102.35")),
        (date(2026, 11, 30), Decimal("102.35")),
    ]
    assert room.nightly_rates[date(2026, 11, 28)] == Decimal("122.82")
    altered = records[1]
    assert (altered.rooms[0].adults, altered.rooms[0].children) == (2, 2)  # child + infant
    assert (altered.total_amount, altered.amount_before_tax, altered.taxes) == (
        Decimal("754.06"), Decimal("718.28"), Decimal("35.78"),
    )
    assert altered.commission == Decimal("22.22") and altered.language == "en-IE"
    assert [(e.code, e.amount) for e in altered.extras] == [
        ("PASS_THROUGH_RESORT_FEE", Decimal("25.00"))
    ]
    assert altered.rooms[0].nightly_prices == []
    assert "4111 1111 1111 1111" not in (altered.comments or "")
    cancelled = records[2]
    # a cancelled reservation pays the host its cancellation payout
    assert (cancelled.total_amount, cancelled.commission) == (Decimal("50.73"), Decimal("1.52"))
    pending = records[3]
    assert (pending.hotel_code, pending.guest.last_name, pending.guest.phone) == (
        "51000003", "山田", None,
    )
    assert (pending.booked_at, pending.currency) == (
        datetime(2026, 11, 24, 3, 30, tzinfo=UTC), "JPY",
    )
    # the deprecated listing_host_fee_accurate stands in for host_fee_base/vat
    assert (pending.total_amount, pending.commission) == (Decimal("28130.00"), Decimal("870.00"))


def test_children_and_infants() -> None:
    res = orjson.loads((FIX / "webhook_reservation_created.json").read_bytes())["reservation"]
    (rec,) = parse_reservations({"reservations": [res]})
    assert (rec.rooms[0].adults, rec.rooms[0].children) == (2, 1)
    assert (rec.status, rec.event, rec.commission) == ("pending", BookingEvent.NEW, Decimal("16.45"))


def test_a_card_in_a_reservation_is_masked_anyway() -> None:
    # Airbnb shares no card with hosts; should one ever come, it is cut to its last 4 digits.
    res = {"confirmation_code": "HMCARD0001", "status_type": "accept",
           "payment_card": {"card_number": "5105105105105100", "cvc": "123", "brand": "MC"}}
    (rec,) = parse_reservations({"reservations": [res]})
    assert rec.card_last4 == "5100" and "5105105105105100" not in rec.model_dump_json()
    assert "cvc" not in rec.raw_payload["payment_card"] and "cvc" in res["payment_card"]


def test_nights_stand_in_for_a_missing_end_date() -> None:
    res = {"confirmation_code": "HMNIGHTS01", "status_type": "accept",
           "start_date": "2026-12-30", "nights": 3}
    (rec,) = parse_reservations({"reservations": [res]})
    assert (rec.check_in, rec.check_out) == (date(2026, 12, 30), date(2027, 1, 2))


def test_decision_requests() -> None:
    assert decision_request("accept") == ("PUT", {"attempt_action": "accept"})
    method, body = decision_request("decline")
    assert (method, body["attempt_action"], body["decline_reason"]) == (
        "PUT", "deny", "dates_not_available",
    )
    assert body["decline_message_to_guest"]
    assert decision_request("decline", "not_a_good_fit")[1]["decline_reason"] == "not_a_good_fit"
    # a reason Airbnb does not list for declines falls back to a documented one
    assert decision_request("decline", "host_cancelled")[1]["decline_reason"] == "dates_not_available"
    assert decision_request("cancel", "host_cancelled") == (
        "PUT", {"status_type": "cancelled_by_host", "reason": "host_cancelled"},
    )
    with pytest.raises(ValueError, match="unknown decision"):
        decision_request("maybe")


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"reservations": 3}',
                                  b'{"reservations": [{"status_type": "accept"}]}',
                                  b'{"reservations": [{"confirmation_code": "X", "start_date": "2026-02-30"}]}'])
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
