"""What hotels need from a booking is stored in columns and per-room rows (issue 10).

Records carry every extended field (amounts, payment, booker, policy, penalties, extras,
requests, loyalty, group, rooms with nightly prices and staying guests); they go through
`ingest_page` into real PostgreSQL and are read back from the tables.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from channels.base import (
    BookedRoom,
    BookingEvent,
    BookingRecord,
    ChannelName,
    PaymentInfo,
    PaymentModel,
    SpecialRequest,
    trusted,
)
from channels.simulators.catalog import CATALOG
from db.models import ChannelBooking, ChannelBookingRoom, Guest, Reservation
from db.repositories.bookings import ingest_page
from db.repositories.channel_bookings import channel_bookings_query, group_members, rooms_of
from tests.sync.booking_factory import full_booking

EXP = ChannelName.EXPEDIA
D = Decimal


def ingest(session, hotel, records, channel=EXP):
    return ingest_page(session, hotel.channels[channel], str(channel), records)


def stored(session, ext: str) -> ChannelBooking:
    session.expire_all()
    return session.scalar(select(ChannelBooking).where(ChannelBooking.external_booking_id == ext))


def rooms(session, cb: ChannelBooking) -> list[ChannelBookingRoom]:
    return rooms_of(session, [cb.id])[cb.id]


def test_every_field_lands_in_columns_and_room_rows(db_session, hotel):
    rec = full_booking("E1", hotel)
    res = ingest(db_session, hotel, [rec])
    assert (res.new, res.errors) == (1, [])
    cb = stored(db_session, "E1")
    assert (cb.hotel_code, cb.check_in, cb.check_out) == ("H-1", rec.check_in, rec.check_out)
    assert cb.booked_at == datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    assert (cb.total_amount, cb.amount_before_tax, cb.taxes, cb.commission, cb.currency) == (
        D("461.00"),
        D("420.00"),
        D("41.00"),
        D("69.15"),
        "EUR",
    )
    assert (cb.payment_model, cb.card_type, cb.card_last4) == ("virtual_card", "VI", "4242")
    assert (cb.card_activation_date, cb.card_deactivation_date, cb.card_amount) == (
        rec.check_in,
        rec.check_out + timedelta(days=30),
        D("391.85"),
    )
    assert (cb.booker_first_name, cb.booker_last_name, cb.booker_email) == (
        "Ana",
        "Sousa",
        "ana@example.org",
    )
    assert (cb.booker_phone, cb.booker_country, cb.language) == ("+351 21 000 0000", "PT", "pt")
    assert cb.loyalty == ["expedia_vip", "one_key"]
    assert (cb.group_id, cb.source, cb.cancel_policy) == ("G-77", "Hotels.com", "FREE_UNTIL_48H")
    assert cb.cancel_penalties == [
        {"deadline": "2026-12-01T12:00:00Z", "amount": "115.00", "currency": "EUR", "nights": 1}
    ]
    assert cb.extras == [{"code": "BRK", "name": "Breakfast", "quantity": 2, "amount": "30.00"}]
    assert cb.special_requests == [{"code": "1.14", "text": "Non-smoking"}]
    assert cb.comments == "arriving late"
    first, second = rooms(db_session, cb)
    assert (first.room_index, second.room_index) == (0, 1)
    assert (first.partner_room_type_code, second.partner_room_type_code) == (
        CATALOG[EXP]["room_types"]["STD"],
        CATALOG[EXP]["room_types"]["DLX"],
    )
    assert (first.external_room_id, first.room_name, first.rate_plan_name, first.meal_plan) == (
        "R1",
        "Room 1",
        "Best available",
        "breakfast",
    )
    assert (first.adults, first.children, first.child_ages, first.extra_beds, first.smoking) == (
        2,
        1,
        [7],
        1,
        False,
    )
    assert (first.amount, second.amount, first.amount_before_tax, first.taxes) == (
        D("230.00"),
        D("231.00"),
        D("210.00"),
        D("20.00"),
    )
    assert (first.commission, first.currency) == (D("34.50"), "EUR")
    assert (first.guest_first_name, first.guest_last_name, first.guest_email) == (
        "Stay0",
        "Guest",
        "s0@example.org",
    )
    assert first.guest_country == "PT" and second.guest_first_name == "Stay1"
    assert first.nightly_prices == [
        {
            "night": (rec.check_in + timedelta(days=n)).isoformat(),
            "amount": "115.00",
            "base": "100.00",
            "extra_person_fees": "10.00",
            "service_fees": "5.00",
            "currency": "EUR",
            "promotion": "EARLY",
        }
        for n in range(2)
    ]
    assert first.extras == [{"code": "PARK", "name": "Parking", "nights": 2, "amount": "12.00"}]
    assert second.special_requests == [{"code": "2.1", "text": "high floor 1"}]
    # each room row points at the reservation made for it
    res_by_index = {
        r.room_index: r
        for r in db_session.scalars(select(Reservation).where(Reservation.external_ref == "E1"))
    }
    assert (first.reservation_id, second.reservation_id) == (res_by_index[0].id, res_by_index[1].id)
    # the reservation carries the requests (booking-wide, then the room's) and the comments
    assert res_by_index[0].notes == "[1.14] Non-smoking\n[2.1] high floor 0\narriving late"
    assert res_by_index[1].notes == "[1.14] Non-smoking\n[2.1] high floor 1\narriving late"
    guest = db_session.get(Guest, res_by_index[0].guest_id)
    assert (guest.email, guest.phone, guest.country) == (
        "ana@example.org",
        "+351 21 000 0000",
        "PT",
    )


def test_a_modification_replaces_what_changed(db_session, hotel):
    ingest(db_session, hotel, [full_booking("E2", hotel)])
    mod = full_booking("E2", hotel, rev="0002", event=BookingEvent.MODIFIED, rooms=1)
    mod = mod.model_copy(
        update={
            "total_amount": D("250.00"),
            "taxes": D("22.00"),
            "special_requests": [SpecialRequest(text="Crib please")],
            "extras": [],
            "loyalty": ["one_key"],
            "payment": PaymentInfo(
                model=PaymentModel.HOTEL_COLLECT, card_type="MC", card_last4="5454"
            ),
            "guest": mod.guest.model_copy(update={"phone": "+351 91 111 1111", "country": "ES"}),
        }
    )
    res = ingest(db_session, hotel, [mod])
    assert (res.updated, res.errors) == (1, [])
    cb = stored(db_session, "E2")
    assert (cb.revision, cb.status, cb.total_amount, cb.taxes) == (
        "0002",
        "modified",
        D("250.00"),
        D("22.00"),
    )
    assert (cb.payment_model, cb.card_type, cb.card_last4) == ("hotel_collect", "MC", "5454")
    assert cb.special_requests == [{"text": "Crib please"}]
    assert cb.extras == [] and cb.loyalty == ["one_key"]
    assert (cb.booker_phone, cb.booker_country) == ("+351 91 111 1111", "ES")
    # the second room is gone from the booking: its row too; its reservation is cancelled
    assert [r.room_index for r in rooms(db_session, cb)] == [0]
    res = {
        r.room_index: r
        for r in db_session.scalars(select(Reservation).where(Reservation.external_ref == "E2"))
    }
    assert res[1].status == "cancelled"
    assert res[0].notes == "Crib please\n[2.1] high floor 0\narriving late"
    guest = db_session.get(Guest, res[0].guest_id)
    assert (guest.phone, guest.country) == ("+351 91 111 1111", "ES")


def test_a_cancel_without_amounts_keeps_the_stored_ones(db_session, hotel):
    rec = full_booking("E3", hotel)
    ingest(db_session, hotel, [rec])
    before = {
        r.room_index: (r.amount, r.nightly_prices)
        for r in rooms(db_session, stored(db_session, "E3"))
    }
    cancel = BookingRecord(
        channel=EXP,
        external_id="E3",
        event=BookingEvent.CANCELLED,
        status="cancelled",
        revision="0002",
        rooms=[BookedRoom(partner_room_type_code="0")],
    )
    res = ingest(db_session, hotel, [cancel])
    assert (res.updated, res.errors) == (1, [])
    cb = stored(db_session, "E3")
    assert (cb.status, cb.revision) == ("cancelled", "0002")
    assert (cb.check_in, cb.check_out, cb.total_amount, cb.taxes, cb.commission) == (
        rec.check_in,
        rec.check_out,
        D("461.00"),
        D("41.00"),
        D("69.15"),
    )
    assert (cb.payment_model, cb.card_last4, cb.booker_email) == (
        "virtual_card",
        "4242",
        "ana@example.org",
    )
    assert cb.loyalty == ["expedia_vip", "one_key"] and cb.group_id == "G-77"
    assert cb.special_requests == [{"code": "1.14", "text": "Non-smoking"}]
    assert len(cb.cancel_penalties) == 1 and len(cb.extras) == 1
    after = {r.room_index: (r.amount, r.nightly_prices) for r in rooms(db_session, cb)}
    assert after == before
    reservations = list(
        db_session.scalars(select(Reservation).where(Reservation.external_ref == "E3"))
    )
    assert {r.status for r in reservations} == {"cancelled"}
    assert all(r.notes and r.notes.startswith("[1.14] Non-smoking") for r in reservations)


def test_redelivery_and_older_revisions_change_nothing(db_session, hotel):
    rec = full_booking("E4", hotel)
    ingest(db_session, hotel, [rec])
    cb = stored(db_session, "E4")
    snapshot = (
        cb.updated_at,
        cb.total_amount,
        [(r.room_index, r.updated_at) for r in rooms(db_session, cb)],
    )
    res = ingest(db_session, hotel, [rec, rec])
    assert (res.new, res.updated, res.duplicates) == (0, 0, 2)
    cb = stored(db_session, "E4")
    assert (
        cb.updated_at,
        cb.total_amount,
        [(r.room_index, r.updated_at) for r in rooms(db_session, cb)],
    ) == snapshot
    newer = full_booking("E4", hotel, rev="0003", event=BookingEvent.MODIFIED)
    newer = newer.model_copy(update={"total_amount": D("500.00")})
    older = full_booking("E4", hotel, rev="0002", event=BookingEvent.MODIFIED)
    older = older.model_copy(update={"total_amount": D("1.00")})
    ingest(db_session, hotel, [newer])
    res = ingest(db_session, hotel, [older])
    assert res.duplicates == 1
    assert stored(db_session, "E4").total_amount == D("500.00")
    assert db_session.scalar(select(func.count()).select_from(ChannelBookingRoom)) == 2


def test_staff_edited_notes_survive_a_modification(db_session, hotel):
    ingest(db_session, hotel, [full_booking("E5", hotel, rooms=1)])
    r = db_session.scalar(select(Reservation).where(Reservation.external_ref == "E5"))
    r.notes = "VIP: upgrade if possible"
    db_session.flush()
    mod = full_booking("E5", hotel, rev="0002", event=BookingEvent.MODIFIED, rooms=1)
    mod = mod.model_copy(update={"special_requests": [SpecialRequest(text="Late checkout")]})
    ingest(db_session, hotel, [mod])
    db_session.refresh(r)
    assert r.notes == "VIP: upgrade if possible"
    # the partner's current requests are still on the channel booking
    assert stored(db_session, "E5").special_requests == [{"text": "Late checkout"}]


def test_card_numbers_are_cut_to_four_digits(db_session, hotel):
    leaky = full_booking("E6", hotel, rooms=1)
    leaky = leaky.model_copy(
        update={
            "card_last4": None,
            "payment": PaymentInfo(
                model=PaymentModel.HOTEL_COLLECT, card_last4="4111 1111 1111 1234"
            ),
        }
    )
    masked = full_booking("E7", hotel, rooms=1)
    masked = masked.model_copy(update={"card_last4": "XXXXXXXXXXXX9876", "payment": PaymentInfo()})
    ingest(db_session, hotel, [leaky, masked])
    assert stored(db_session, "E6").card_last4 == "1234"
    cb = stored(db_session, "E7")
    assert (cb.card_last4, cb.payment_model) == ("9876", None)
    dump = str([(c.name, getattr(cb, c.name)) for c in ChannelBooking.__table__.columns])
    assert "4111" not in dump


def test_bookings_of_one_group_are_found_together(db_session, hotel):
    ingest(
        db_session,
        hotel,
        [
            full_booking("E8", hotel, rooms=1, group_id="ORDER-9"),
            full_booking("E9", hotel, rooms=1, group_id="ORDER-9"),
            full_booking("E10", hotel, rooms=1, group_id="ORDER-10"),
            full_booking("E11", hotel, rooms=1, group_id=None),
        ],
    )
    cid = hotel.channels[EXP]
    assert [b.external_booking_id for b in group_members(db_session, cid, "ORDER-9")] == [
        "E8",
        "E9",
    ]
    assert group_members(db_session, hotel.channels[ChannelName.AGODA], "ORDER-9") == []
    found = db_session.scalars(channel_bookings_query(group_id="ORDER-10")).all()
    assert [b.external_booking_id for b in found] == ["E10"]


def test_nightly_rates_stand_in_when_an_adapter_gives_no_nightly_prices(db_session, hotel):
    rec = full_booking("E12", hotel, rooms=1)
    room = rec.rooms[0].model_copy(update={"nightly_prices": []})
    ingest(db_session, hotel, [rec.model_copy(update={"rooms": [room]})])
    (row,) = rooms(db_session, stored(db_session, "E12"))
    assert row.nightly_prices == [
        {"night": rec.check_in.isoformat(), "amount": "115.00"},
        {"night": (rec.check_in + timedelta(days=1)).isoformat(), "amount": "115.00"},
    ]


def test_unmapped_bookings_keep_their_rooms_without_a_reservation(db_session, hotel):
    rec = full_booking("E13", hotel, rooms=1)
    room = rec.rooms[0].model_copy(update={"partner_room_type_code": "NOPE"})
    res = ingest(db_session, hotel, [rec.model_copy(update={"rooms": [room]})])
    assert res.unmapped == 1
    cb = stored(db_session, "E13")
    (row,) = rooms(db_session, cb)
    assert (cb.sync_status, cb.total_amount, row.partner_room_type_code, row.reservation_id) == (
        "unmapped",
        D("461.00"),
        "NOPE",
        None,
    )


def test_records_built_by_parsers_without_validation_are_stored_alike(db_session, hotel):
    rec = full_booking("E14", hotel, rooms=1)
    fast = trusted(BookingRecord, dict(rec.__dict__))
    ingest(db_session, hotel, [fast])
    cb = stored(db_session, "E14")
    assert (cb.total_amount, cb.card_last4, cb.loyalty) == (
        D("461.00"),
        "4242",
        ["expedia_vip", "one_key"],
    )
    assert rooms(db_session, cb)[0].nightly_prices[0]["base"] == "100.00"


def test_a_first_message_that_is_a_cancel_is_stored_with_what_it_has(db_session, hotel):
    cancel = BookingRecord(
        channel=EXP,
        external_id="E15",
        event=BookingEvent.CANCELLED,
        status="cancelled",
        revision="0001",
        check_in=date(2030, 1, 1),
        check_out=date(2030, 1, 3),
        total_amount=D("10.00"),
        currency="EUR",
    )
    ingest(db_session, hotel, [cancel])
    cb = stored(db_session, "E15")
    assert (cb.status, cb.total_amount, cb.extras, cb.loyalty, rooms(db_session, cb)) == (
        "cancelled",
        D("10.00"),
        None,
        None,
        [],
    )


def test_card_numbers_typed_in_requests_never_reach_columns_or_notes(db_session, hotel):
    rec = full_booking("E16", hotel, rooms=1)
    room = rec.rooms[0].model_copy(
        update={"special_requests": [SpecialRequest(text="card 4111 1111 1111 1111 for deposit")]}
    )
    rec = rec.model_copy(
        update={
            "rooms": [room],
            "comments": "pay with 5555555555554444 please",
            "special_requests": [SpecialRequest(code="X", text="4012888888881881")],
        }
    )
    ingest(db_session, hotel, [rec])
    cb = stored(db_session, "E16")
    (row,) = rooms(db_session, cb)
    r = db_session.scalar(select(Reservation).where(Reservation.external_ref == "E16"))
    texts = str(
        [cb.comments, cb.special_requests, row.special_requests, row.requests_note, r.notes]
    )
    for number in (
        "4111 1111 1111 1111",
        "4111111111111111",
        "5555555555554444",
        "4012888888881881",
    ):
        assert number not in texts
    assert "1111" in str(row.special_requests) and "4444" in (cb.comments or "")
    assert r.notes and r.notes.count("\n") == 2


def test_an_overlong_group_id_is_cut_not_fatal(db_session, hotel):
    res = ingest(db_session, hotel, [full_booking("E17", hotel, rooms=1, group_id="G" * 300)])
    assert (res.new, res.errors) == (1, [])
    assert stored(db_session, "E17").group_id == "G" * 128
