"""Bookings in: stored exactly once, revisions ordered, inventory moved, overbookings flagged."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text

from channels.base import BookingEvent, ChannelName
from db.models import ChannelBooking, Guest, Inventory, Reservation
from db.repositories.bookings import ingest_page
from tests.sync.conftest import booking

BCOM = ChannelName.BOOKING_COM


def sold(session, room_type_id, day):
    return session.scalar(
        select(Inventory.sold).where(Inventory.room_type_id == room_type_id, Inventory.date == day)
    )


def ingest(session, hotel, records, channel=BCOM):
    return ingest_page(session, hotel.channels[channel], str(channel), records)


def test_new_booking_creates_guest_reservation_and_moves_inventory(db_session, hotel):
    rec = booking("B1", nights=3)
    res = ingest(db_session, hotel, [rec])
    assert (res.new, res.updated, res.duplicates, res.errors) == (1, 0, 0, [])
    assert res.acknowledgeable == ["B1"]
    cb = db_session.scalar(select(ChannelBooking).where(ChannelBooking.external_booking_id == "B1"))
    r = db_session.get(Reservation, cb.reservation_id)
    assert (r.check_in, r.check_out, r.status, str(r.amount)) == (
        rec.check_in,
        rec.check_out,
        "confirmed",
        "200.00",
    )
    assert db_session.get(Guest, r.guest_id).first_name == "Zoë"
    std = hotel.room_types["STD"]
    assert [sold(db_session, std, rec.check_in + timedelta(days=i)) for i in range(4)] == [
        1,
        1,
        1,
        0,
    ]
    assert len(res.touched) == 3


def test_repeated_delivery_changes_nothing(db_session, hotel):
    ingest(db_session, hotel, [booking("B1")])
    before = db_session.execute(text("SELECT count(*), sum(sold) FROM inventory")).one()
    res = ingest(db_session, hotel, [booking("B1"), booking("B1")])
    assert (res.new, res.duplicates) == (0, 2)
    assert res.acknowledgeable == ["B1"]
    assert db_session.scalar(select(func.count()).select_from(Reservation)) == 1
    assert db_session.scalar(select(func.count()).select_from(Guest)) == 1
    assert db_session.execute(text("SELECT count(*), sum(sold) FROM inventory")).one() == before


def test_modification_modifies_and_older_revision_never_overwrites(db_session, hotel):
    first = booking("B2", nights=2)
    ingest(db_session, hotel, [first])
    moved = booking(
        "B2",
        rev="0002",
        event=BookingEvent.MODIFIED,
        room="DLX",
        check_in=first.check_in + timedelta(days=1),
        nights=3,
        amount="330.00",
    )
    res = ingest(db_session, hotel, [moved])
    assert res.updated == 1
    r = db_session.scalar(select(Reservation).where(Reservation.external_ref == "B2"))
    assert r.room_type_id == hotel.room_types["DLX"] and str(r.amount) == "330.00"
    assert sold(db_session, hotel.room_types["STD"], first.check_in) == 0
    assert sold(db_session, hotel.room_types["DLX"], moved.check_in) == 1
    # the old revision arrives late: ignored, acknowledged
    res = ingest(db_session, hotel, [first])
    assert res.duplicates == 1 and res.updated == 0
    db_session.refresh(r)
    assert r.room_type_id == hotel.room_types["DLX"]
    cb = db_session.scalar(select(ChannelBooking).where(ChannelBooking.external_booking_id == "B2"))
    assert cb.revision == "0002"
    assert db_session.scalar(select(func.count()).select_from(Reservation)) == 1


def test_cancel_without_dates_uses_stored_ones(db_session, hotel):
    rec = booking("B3", nights=2)
    ingest(db_session, hotel, [rec])
    cancel = booking("B3", rev="0002", event=BookingEvent.CANCELLED)
    cancel = cancel.model_copy(update={"check_in": None, "check_out": None, "rooms": []})
    res = ingest(db_session, hotel, [cancel])
    assert res.updated == 1, res.errors
    r = db_session.scalar(select(Reservation).where(Reservation.external_ref == "B3"))
    assert (r.status, r.check_in, r.check_out) == ("cancelled", rec.check_in, rec.check_out)
    assert sold(db_session, hotel.room_types["STD"], rec.check_in) == 0


def test_unmapped_room_type_is_stored_and_flagged_not_dropped(db_session, hotel):
    res = ingest(db_session, hotel, [booking("B4", room="NOPE")])
    assert res.unmapped == 1 and "unmapped room type" in res.errors[0]
    assert res.acknowledgeable == ["B4"]
    cb = db_session.scalar(select(ChannelBooking).where(ChannelBooking.external_booking_id == "B4"))
    assert cb.sync_status == "unmapped" and cb.reservation_id is None
    assert cb.raw_payload["id"] == "B4"


def test_multi_room_booking_takes_one_unit_per_room(db_session, hotel):
    rec = booking("B5", rooms=3)
    ingest(db_session, hotel, [rec])
    assert sold(db_session, hotel.room_types["STD"], rec.check_in) == 3
    assert (
        db_session.scalar(
            select(func.count()).select_from(Reservation).where(Reservation.external_ref == "B5")
        )
        == 3
    )


def test_booking_for_sold_out_night_is_accepted_and_flagged(db_session, hotel):
    day = hotel.start + timedelta(days=5)
    ingest(db_session, hotel, [booking("F1", check_in=day, rooms=5)])  # 5 units: full
    res = ingest(
        db_session,
        hotel,
        [booking("X1", channel=ChannelName.AGODA, check_in=day)],
        channel=ChannelName.AGODA,
    )
    assert res.new == 1 and res.overbooked == ["X1"]
    r = db_session.scalar(select(Reservation).where(Reservation.external_ref == "X1"))
    assert r.overbooked and r.status == "confirmed"
    assert sold(db_session, hotel.room_types["STD"], day) == 6
    first = db_session.scalar(select(Reservation).where(Reservation.external_ref == "F1"))
    assert not first.overbooked

    def flags(ext: str) -> tuple[bool, list[bool]]:
        db_session.expire_all()
        cb = db_session.scalar(select(ChannelBooking).where(
            ChannelBooking.external_booking_id == ext))
        rs = db_session.scalars(select(Reservation).where(Reservation.external_ref == ext)
                                .order_by(Reservation.room_index))
        return cb.overbooked, [x.overbooked for x in rs]

    assert flags("X1") == (True, [True]) and flags("F1") == (False, [False] * 5)
    # A modification that adds no sold night keeps the flag; one that adds a second room on
    # the sold-out night flags the new room too; a cancel never flags.
    mod = booking("X1", channel=ChannelName.AGODA, check_in=day, rev="0002",
                  event=BookingEvent.MODIFIED, amount="180.00")
    res = ingest(db_session, hotel, [mod], channel=ChannelName.AGODA)
    assert (res.updated, res.overbooked) == (1, []) and flags("X1") == (True, [True])
    more = booking("X1", channel=ChannelName.AGODA, check_in=day, rev="0003",
                   event=BookingEvent.MODIFIED, rooms=2)
    res = ingest(db_session, hotel, [more], channel=ChannelName.AGODA)
    assert res.overbooked == ["X1"] and flags("X1") == (True, [True, True])
    ingest(db_session, hotel, [booking("C1", check_in=day + timedelta(days=30),
                                       event=BookingEvent.CANCELLED)])
    assert flags("C1")[0] is False


def test_night_beyond_calendar_gets_an_inventory_row(db_session, hotel):
    far = hotel.start + timedelta(days=200)
    ingest(db_session, hotel, [booking("B6", check_in=far)])
    assert sold(db_session, hotel.room_types["STD"], far) == 1
    total = db_session.scalar(
        select(Inventory.total).where(
            Inventory.room_type_id == hotel.room_types["STD"], Inventory.date == far
        )
    )
    assert total == 5
