"""Agoda wire format: recorded payloads parsed, request bodies built, hostile XML refused."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from channels import agoda_wire as wire
from channels.agoda import parse_bookings
from channels.ari_origins import combine, compress_with_origins, expand_merged
from channels.base import ARIUpdate, BookingEvent, MalformedPayloadError, UpdateResult

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "agoda"


def test_booking_detail_fixture_parses_masked() -> None:
    body = (FIX / "booking_detail.xml").read_bytes()
    records = parse_bookings(body)
    assert [r.external_id for r in records] == ["4000000002", "4000000003", "4000000009", "4000000034"]
    assert [r.event for r in records] == [
        BookingEvent.NEW, BookingEvent.MODIFIED, BookingEvent.CANCELLED, BookingEvent.NEW,
    ]
    first = records[0]
    # room_count="2" becomes two units whose shares add up to the room total exactly.
    assert [r.partner_room_type_code for r in first.rooms] == ["3301", "3304", "3304"]
    assert first.rooms[1].amount == first.rooms[2].amount == Decimal("585.12")
    assert first.total_amount == Decimal("327.52") + Decimal("1170.24")
    assert first.rooms[1].nightly_rates[date(2026, 11, 28)] == Decimal("219.42")
    assert first.revision == "2026-11-24T01:01:14Z"  # +07:00 normalised to UTC
    assert first.check_in == date(2026, 11, 28) and first.check_out == date(2026, 12, 1)
    assert first.card_last4 == "5741"
    assert records[3].guest.last_name == "山田"
    child = next(r for r in records[2].rooms if r.children)
    assert child.child_ages == [4]


def test_no_card_data_survives_parsing() -> None:
    body = (FIX / "booking_detail.xml").read_bytes()
    for rec in parse_bookings(body):
        dumped = rec.model_dump_json()
        number = etree.fromstring(body).find(f".//booking[@booking_id='{rec.external_id}']/payment").get("card_number")
        assert number not in dumped and number[-4:] in dumped
        assert "cvv" not in rec.raw_payload["payment"]
        assert rec.raw_payload["payment"]["card_number"].endswith(rec.card_last4 or "")
    modified = parse_bookings(body)[1]
    assert "4111 1111 1111 1111" not in (modified.comments or "") and "1111" in (modified.comments or "")


def test_hostile_xml_is_refused() -> None:
    with pytest.raises(MalformedPayloadError, match="agoda"):
        parse_bookings((FIX / "hostile_xxe.xml").read_bytes())
    with pytest.raises(MalformedPayloadError):
        parse_bookings(b"<result><bookings><booking booking_id='1'")
    with pytest.raises(MalformedPayloadError):
        parse_bookings(b"<result><bookings><booking booking_id='1' arrival='2026-13-45'/></bookings></result>")


def test_booking_list_fixture() -> None:
    rows = wire.parse_booking_list((FIX / "booking_list.xml").read_bytes())
    assert [(r.booking_id, r.acknowledged) for r in rows] == [
        ("4000000002", False), ("4000000003", True), ("4000000009", False),
    ]


def test_partial_success_fixture_maps_errors_to_updates() -> None:
    out = wire.parse_set_ari_response((FIX / "setari_207.xml").read_bytes())
    assert out.tuid and not out.errors
    assert out.update_errors[("inventory", "3302", "", "2028-11-20", "2028-12-31")] == [
        ("2219", "Date can not be greater than 730 days")
    ]
    assert out.update_errors[("rate", "3301", "77002", "2026-12-01", "2026-12-07")][0][0] == "2101"
    total = wire.parse_set_ari_response((FIX / "setari_400.xml").read_bytes())
    assert total.errors == [("22210", "Max LOS cannot be less than Min Los")] and not total.update_errors


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
    assert r.find("prices/normal/occupancy").get("price") == "99.50"
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
