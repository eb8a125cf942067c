"""Records the parsers build without validation (`channels.base.trusted`) are valid models.

Property-style: simulator payloads from many seeds through each adapter's `parse_bookings`;
every record must survive `model_validate(model_dump())` unchanged, hold every field, and
carry no full card number or security code anywhere.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from decimal import Decimal

import pytest

from channels.base import BookedRoom, BookingRecord, GuestInfo, MalformedPayloadError, parse_amount
from channels.simulators.catalog import CATALOG
from channels.simulators.generator import BookingGenerator, SimBooking


def _render(channel: str) -> Callable[[list[SimBooking]], bytes]:
    if channel == "booking.com":
        sim = importlib.import_module("channels.simulators.booking_com")
        return lambda msgs: sim.render_notif(msgs, CATALOG["booking.com"]["hotel_id"], sim.RES_NOTIF)  # type: ignore[index]
    if channel == "agoda":
        return importlib.import_module("channels.simulators.agoda").render_booking_detail  # type: ignore[no-any-return]
    if channel == "expedia":
        return importlib.import_module("channels.simulators.expedia").render_booking_retrieval  # type: ignore[no-any-return]
    return importlib.import_module("channels.simulators.airbnb").render_reservations_page  # type: ignore[no-any-return]


PARSERS = {
    "booking.com": "channels.booking_com",
    "agoda": "channels.agoda",
    "expedia": "channels.expedia",
    "airbnb": "channels.airbnb",
}


def _assert_complete(model: object) -> None:
    fields = type(model).model_fields  # type: ignore[attr-defined]
    assert set(vars(model)) == set(fields), type(model).__name__


@pytest.mark.parametrize("channel", list(PARSERS))
@pytest.mark.parametrize("seed", range(8))
def test_parsed_records_are_valid_models(channel: str, seed: int) -> None:
    messages = BookingGenerator(seed).generate(40)
    records = importlib.import_module(PARSERS[channel]).parse_bookings(_render(channel)(messages))
    assert records
    numbers = {m.card.number for m in messages}
    for record in records:
        again = BookingRecord.model_validate(record.model_dump())
        assert again == record
        assert BookingRecord.model_validate_json(record.model_dump_json()) == record
        _assert_complete(record)
        _assert_complete(record.guest)
        assert isinstance(record.guest, GuestInfo)
        for room in record.rooms:
            assert isinstance(room, BookedRoom)
            _assert_complete(room)
            assert all(isinstance(v, Decimal) and v.is_finite() for v in room.nightly_rates.values())
        dumped = json.dumps(record.raw_payload, ensure_ascii=False) + record.model_dump_json()
        assert not any(n in dumped for n in numbers)
        assert "seriesCode" not in dumped and "SeriesCode" not in dumped
        assert '"cvv"' not in dumped and '"cvc"' not in dumped


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-inf", "sNaN", "12,50", ""])
def test_parse_amount_refuses_non_finite_and_garbage(bad: str) -> None:
    with pytest.raises((ValueError, ArithmeticError)):  # InvalidOperation is an ArithmeticError
        parse_amount(bad)


def test_parse_amount_shares_immutable_decimals() -> None:
    assert parse_amount("102.35") == Decimal("102.35") and parse_amount("102.35") is parse_amount("102.35")


BOOKING_NAN = (b'<OTA_HotelResNotifRQ xmlns="http://www.opentravel.org/OTA/2003/05"><HotelReservations>'
               b'<HotelReservation ResStatus="Book"><UniqueID Type="14" ID="1"/><RoomStays><RoomStay>'
               b'<RoomTypes><RoomType RoomTypeCode="A"/></RoomTypes><Total AmountAfterTax="NaN"/>'
               b'</RoomStay></RoomStays></HotelReservation></HotelReservations></OTA_HotelResNotifRQ>')
EXPEDIA_NAN = (b'<BookingRetrievalRS xmlns="http://www.expediaconnect.com/EQC/BR/2014/01"><Bookings>'
               b'<Booking id="1" type="Book"><RoomStay roomTypeID="2" ratePlanID="3">'
               b'<PerDayRates currency="EUR"><PerDayRate stayDate="2027-01-01" baseRate="Infinity"/></PerDayRates>'
               b'</RoomStay></Booking></Bookings></BookingRetrievalRS>')
AGODA_NAN = (b'<result><bookings><booking booking_id="1" status="ConfirmBooking" room_id="1" room_count="1">'
             b'<prices currency="EUR" sell_inclusive_amt="NaN">'
             b'<price date="2027-01-01" sell_inclusive_amt="1" type="Room"/></prices></booking></bookings></result>')
AGODA_ROOMS = AGODA_NAN.replace(b'"NaN"', b'"1"').replace(b'room_count="1"', b'room_count="1000000"')


@pytest.mark.parametrize(("channel", "body"), [
    ("booking.com", BOOKING_NAN), ("expedia", EXPEDIA_NAN), ("agoda", AGODA_NAN), ("agoda", AGODA_ROOMS),
    ("agoda", AGODA_NAN.replace(b'"NaN"', b'"1"').replace(b' sell_inclusive_amt="1" type', b" type")),
    ("airbnb", b'{"reservations": [{"confirmation_code": "X", "expected_payout_amount_accurate": "NaN"}]}'),
    ("airbnb", b'{"reservations": [{"confirmation_code": "X", "guest_first_name": 7}]}'),
    ("airbnb", b'{"reservations": [{"confirmation_code": "X", "status_type": ["accept"]}]}'),
    ("airbnb", b'{"reservations": [{"confirmation_code": "X", "number_of_guests": true}]}'),
    ("airbnb", b'{"reservations": [{"confirmation_code": "X", "guest_phone_numbers": "+1 555"}]}'),
    ("airbnb", b'{"reservations": [{"confirmation_code": "X", "standard_fees_details": '
               b'[{"fee_type": "PASS_THROUGH_RESORT_FEE", "amount_native": "Infinity"}]}]}'),
    ("airbnb", b'{"reservations": [{"confirmation_code": "X", "listing_id": {"id": 1}}]}'),
    ("airbnb", b'{"reservations": [{"confirmation_code": "X", "nightly_prices": [{"date": "2027-01-01", "amount": null}]}]}'),
    ("airbnb", b'{"reservations": [{"confirmation_code": 12}]}'),
    ("airbnb", b'{"reservations": ["X"]}'),
])
def test_bad_values_are_malformed_not_stored(channel: str, body: bytes) -> None:
    with pytest.raises(MalformedPayloadError, match=channel):
        importlib.import_module(PARSERS[channel]).parse_bookings(body)


def test_airbnb_body_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from channels import airbnb_wire

    monkeypatch.setattr(airbnb_wire, "MAX_JSON_BYTES", 10)
    with pytest.raises(MalformedPayloadError, match="larger than"):
        airbnb_wire.parse_bookings(b'{"reservations": []}')


def test_the_message_digest_is_remembered_per_payload() -> None:
    """The digest (asked for several times per record) is computed once per payload: the
    same value for an equal payload, a new one for a copy with another payload; remembering
    it changes neither equality nor dumps."""
    rec = BookingRecord(channel="airbnb", external_id="A1", event="new", status="new",
                        revision="1", raw_payload={"code": "A1", "nights": 2})
    twin = BookingRecord.model_validate(rec.model_dump())
    first = rec.message_digest()
    assert first is not None and rec.message_digest() == first == twin.message_digest()
    assert rec == twin and rec.model_dump() == twin.model_dump()
    assert "_digest_memo" not in rec.model_dump_json()
    other = rec.model_copy(update={"raw_payload": {"code": "A1", "nights": 3}})
    assert other.message_digest() not in (None, first)
    assert rec.model_copy(update={"raw_payload": {}}).message_digest() is None
    built = BookingRecord.model_construct(**rec.model_dump())  # like `trusted`: no validation
    assert built.message_digest() == first
