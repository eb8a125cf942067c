from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from lxml import etree

from channels.base import (
    ARIUpdate,
    BookingEvent,
    BookingRecord,
    BookingStatus,
    ChannelConfig,
    MalformedPayloadError,
    PaymentModel,
    PermanentChannelError,
    TransientChannelError,
)
from channels.booking_com import BookingComAdapter, is_permanent, parse_bookings
from channels.booking_com_ota import (
    NS,
    Outcome,
    amount,
    attribute,
    build_ack,
    build_avail_notif,
    parse_outcomes,
)
from channels.registry import get_adapter
from channels.simulators.booking_com import create_app
from channels.simulators.catalog import CATALOG
from channels.simulators.common import FaultSettings
from channels.simulators.server import running_server
from channels.tokens import MemoryTokenStore, TokenRateLimitedError
from channels.xmlsafe import parse_xml

pytestmark = pytest.mark.anyio

CAT = CATALOG["booking.com"]  # type: ignore[index]
STD, DLX = CAT["room_types"]["STD"], CAT["room_types"]["DLX"]
BAR = CAT["rate_plans"]["BAR"]
TODAY = datetime.now(UTC).date()
CONFIG = ChannelConfig(apiKey="machine-1", apiSecret="s3cret", hotelId=CAT["hotel_id"], endpoint="http://sim")


@pytest.fixture
def app() -> FastAPI:
    return create_app(bookings=12, seed=7, credentials={"machine-1": "s3cret"})


@pytest.fixture
async def adapter(app: FastAPI) -> AsyncIterator[BookingComAdapter]:
    a = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app))
    yield a
    await a.aclose()


def sim(app: FastAPI):  # type: ignore[no-untyped-def]
    return app.state.sim


def card_numbers(app: FastAPI) -> set[str]:
    return {m.booking.card.number for m in sim(app).queue.messages}


# ------------------------------------------------------------ fixtures (Booking.com's documents)
# Expected values below were read off the documented example by hand (see
# tests/fixtures/README.md for sources); they were never produced by running the parser.

NEW_DOC = "OTA_HotelResNotifRQ_new_reservation_vcc_genius.xml"


def _doc(fixtures_dir: Path, name: str) -> bytes:
    return (fixtures_dir / "booking.com" / name).read_bytes()


def test_documented_new_reservation_stay_and_amounts(fixtures_dir: Path) -> None:
    (rec,) = parse_bookings(_doc(fixtures_dir, NEW_DOC))
    assert rec.external_id == "4705950059"
    assert rec.event is BookingEvent.NEW and rec.status == "Book" and rec.ack_token == "OTA_HotelResNotif"
    # The message TimeStamp orders messages; ResID_Date is the creation time.
    assert rec.revision == "2025-03-11T15:02:38Z"
    assert rec.booked_at == datetime(2025, 3, 10, 10, 33, 37, tzinfo=UTC)
    assert rec.hotel_code == "12963644"
    # One RoomRate EffectiveDate="2025-03-29": one night, check-out the day after.
    assert (rec.check_in, rec.check_out) == (date(2025, 3, 29), date(2025, 3, 30))
    (room,) = rec.rooms
    assert (room.partner_room_type_code, room.partner_rate_plan_code) == ("1296364403", "49111777")
    assert (room.check_in, room.check_out) == (date(2025, 3, 29), date(2025, 3, 30))
    assert (room.adults, room.children, room.child_ages) == (2, 0, [])
    assert room.external_room_id == "460"
    assert room.room_name == "Deluxe Double Room - General"
    assert room.meal_plan == "Breakfast is included in the room rate."
    # Amounts are integers with DecimalPlaces="2": 500 -> 5.00 (not 500).
    assert room.nightly_rates == {date(2025, 3, 29): Decimal("5.00")}
    (night,) = room.nightly_prices
    assert (night.night, night.amount, night.amount_before_tax, night.amount_after_tax, night.currency) == (
        date(2025, 3, 29), Decimal("5.00"), Decimal("5.00"), None, "USD")
    assert (room.amount, room.amount_before_tax, room.currency) == (Decimal("5.00"), Decimal("5.00"), "USD")
    assert room.commission == Decimal("0.00")
    # PriceDetails/GuestView taxes 6 + 5 + 14 (DecimalPlaces 2) = 0.25
    assert room.taxes == Decimal("0.25")
    assert (rec.total_amount, rec.amount_before_tax, rec.currency) == (Decimal("5.00"), Decimal("5.00"), "USD")
    assert rec.taxes == Decimal("0.25")
    # TotalCommissions Amount="0000" DecimalPlaces="2"
    assert rec.commission == Decimal("0.00")


def test_documented_new_reservation_people_and_extras(fixtures_dir: Path) -> None:
    (rec,) = parse_bookings(_doc(fixtures_dir, NEW_DOC))
    booker = rec.guest  # ResGlobalInfo/Profiles: the booker
    assert (booker.first_name, booker.last_name) == ("lisa", "K")
    assert booker.phone == "+31 6 14901111"
    assert booker.email == "feature.794761@guest.booking.com"
    assert (booker.country, booker.city, booker.postal_code, booker.address) == (
        "NL", "Amsterdam", "1234ABC", "Park Avenue")
    staying = rec.rooms[0].guest  # ResGuests/ResGuest: who stays
    assert staying is not None and (staying.first_name, staying.last_name) == ("", "Lisa K")
    assert rec.loyalty == ["booker_is_genius"]
    assert [(r.code, r.text) for r in rec.special_requests] == [("smoking preference", "Non-Smoking")]
    assert rec.rooms[0].smoking is False
    assert rec.comments == ("I need a wakeup service\nYou have received a virtual credit card for this "
                            "reservation.You may charge it as of 2025-03-29. ** Genius Booker **")
    (extra,) = rec.extras
    assert (extra.code, extra.nights, extra.amount, extra.currency) == ("22", 1, Decimal("5"), "USD")
    (penalty,) = rec.cancel_penalties
    assert penalty.deadline == datetime(2025, 3, 10, 10, 33, 37, tzinfo=UTC)
    assert (penalty.amount, penalty.currency, penalty.non_refundable) == (Decimal("0.00"), "EUR", None)
    assert rec.cancel_policy == "152"


def test_documented_virtual_card_is_masked(fixtures_dir: Path) -> None:
    (rec,) = parse_bookings(_doc(fixtures_dir, NEW_DOC))
    pay = rec.payment
    assert pay.model is PaymentModel.VIRTUAL_CARD
    assert (pay.card_type, pay.card_last4, pay.card_expiry) == ("MC", "0000", "0326")
    assert (pay.activation_date, pay.deactivation_date) == (date(2025, 3, 29), date(2026, 3, 1))
    assert (pay.card_amount, pay.currency) == (Decimal("0.00"), "USD")
    assert rec.card_last4 == "0000"
    raw = json.dumps(rec.raw_payload) + rec.model_dump_json()
    assert "1111000011110000" not in raw
    assert "SeriesCode" not in raw and '"720"' not in raw and "=\"720\"" not in raw


def test_card_typed_into_a_comment_is_masked(fixtures_dir: Path) -> None:
    body = _doc(fixtures_dir, NEW_DOC).replace(
        b"I need a wakeup service", b"Pay with 4012 8888 8888 1881 please")
    (rec,) = parse_bookings(body)
    assert "4012 8888 8888 1881" not in rec.model_dump_json()
    assert "XXXXXXXXXXXX1881" in (rec.comments or "")


def test_derived_modification_and_cancellation_order_after_the_new(fixtures_dir: Path) -> None:
    (new,) = parse_bookings(_doc(fixtures_dir, NEW_DOC))
    (modified,) = parse_bookings(_doc(fixtures_dir, "OTA_HotelResModifyNotifRQ_modified_derived.xml"))
    (cancel,) = parse_bookings(_doc(fixtures_dir, "OTA_HotelResModifyNotifRQ_cancelled_derived.xml"))
    assert modified.event is BookingEvent.MODIFIED and modified.status == "Modify"
    assert modified.ack_token == "OTA_HotelResModifyNotif"
    assert (modified.check_in, modified.check_out, modified.total_amount) == (
        date(2025, 3, 29), date(2025, 3, 30), Decimal("5.00"))
    assert cancel.event is BookingEvent.CANCELLED and cancel.status == "Cancel"
    assert cancel.external_id == "4705950059" and cancel.rooms == [] and cancel.check_in is None
    assert new.revision < modified.revision < cancel.revision
    assert cancel.revision == "2025-03-13T09:30:00Z"


def test_amounts_apply_decimal_places() -> None:
    el = etree.Element("Total", AmountAfterTax="13350", AmountBeforeTax="190.80", DecimalPlaces="2")
    assert amount(el, "AmountAfterTax") == Decimal("133.50")
    assert amount(el, "AmountBeforeTax") == Decimal("190.80")  # already decimal: as written
    assert amount(etree.Element("X", Amount="0000", DecimalPlaces="2"), "Amount") == Decimal("0.00")
    assert amount(etree.Element("X", Amount="12500", DecimalPlaces="0"), "Amount") == Decimal("12500")
    assert amount(etree.Element("X", Amount="5"), "Amount") == Decimal("5")
    assert amount(etree.Element("X"), "Amount") is None
    with pytest.raises(ValueError):
        amount(etree.Element("X", Amount="5", DecimalPlaces="9"), "Amount")
    with pytest.raises((ValueError, InvalidOperation)):
        amount(etree.Element("X", Amount="NaN", DecimalPlaces="2"), "Amount")
    with pytest.raises((ValueError, InvalidOperation)):
        amount(etree.Element("X", Amount="12a", DecimalPlaces="2"), "Amount")


def test_vcc_suffix_on_rate_plan_marks_virtual_card(fixtures_dir: Path) -> None:
    body = _doc(fixtures_dir, NEW_DOC).replace(b'RatePlanCode="49111777"', b'RatePlanCode="49111777VCC"')
    body = body.replace(b' EffectiveDate="2025-03-29" CurrentBalance', b" CurrentBalance")
    (rec,) = parse_bookings(body)
    assert rec.rooms[0].partner_rate_plan_code == "49111777"
    assert rec.payment.model is PaymentModel.VIRTUAL_CARD and rec.payment.activation_date is None


def test_card_without_activation_date_is_hotel_collect(fixtures_dir: Path) -> None:
    body = _doc(fixtures_dir, NEW_DOC).replace(b' EffectiveDate="2025-03-29" CurrentBalance', b" CurrentBalance")
    (rec,) = parse_bookings(body)
    assert rec.payment.model is PaymentModel.HOTEL_COLLECT and rec.payment.card_last4 == "0000"


def test_ack_carries_every_documented_required_attribute() -> None:
    for source, holder, item in (("OTA_HotelResNotif", "HotelReservations", "HotelReservation"),
                                 ("OTA_HotelResModifyNotif", "HotelResModifies", "HotelResModify")):
        root = parse_xml(build_ack(source, ["4705950059", "4705950060"]), "test")
        assert root.tag == f"{{{NS}}}{source}RS"
        assert root.get("Target") == "Production" and root.get("Version") == "2.001"
        assert datetime.fromisoformat(root.get("TimeStamp") or "").tzinfo is not None
        assert root.find(f"{{{NS}}}Success") is not None
        ids = root.findall(f"{{{NS}}}{holder}/{{{NS}}}{item}/{{{NS}}}ResGlobalInfo/"
                           f"{{{NS}}}HotelReservationIDs/{{{NS}}}HotelReservationID")
        assert [i.get("ResID_Value") for i in ids] == ["4705950059", "4705950060"]


def test_documented_ari_warning_497_is_permanent_and_whole_request(fixtures_dir: Path) -> None:
    ok, outcomes = parse_outcomes(parse_xml(_doc(fixtures_dir, "OTA_HotelAvailNotifRS_warning_497_doc.xml"), "t"))
    (o,) = outcomes
    assert ok and (o.code, o.text, o.type, o.failed) == (
        "497", "You do not have access to hotel:123456", "6", True)
    assert is_permanent(o)
    u = ARIUpdate(partner_room_type_code="123456", start=TODAY, end=TODAY, available=1)
    assert attribute(o, [(1, u)]) is None  # names the hotel: the whole request


def test_hand_made_ari_answers(fixtures_dir: Path) -> None:
    ok, outcomes = parse_outcomes(parse_xml(_doc(fixtures_dir, "OTA_HotelAvailNotifRS_warnings.xml"), "t"))
    assert ok and [(o.code, o.record_id, o.failed) for o in outcomes] == [
        ("ROOM_ID_INVALID", "2", True), ("WARN_DUPLICATE_DATES", None, False)]
    ok, outcomes = parse_outcomes(parse_xml(_doc(fixtures_dir, "OTA_HotelRateAmountNotifRS_errors.xml"), "t"))
    assert not ok and outcomes[0].code == "NOT_A_VALID_DATE" and outcomes[0].failed


def test_outcomes_are_mapped_to_the_update_they_name() -> None:
    a = ARIUpdate(partner_room_type_code="111", start=date(2027, 1, 1), end=date(2027, 1, 31), available=1)
    b = ARIUpdate(partner_room_type_code="999", start=date(2027, 1, 1), end=date(2027, 1, 31), available=1)
    c = ARIUpdate(partner_room_type_code="999", start=date(2027, 2, 1), end=date(2027, 2, 28), available=1)
    d = ARIUpdate(partner_room_type_code="111", partner_rate_plan_code="777", start=date(2027, 1, 1),
                  end=date(2027, 1, 31), rate=Decimal("10"))
    ups = [(1, a), (2, b), (3, c), (4, d)]
    named = Outcome("ROOM_ID_INVALID", "Room ID '999' is not valid", None, True)
    assert attribute(named, ups) == [2, 3]
    dated = Outcome("X", "Room ID '999' is not valid for 2027-02-14", None, True)
    assert attribute(dated, ups) == [3]
    rate = Outcome("RATE_ID_INVALID", "Rate ID '777' is not valid", None, True)
    assert attribute(rate, ups) == [4]
    assert attribute(Outcome("Y", "something went wrong", None, True), ups) is None
    assert attribute(Outcome("Y", "Room ID '999' is not valid", "1", True), ups) == [1]  # RecordID wins
    assert not is_permanent(Outcome("SIMULATED_PARTIAL_FAILURE", "try again", None, True, "12"))
    assert is_permanent(Outcome("ROOM_ID_INVALID", "x", None, True))


def test_broken_reservation_reported_not_half_parsed() -> None:
    body = (b'<OTA_HotelResNotifRQ xmlns="http://www.opentravel.org/OTA/2003/05"><HotelReservations><HotelReservation>'
            b'<RoomStays><RoomStay><RoomTypes><RoomType RoomTypeCode="1"/></RoomTypes><RoomRates>'
            b'<RoomRate EffectiveDate="not-a-date" RatePlanCode="2"><Rates><Rate><Total AmountBeforeTax="500" DecimalPlaces="2"/>'
            b'</Rate></Rates></RoomRate></RoomRates></RoomStay></RoomStays><ResGlobalInfo><HotelReservationIDs>'
            b'<HotelReservationID ResID_Value="1" ResID_Date="2025-03-10T10:33:37"/></HotelReservationIDs></ResGlobalInfo>'
            b'</HotelReservation></HotelReservations></OTA_HotelResNotifRQ>')
    with pytest.raises(MalformedPayloadError, match="booking.com: reservation 1"):
        parse_bookings(body)
    errors: list[str] = []
    assert parse_bookings(body, errors) == [] and len(errors) == 1


# ------------------------------------------------------------ round trips against the simulator


async def test_fetch_ack_drains_queue_in_order(app: FastAPI, adapter: BookingComAdapter) -> None:
    total = len(sim(app).queue.messages)
    seen: list[tuple[str, str]] = []
    for _ in range(10):
        page = await adapter.fetch_bookings()
        if not page.bookings:
            break
        assert not page.errors
        acks = await adapter.acknowledge(page.bookings)
        assert all(a.ok for a in acks), acks
        seen.extend((b.external_id, b.revision) for b in page.bookings)
    assert len(seen) == total == len(set(seen))
    assert sim(app).queue.stats()["pending"] == 0
    assert adapter.token_exchanges == 1  # one token for all of it


async def test_records_are_masked_and_complete(app: FastAPI, adapter: BookingComAdapter) -> None:
    page = await adapter.fetch_bookings()
    numbers = card_numbers(app)
    for record in page.bookings:
        raw = record.model_dump_json()
        assert not any(n in raw for n in numbers)
        assert "SeriesCode" not in raw
        assert record.card_last4 and record.hotel_code == CAT["hotel_id"]
        assert record.rooms and all(r.nightly_rates for r in record.rooms)
    assert {b.event for b in page.bookings} == {BookingEvent.NEW}  # modifications wait for the ack


async def test_unacked_reservations_are_redelivered(adapter: BookingComAdapter) -> None:
    first = await adapter.fetch_bookings()
    again = await adapter.fetch_bookings()
    assert [b.external_id for b in first.bookings] == [b.external_id for b in again.bookings]
    await adapter.acknowledge(first.bookings[:1])
    third = await adapter.fetch_bookings()
    assert first.bookings[0].external_id not in {b.external_id for b in third.bookings if b.event is BookingEvent.NEW}


async def test_ack_of_unknown_reservation_fails_per_booking(adapter: BookingComAdapter) -> None:
    page = await adapter.fetch_bookings()
    ghost = page.bookings[0].model_copy(update={"external_id": "999"})
    results = await adapter.acknowledge([page.bookings[0], ghost])
    assert [r.ok for r in results] == [True, False]
    assert "not found" in (results[1].error or "")
    only_ghost = await adapter.acknowledge([ghost])
    assert not only_ghost[0].ok  # the simulator answers 404


async def test_fetch_booking_by_id(adapter: BookingComAdapter) -> None:
    page = await adapter.fetch_bookings()
    target = page.bookings[-1]
    found = await adapter.fetch_booking(target.external_id)
    assert found is not None and found.external_id == target.external_id
    assert await adapter.fetch_booking("nope") is None


async def test_token_cached_and_refreshed_once_on_401(app: FastAPI, adapter: BookingComAdapter) -> None:
    for _ in range(3):
        await adapter.fetch_bookings()
    assert sim(app).tokens.exchanges == 1
    sim(app).tokens.revoke_all()  # the partner forgets the token: next call gets 401
    await adapter.fetch_bookings()
    assert sim(app).tokens.exchanges == 2
    await adapter.fetch_bookings()
    assert sim(app).tokens.exchanges == 2 and adapter.token_exchanges == 2


async def test_token_shared_through_a_store(app: FastAPI) -> None:
    """Adapters sharing a token store (the database in production) share the token; the JWT
    never shows in reprs."""
    store = MemoryTokenStore()
    first = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app), token_store=store)
    await first.fetch_bookings()
    await first.aclose()
    (stored,) = store.rows.values()
    assert stored.value and stored.expires_at and stored.expires_at > time.time() + 3000  # wall clock
    assert stored.value not in repr(first.tokens) + repr(stored) + repr(first._client.auth)
    second = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app))
    second.use_token_store(store)
    await second.fetch_bookings()
    await second.aclose()
    assert sim(app).tokens.exchanges == 1 and second.token_exchanges == 0


async def test_expired_stored_token_exchanges_again(app: FastAPI) -> None:
    store = MemoryTokenStore()
    first = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app), token_store=store)
    await first.fetch_bookings()
    await first.aclose()
    (key,) = store.rows
    store.rows[key] = replace(store.rows[key], expires_at=time.time() - 1)
    adapter = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app), token_store=store)
    await adapter.fetch_bookings()
    await adapter.aclose()
    assert adapter.token_exchanges == 1 and sim(app).tokens.exchanges == 2
    assert store.rows[key].exchange_count == 2


async def test_bad_credentials_are_permanent(app: FastAPI) -> None:
    bad = BookingComAdapter(CONFIG.model_copy(update={"api_secret": "wrong"}), transport=httpx.ASGITransport(app=app))
    with pytest.raises(PermanentChannelError) as err:
        await bad.fetch_bookings()
    assert err.value.status_code == 401
    assert "wrong" not in str(err.value)


async def test_wrong_hotel_is_403(app: FastAPI) -> None:
    other = BookingComAdapter(CONFIG.model_copy(update={"hotel_id": "7654321"}), transport=httpx.ASGITransport(app=app))
    with pytest.raises(PermanentChannelError) as err:
        await other.fetch_bookings()
    assert err.value.status_code == 403
    with pytest.raises(PermanentChannelError) as err:
        await other.push_ari([ARIUpdate(partner_room_type_code=STD, start=TODAY, end=TODAY, available=1)])
    assert err.value.status_code == 403


def u(start: int, end: int, **kw: object) -> ARIUpdate:
    return ARIUpdate(partner_room_type_code=kw.pop("room", STD), partner_rate_plan_code=kw.pop("plan", BAR),  # type: ignore[arg-type]
                     start=TODAY + timedelta(days=start), end=TODAY + timedelta(days=end), **kw)  # type: ignore[arg-type]


async def test_push_ari_round_trip(app: FastAPI, adapter: BookingComAdapter) -> None:
    updates = [
        u(0, 9, available=4, rate=Decimal("120.00"), currency="EUR", min_los=2),
        u(10, 20, stop_sell=True, closed_to_arrival=True),
        u(0, 13, rate=Decimal("150.00"), currency="EUR", weekdays=frozenset({5, 6}), room=DLX),
    ]
    results = await adapter.push_ari(updates)
    assert [r.ok for r in results] == [True, True, True]
    cal = sim(app).ari.calendar
    std = cal[f"{STD}/{BAR}"]
    day0 = std[TODAY.isoformat()]
    assert day0 == {"available": 4, "rate": "120.00", "currency": "EUR", "min_los": 2}
    assert std[(TODAY + timedelta(days=15)).isoformat()] == {"stop_sell": True, "closed_to_arrival": True}
    dlx = cal[f"{DLX}/{BAR}"]
    weekend = {d for d in dlx}
    expected = {(TODAY + timedelta(days=i)).isoformat() for i in range(14) if (TODAY + timedelta(days=i)).weekday() >= 5}
    assert weekend == expected


async def test_push_ari_splits_about_a_month_per_request(app: FastAPI, adapter: BookingComAdapter) -> None:
    results = await adapter.push_ari([u(0, 364, available=3)])
    assert results[0].ok
    calls = sim(app).calls["/hotels/ota/OTA_HotelAvailNotif"]
    assert 12 <= calls <= 13
    assert all(len(list(_days(e))) <= 31 for e in sim(app).ari.log)
    assert len(sim(app).ari.calendar[f"{STD}/{BAR}"]) == 365


def _days(entry: dict[str, object]):  # type: ignore[no-untyped-def]
    start, end = date.fromisoformat(str(entry["start"])), date.fromisoformat(str(entry["end"]))
    return range((end - start).days + 1)


async def test_empty_push_sends_nothing(app: FastAPI, adapter: BookingComAdapter) -> None:
    assert await adapter.push_ari([]) == []
    assert not sim(app).calls


async def test_partial_failure_per_update(app: FastAPI, adapter: BookingComAdapter) -> None:
    results = await adapter.push_ari([u(0, 3, available=2), u(0, 3, available=2, room="999"), u(5, 6, available=1)])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error_code == "ROOM_ID_INVALID" and not results[1].transient
    assert "999/" + BAR not in sim(app).ari.calendar


async def test_all_failed_is_400_with_per_update_errors(adapter: BookingComAdapter) -> None:
    results = await adapter.push_ari([u(0, 3, available=2, room="998"), u(0, 3, available=2, room="999")])
    assert [r.error_code for r in results] == ["ROOM_ID_INVALID", "ROOM_ID_INVALID"]


async def test_past_dates_rejected_by_partner_and_clipped_by_adapter() -> None:
    # The simulator's clock runs 30 days ahead, so "today" is 30 days in its past.
    app = create_app(bookings=0, today=TODAY + timedelta(days=30))
    a = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app))
    results = await a.push_ari([u(0, 3, available=1), u(40, 41, available=1)])
    assert results[0].error_code == "NOT_A_VALID_DATE" and results[1].ok
    # And the adapter never sends what is already more than a day in the past.
    sent = app.state.sim.calls["/hotels/ota/OTA_HotelAvailNotif"]
    past = await a.push_ari([u(-20, -10, available=1)])
    assert past[0].error_code == "NOT_A_VALID_DATE"
    assert app.state.sim.calls["/hotels/ota/OTA_HotelAvailNotif"] == sent


async def test_update_booking_status_not_supported(adapter: BookingComAdapter) -> None:
    result = await adapter.update_booking_status("1", BookingStatus.NO_SHOW)
    assert not result.ok and result.error_code == "NOT_SUPPORTED"


async def test_registry_builds_adapter(app: FastAPI) -> None:
    a = get_adapter("booking.com", CONFIG, transport=httpx.ASGITransport(app=app))
    assert isinstance(a, BookingComAdapter)
    assert (await a.fetch_bookings()).bookings
    await a.aclose()


# ------------------------------------------------------------ faults


async def test_fault_5xx_is_transient(app: FastAPI, adapter: BookingComAdapter) -> None:
    await adapter.fetch_bookings()  # token first, so the fault hits the API call
    sim(app).faults = FaultSettings(error_rate=1.0)
    with pytest.raises(TransientChannelError) as err:
        await adapter.fetch_bookings()
    assert err.value.status_code == 503


async def test_fault_429_has_retry_after(app: FastAPI, adapter: BookingComAdapter) -> None:
    sim(app).faults = FaultSettings(rate_limit_rate=1.0, retry_after_seconds=9)
    with pytest.raises(TransientChannelError) as err:
        await adapter.push_ari([u(0, 1, available=1)])
    assert err.value.status_code == 429 and err.value.retry_after == 9.0


async def test_fault_malformed_body(app: FastAPI, adapter: BookingComAdapter) -> None:
    await adapter.fetch_bookings()
    sim(app).faults = FaultSettings(malformed_rate=1.0)
    with pytest.raises(MalformedPayloadError, match="booking.com"):
        await adapter.fetch_bookings()


async def test_fault_partial_ari_failure(app: FastAPI, adapter: BookingComAdapter) -> None:
    sim(app).faults = FaultSettings(partial_failure_rate=0.5)
    updates = [u(i * 2, i * 2, available=i) for i in range(12)]
    results = await adapter.push_ari(updates)
    failed = [r for r in results if not r.ok]
    assert 0 < len(failed) < len(results)
    assert all(r.transient and r.error_code == "SIMULATED_PARTIAL_FAILURE" for r in failed)
    cal = sim(app).ari.calendar[f"{STD}/{BAR}"]
    for r in results:
        assert r.update is not None
        assert (r.update.start.isoformat() in cal) is r.ok
    # Retrying only the failures completes the calendar.
    sim(app).faults = FaultSettings()
    retry = await adapter.push_ari([r.update for r in failed if r.update])
    assert all(r.ok for r in retry) and len(cal) == 12


async def test_fault_duplicates_redelivered(app: FastAPI, adapter: BookingComAdapter) -> None:
    page = await adapter.fetch_bookings()
    await adapter.acknowledge(page.bookings)
    sim(app).faults = FaultSettings(duplicate_rate=1.0)
    again = await adapter.fetch_bookings()
    # The revision is the message TimeStamp (the only per-message time Booking.com documents):
    # a re-delivery carries the same booking and content under a newer revision, never an
    # older one, so it is re-applied (idempotently), never taken for a stale message.
    def content(b: BookingRecord) -> dict[str, object]:
        return b.model_dump(exclude={"revision", "raw_payload"})

    for old in page.bookings:
        copies = [b for b in again.bookings if b.external_id == old.external_id and content(b) == content(old)]
        assert copies and all(b.revision > old.revision for b in copies), old.external_id
    assert all(r.ok for r in await adapter.acknowledge(again.bookings))  # re-acking is harmless


async def test_token_exchange_limit_is_rate_limited(app: FastAPI) -> None:
    # Adapters with their own (memory) token stores: each exchanges; the 31st in the hour gets 429.
    for _ in range(30):
        fresh = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app))
        await fresh.tokens.bearer()
    late = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app))
    with pytest.raises(TokenRateLimitedError) as err:
        await late.tokens.bearer()
    assert err.value.status_code == 429 and err.value.transient and err.value.retry_after == 60
    assert sim(app).tokens.exchanges == 30 and sim(app).tokens.refused == 1
    # Until Retry-After has passed, the same adapter fails at once without asking the partner.
    with pytest.raises(TokenRateLimitedError):
        await late.fetch_bookings()
    assert sim(app).tokens.refused == 1 and sim(app).calls["/token-based-authentication/exchange"] == 31


# ------------------------------------------------------------ over real HTTP


async def test_loopback_round_trip_and_timeout() -> None:
    app = create_app(bookings=5, seed=3)
    with running_server(app) as base_url:
        config = CONFIG.model_copy(update={"endpoint": base_url})
        async with BookingComAdapter(config) as adapter:
            page = await adapter.fetch_bookings()
            assert page.bookings
            assert all(a.ok for a in await adapter.acknowledge(page.bookings))
            assert (await adapter.push_ari([u(0, 2, available=3, rate=Decimal("99.00"), currency="EUR")]))[0].ok
            assert app.state.sim.queue.stats()["acked"] == len(page.bookings)
        async with BookingComAdapter(config, timeout=httpx.Timeout(0.3)) as impatient:
            await impatient.fetch_bookings()
            app.state.sim.faults = FaultSettings(timeout_rate=1.0, timeout_seconds=0.8)
            with pytest.raises(TransientChannelError, match="timeout"):
                await impatient.fetch_bookings()
            app.state.sim.faults = FaultSettings()


def test_build_avail_notif_shape() -> None:
    body = build_avail_notif("1", [(1, u(0, 6, available=2, min_los=3, weekdays=frozenset({0})))])
    root = parse_xml(body, "t")
    ctl = next(root.iter("{http://www.opentravel.org/OTA/2003/05}StatusApplicationControl"))
    assert ctl.get("Mon") == "true" and ctl.get("Sun") == "false" and ctl.get("InvTypeCode") == STD


def test_hostile_xml_is_refused_before_parsing() -> None:
    xxe = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<OTA_HotelResNotifRQ xmlns="http://www.opentravel.org/OTA/2003/05"><HotelReservations>'
           b"<HotelReservation><ResGlobalInfo><Comments><Comment><Text>&x;</Text></Comment></Comments>"
           b"</ResGlobalInfo></HotelReservation></HotelReservations></OTA_HotelResNotifRQ>")
    with pytest.raises(MalformedPayloadError):
        parse_bookings(xxe)


def test_simulator_messages_parse_back_to_the_generated_bookings() -> None:
    from channels.simulators.booking_com import RES_MODIFY_NOTIF, RES_NOTIF, render_notif
    from channels.simulators.generator import BookingGenerator

    messages = BookingGenerator(3).generate(30)
    for source, wanted in ((RES_NOTIF, [m for m in messages if m.event == "new"]),
                           (RES_MODIFY_NOTIF, [m for m in messages if m.event != "new"])):
        records = parse_bookings(render_notif(wanted, CAT["hotel_id"], source))
        assert len(records) == len(wanted) and wanted
        for msg, rec in zip(wanted, records, strict=True):
            assert rec.external_id == msg.booking_id and rec.event.value == msg.event
            assert rec.booked_at == msg.created_at.replace(microsecond=0)
            if msg.event == "cancelled":
                assert rec.rooms == [] and rec.total_amount is None
                continue
            assert (rec.check_in, rec.check_out) == (msg.check_in, max(r.check_out for r in msg.rooms))
            assert (rec.total_amount, rec.currency) == (msg.total, msg.currency)
            assert (rec.guest.email, rec.guest.phone, rec.guest.country) == (
                msg.guest.email, msg.guest.phone, msg.guest.country)
            assert rec.card_last4 == msg.card.number[-4:]
            for sim_room, room in zip(msg.rooms, rec.rooms, strict=True):
                assert room.nightly_rates == dict(sim_room.nightly)
                assert (room.check_in, room.check_out) == (sim_room.check_in, sim_room.check_out)
                # Booking.com documents one guest count per room, children included, no ages.
                assert (room.adults, room.children, room.child_ages) == (
                    sim_room.adults + len(sim_room.child_ages), 0, [])
                assert room.guest is not None and room.guest.last_name == msg.guest.last_name


def test_service_in_the_new_services_format(fixtures_dir: Path) -> None:
    """Feature res_new_services_format: Service/Price/Total@AmountAfterTax, up to two
    decimals, no DecimalPlaces (Total field table, Service/Price: AmountAfterTax="37.35")."""
    body = _doc(fixtures_dir, NEW_DOC).replace(
        b'<ServiceDetails>\n            <TimeSpan Duration="1" />\n            <Fees>\n              <Fee Amount="5" />\n'
        b"            </Fees>\n          </ServiceDetails>",
        b'<Price><Total AmountAfterTax="37.35" CurrencyCode="EUR" /></Price>')
    (rec,) = parse_bookings(body)
    (extra,) = rec.extras
    assert (extra.code, extra.amount, extra.currency, extra.nights) == ("22", Decimal("37.35"), "EUR", None)


def test_policy_code_1_is_non_refundable(fixtures_dir: Path) -> None:
    body = _doc(fixtures_dir, NEW_DOC).replace(b'PolicyCode="152"', b'PolicyCode="1"')
    (rec,) = parse_bookings(body)
    assert rec.cancel_penalties[0].non_refundable is True and rec.cancel_policy == "1"
