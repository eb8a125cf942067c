"""Agoda wire format: recorded payloads parsed, request bodies built, hostile XML refused."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from channels import agoda_wire as wire
from channels.agoda import parse_bookings
from channels.ari_origins import combine, compress_with_origins, expand_merged
from channels.base import ARIUpdate, BookingEvent, MalformedPayloadError, UpdateResult

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "agoda"


# Expected values below are read off Agoda's published examples (tests/fixtures/README.md),
# never produced by running the parser.

ICT = timezone(timedelta(hours=7))


def test_published_booking_detail_example() -> None:
    [rec] = parse_bookings((FIX / "GetBookingDetail_example1_RS.xml").read_bytes())
    assert rec.external_id == "220952733" and rec.hotel_code == "567792"
    assert rec.status == "ConfirmBooking" and rec.event == BookingEvent.NEW
    assert rec.booked_at == datetime(2017, 8, 2, 11, 24, 0, tzinfo=ICT)
    assert rec.booked_at.utcoffset() == timedelta(hours=7)
    # last_action 2017-08-02T11:24:14+07:00, normalised to UTC so revisions compare as strings
    assert rec.revision == "2017-08-02T04:24:14Z"
    assert rec.ack_token == "567792|220952733|2017-08-02T11:24:14+07:00"
    assert (rec.check_in, rec.check_out) == (date(2017, 8, 16), date(2017, 8, 17))
    assert (rec.total_amount, rec.currency) == (Decimal("269.28"), "USD")
    assert rec.net_amount is None
    assert rec.source == "Retail"
    assert rec.cancel_policy == "1D1N_1N"
    assert [(p.nights, p.percent) for p in rec.cancel_penalties] == [(1, None), (1, None)]
    assert rec.cancel_penalties[1].description is not None and "no-show" in rec.cancel_penalties[1].description
    assert rec.payment.remarks == "paymentmodel 2" and rec.card_last4 is None
    g = rec.guest
    assert (g.first_name, g.last_name, g.country_name, g.country) == ("agoda", "test", "Thailand", None)
    assert [(r.code, r.text) for r in rec.special_requests] == [
        ("NonSmoke", "NonSmoke"), ("AdditionalNotes", "**Late arrival 23:00**"),
    ]
    assert rec.comments == "NonSmoke; **Late arrival 23:00**"
    [room] = rec.rooms
    assert (room.partner_room_type_code, room.partner_rate_plan_code) == ("8179856", "937982")
    assert (room.room_name, room.rate_plan_name) == ("Standard - 2 persons", "Room Only111")
    assert (room.adults, room.children, room.child_ages, room.extra_beds) == (2, 0, [], 0)
    assert (room.amount, room.currency) == (Decimal("269.28"), "USD")
    assert room.nightly_rates == {date(2017, 8, 16): Decimal("269.28")}
    [night] = room.nightly_prices
    assert (night.night, night.amount, night.currency) == (date(2017, 8, 16), Decimal("269.28"), "USD")
    assert night.promotion == "Limited time offer. Rate includes 20% discount!"


def test_published_japanese_booking_detail_example() -> None:
    [rec] = parse_bookings((FIX / "GetBookingDetail_japanese_RS.xml").read_bytes())
    assert (rec.external_id, rec.hotel_code, rec.status) == ("64071569", "203895644", "ConfirmBooking")
    assert rec.booked_at == datetime(2022, 5, 27, 14, 37, tzinfo=ICT)
    assert rec.revision == "2022-05-27T07:36:42Z"  # last_action 14:36:42+07:00
    assert (rec.check_in, rec.check_out) == (date(2022, 6, 13), date(2022, 6, 14))
    # guest price (refsell_amt) and the hotel's net (net_inclusive_amt), as published
    assert (rec.total_amount, rec.net_amount, rec.currency) == (Decimal("11250.0"), Decimal("9948.0"), "JPY")
    assert rec.cancel_policy == "126D100P_100P"
    assert [(p.nights, p.percent) for p in rec.cancel_penalties] == [(None, Decimal(100)), (None, Decimal(100))]
    [room] = rec.rooms
    assert (room.partner_room_type_code, room.partner_rate_plan_code, room.room_name) == ("1207710824", "8155680", "スタジオ")
    assert (room.adults, room.children, room.extra_beds) == (2, 0, 0)
    assert room.nightly_rates == {date(2022, 6, 13): Decimal("11250.0"), date(2022, 6, 14): Decimal("11250.0")}
    assert {p.promotion for p in room.nightly_prices} == {"Limited Time Offer. Price includes 25% discount!"}
    assert rec.raw_payload["occupancy"][0] == {"tag": "adult", "count": "1"}


def test_reconstructed_multi_unit_booking_and_cancellation() -> None:
    amend, cancel = parse_bookings((FIX / "GetBookingDetail_reconstructed_RS.xml").read_bytes())
    assert (amend.event, amend.status) == (BookingEvent.MODIFIED, "AmendBooking")
    assert (amend.total_amount, amend.currency) == (Decimal("700.01"), "EUR")
    # room_count="2" adults="5" children="1" extrabeds="1": two units, counts and prices split
    assert [(r.adults, r.children, r.extra_beds) for r in amend.rooms] == [(3, 1, 1), (2, 0, 0)]
    assert [r.amount for r in amend.rooms] == [Decimal("350.00"), Decimal("350.01")]
    assert sum(r.amount for r in amend.rooms) == Decimal("700.01")  # type: ignore[misc]
    assert [r.nightly_rates[date(2026, 12, 28)] for r in amend.rooms] == [Decimal("175.00"), Decimal("175.01")]
    assert {r.partner_room_type_code for r in amend.rooms} == {"3304"}
    g = amend.guest
    assert (g.email, g.phone, g.country_name, g.country) == ("guest123@example.dk", "+45 11 22 33 44", "Denmark", None)
    assert [(e.code, e.name, e.included) for e in amend.extras] == [("1", "Breakfast", True)]
    notes = amend.special_requests[1]
    assert notes.code == "AdditionalNotes" and "4111 1111 1111 1111" not in notes.text and "1111" in notes.text
    assert "4111 1111 1111 1111" not in amend.model_dump_json() + json.dumps(amend.raw_payload)
    assert [(p.nights, p.percent) for p in amend.cancel_penalties] == [(1, None), (None, Decimal(100)), (None, Decimal(100))]
    assert (cancel.event, cancel.status, cancel.revision) == (BookingEvent.CANCELLED, "CancelBooking", "2026-11-24T15:31:58Z")
    # Agoda zeroes a cancellation's prices: a Confirmation line without a date, no nights
    assert (cancel.total_amount, cancel.currency) == (Decimal("0.0"), "EUR")
    assert cancel.rooms[0].nightly_prices == [] and cancel.guest.country_name == "Czech Republic"
    assert [r.code for r in cancel.special_requests] == ["NonSmoke", "TwinBeds"]


def test_undocumented_card_element_is_masked() -> None:
    body = (b'<result><bookings><booking booking_id="1" room_id="3" status="ConfirmBooking">'
            b'<payment card_type="VI" card_number="4111111111111111" cvv="123" expiry="10/27"/>'
            b'</booking></bookings></result>')
    [rec] = parse_bookings(body)
    dumped = rec.model_dump_json() + json.dumps(rec.raw_payload)
    assert "4111111111111111" not in dumped and "123" not in json.dumps(rec.raw_payload["payment"])
    assert (rec.card_last4, rec.payment.card_last4, rec.payment.card_type) == ("1111", "1111", "VI")


@pytest.mark.parametrize(("code", "expected"), [
    ("1D1N_1N", [(1, None), (1, None)]),
    ("365D100P_100P", [(None, Decimal(100)), (None, Decimal(100))]),
    ("garbage", []), ("1N_1D1N", []), ("", []),
])
def test_cancellation_codes(code: str, expected: list[tuple[int | None, Decimal | None]]) -> None:
    assert [(p.nights, p.percent) for p in wire.cancel_penalties(code)] == expected


def test_hostile_xml_is_refused() -> None:
    with pytest.raises(MalformedPayloadError, match="agoda"):
        parse_bookings((FIX / "hostile_xxe.xml").read_bytes())
    with pytest.raises(MalformedPayloadError):
        parse_bookings(b"<result><bookings><booking booking_id='1'")
    with pytest.raises(MalformedPayloadError):
        parse_bookings(b"<result><bookings><booking booking_id='1' arrival='2026-13-45'/></bookings></result>")
    with pytest.raises(MalformedPayloadError):  # a garbled unit count
        parse_bookings(b"<result><bookings><booking booking_id='1' room_id='2' room_count='1000000'/></bookings></result>")


def test_published_booking_lists() -> None:
    rows = wire.parse_booking_list((FIX / "GetBookingList_v1_RS.xml").read_bytes())
    assert rows == [wire.ListRow("10730279", "473966145", "2020-04-23T14:51:45+07:00", "AmendBooking", False)]
    rows = wire.parse_booking_list((FIX / "GetBookingList_v2_all_properties_RS.xml").read_bytes())
    assert [(r.property_id, r.booking_id, r.last_action) for r in rows] == [
        ("2261100", "6724245", "2017-04-10T15:32:46+07:00"),
        ("2261100", "50168501", "2017-04-10T15:48:36+07:00"),
        ("2261100", "50168507", "2017-04-10T15:59:17+07:00"),
        ("6001284", "6718391", "2017-04-10T15:33:15+07:00"),
    ]
    assert {r.status for r in rows} == {"ConfirmBooking"} and not any(r.acknowledged for r in rows)


def test_booking_hint_push_and_answer() -> None:
    [row] = wire.parse_booking_hint((FIX / "BookingHint_RQ_partial.xml").read_bytes())
    assert row == wire.HintRow("226110", "6593078", "2017-03-03T14:50:33+07:00", "ConfirmBooking")
    for bad in (b"<result/>", b"<request><property id='1'/></request>",
                b"<request><property><bookings><booking booking_id='1'/></bookings></property></request>"):
        with pytest.raises(MalformedPayloadError):
            wire.parse_booking_hint(bad)
    ok = etree.fromstring(wire.build_hint_answer(timestamp_ms=1483526410357))
    assert (ok.tag, ok.get("timestamp"), [c.tag for c in ok]) == ("result", "1483526410357", ["success"])
    err = etree.fromstring(wire.build_hint_answer(("1301", "Invalid Property id: 1")))
    assert err.find("errors/error").get("code") == "1301"


def test_published_set_ari_answers() -> None:
    partial = wire.parse_set_ari_response((FIX / "SetARI_v2_RS_partial_success_207.xml").read_bytes())
    assert (partial.tuid, partial.status) == ("58f2b811-d1de-11ed-9b0d-9fa08989ceb6", "PartialSuccess")
    assert not partial.errors
    assert partial.update_errors == {
        ("inventory", "3166794", "", "2023-06-09", "2023-06-09"): [("2219", "Date can not be greater than 730 days")],
        ("rate", "3166794", "1222082", "2023-06-10", "2023-06-10"): [
            ("2101", "Default rate is required but does not exist")],
    }
    total = wire.parse_set_ari_response((FIX / "SetARI_v2_RS_total_failure_400.xml").read_bytes())
    assert total.tuid == "558afd90-8cf1-11e9-9ae2-8b6047344a46" and not total.update_errors
    assert [c for c, _ in total.errors] == ["22210", "2201"]
    assert total.errors[0][1] == "Max LOS cannot be less than Min Los"
    ok = wire.parse_set_ari_response((FIX / "SetARI_v2_RS_success_200.xml").read_bytes())
    assert (ok.tuid, ok.errors, ok.update_errors) == ("5c798be0-8cf0-11e9-9b99-11547cdafa77", [], {})
    v1 = wire.parse_set_ari_response((FIX / "SetARI_v1_RS_invalid_property.xml").read_bytes())
    assert v1.errors == [("1301", "Invalid Property id: 1212121")]


def test_published_get_ari_answer() -> None:
    days = wire.parse_get_ari_response((FIX / "GetARI_v2_RS.xml").read_bytes(), occupancy=2)
    day = date(2020, 5, 16)
    assert days == [
        wire.AriDay("129340033", "3392615", day, closed=False, cta=True, ctd=False, price=Decimal("80.00"),
                    currency="THB", min_los=1, max_los=30),
        wire.AriDay("129340033", None, day, allotment=3, closed=False, cta=True, ctd=False),
    ]


def test_set_ari_body_shape() -> None:
    inv = wire.WireUpdate("inventory", "3301", None, date(2026, 12, 1), date(2026, 12, 31), (6, 7),
                          allotment=4, closed=False, cta=True)
    rate = wire.WireUpdate("rate", "3301", "77001", date(2026, 12, 1), date(2026, 12, 31),
                           price=Decimal("99.5"), currency="EUR", min_los=2, max_los=7)
    root = etree.fromstring(wire.build_set_ari("90210", [inv, rate], timestamp=1))
    assert root.get("type") == "10" and root.find("criteria").get("property_id") == "90210"
    upd = root.find("criteria/inventory/update")
    assert [d.text for d in upd.findall("date_range/dow")] == ["6", "7"]
    assert upd.findtext("allotment") == "4" and upd.findtext("restrictions/cta") == "true"
    assert upd.find("restrictions/ctd") is None  # None fields are not sent
    r = root.find("criteria/rate/update")
    assert r.get("rateplan_id") == "77001"
    assert r.find("prices/normal").get("default") == "99.50" and r.find("prices").get("currency") == "EUR"
    assert (r.findtext("restrictions/los/min"), r.findtext("restrictions/los/max")) == ("2", "7")


def test_detail_request_refuses_more_than_50_ids() -> None:
    with pytest.raises(ValueError):
        wire.build_booking_detail("90210", [str(i) for i in range(51)])
    root = etree.fromstring(wire.build_booking_detail("90210", ["1", "2"]))
    assert root.get("type") == "4" and len(root.findall("criteria/property")) == 1


# ---------------------------------------------------------------- compression with origins


def test_compress_with_origins_maps_ranges_back_to_inputs() -> None:
    d = date(2026, 12, 1)
    a = ARIUpdate(partner_room_type_code="R", start=d, end=d + timedelta(days=2), available=3)
    b = ARIUpdate(partner_room_type_code="R", start=d + timedelta(days=3), end=d + timedelta(days=5), available=3)
    c = ARIUpdate(partner_room_type_code="R", start=d + timedelta(days=1), end=d + timedelta(days=1), min_los=2)
    compressed, origins = compress_with_origins([a, b, c])
    # c adds min_los on one day without wiping a's availability there (field-wise merge).
    merged = expand_merged([a, b, c])[("R", None)]
    assert merged[d + timedelta(days=1)].available == 3 and merged[d + timedelta(days=1)].min_los == 2
    assert [(u.start, u.end) for u in compressed] == [
        (d, d), (d + timedelta(days=1), d + timedelta(days=1)), (d + timedelta(days=2), d + timedelta(days=5)),
    ]
    assert origins == [{0, 1, 2}, {2}, {1}]


def test_combine_fails_an_input_when_any_piece_failed() -> None:
    u = ARIUpdate(partner_room_type_code="R", start=date(2026, 1, 1), end=date(2026, 1, 2), available=1)
    ok = UpdateResult(ok=True, warnings=["w"])
    bad = UpdateResult(ok=False, error_code="2101", error="2101 Default rate", transient=False)
    assert combine(u, [ok, ok]).ok and combine(u, [ok]).warnings == ["w"]
    result = combine(u, [ok, bad], ["clipped"])
    assert (result.ok, result.error_code, result.transient) == (False, "2101", False)
    assert result.update == u and "clipped" in result.warnings
