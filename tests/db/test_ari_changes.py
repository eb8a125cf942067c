"""The availability delta computed by the database (db/repositories/ari.availability_changes):
the same dates and values as comparing the acknowledged calendar with the PMS in Python."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from channels.ari import DayValues, delta
from channels.base import ARIUpdate, ChannelName
from db.models import Inventory
from db.repositories import ari as ari_repo
from tests.sync.conftest import make_hotel

pytestmark = pytest.mark.postgres


def test_changes_are_the_dates_that_differ_from_what_the_channel_acknowledged(
    db_session: Session,
) -> None:
    hotel = make_hotel(db_session, units=5, days=10, channels=(ChannelName.BOOKING_COM,))
    cid = hotel.channels[ChannelName.BOOKING_COM]
    first, last = hotel.start, hotel.start + timedelta(days=9)
    codes = dict(db_session.execute(text(
        "SELECT room_type_id, partner_room_code FROM channel_room_mappings WHERE channel_id = :c"),
        {"c": cid}).tuples().all())
    std, dlx, ste, fam = (hotel.room_types[c] for c in ("STD", "DLX", "STE", "FAM"))

    def changes(ids: list[int] | None = None) -> dict:
        return ari_repo.availability_changes(db_session, cid, first, last, ids)

    def in_python(ids: list[int] | None = None) -> dict:
        return delta(ari_repo.availability(db_session, cid, first, last, ids, source="acked"),
                     ari_repo.availability(db_session, cid, first, last, ids))

    # Nothing acknowledged yet: every mapped room type and date, 5 rooms each.
    everything = changes()
    assert everything == in_python()
    assert len(everything) == 4 and all(len(days) == 10 for days in everything.values())
    assert everything[(codes[std], None)][first] == DayValues(available=5, stop_sell=False)

    # The channel acknowledges all of it: nothing left to send.
    ari_repo.save_acked(db_session, cid, [
        ARIUpdate(partner_room_type_code=key[0], start=day, end=day, **values.as_update_fields())
        for key, days in everything.items() for day, values in days.items()])
    assert changes() == in_python() == {}

    def set_inventory(room_type: int, offset: int, **values: object) -> None:
        db_session.execute(update(Inventory).where(
            Inventory.room_type_id == room_type,
            Inventory.date == first + timedelta(days=offset)).values(**values))

    set_inventory(std, 2, sold=2)                    # 3 rooms now: changed
    set_inventory(dlx, 3, stop_sell=True)            # closed now: changed, sent as 0
    set_inventory(ste, 6, total=7, sold=2)           # still 5 rooms: unchanged
    set_inventory(std, 4, stop_sell=True, sold=1)    # closed now, and ...
    db_session.execute(text(                          # ... acknowledged closed at 3: unchanged
        "UPDATE channel_availability_state SET stop_sell = true, available = 3 "
        "WHERE channel_id = :c AND room_type_id = :r AND date = :d"),
        {"c": cid, "r": std, "d": first + timedelta(days=4)})
    set_inventory(fam, 1, stop_sell=True)            # closed now, acknowledged open with
    db_session.execute(text(                          # none left: the same 0, still changed
        "UPDATE channel_availability_state SET available = 0 "
        "WHERE channel_id = :c AND room_type_id = :r AND date = :d"),
        {"c": cid, "r": fam, "d": first + timedelta(days=1)})
    db_session.execute(text(                          # never acknowledged: changed
        "DELETE FROM channel_availability_state "
        "WHERE channel_id = :c AND room_type_id = :r AND date = :d"),
        {"c": cid, "r": ste, "d": first + timedelta(days=8)})

    expected = {
        (codes[std], None): {first + timedelta(days=2): DayValues(available=3, stop_sell=False)},
        (codes[dlx], None): {first + timedelta(days=3): DayValues(available=0, stop_sell=True)},
        (codes[ste], None): {first + timedelta(days=8): DayValues(available=5, stop_sell=False)},
        (codes[fam], None): {first + timedelta(days=1): DayValues(available=0, stop_sell=True)},
    }
    assert changes() == expected == in_python()
    # one room type, and a window that leaves the others' dates out
    assert changes([dlx]) == {(codes[dlx], None): expected[(codes[dlx], None)]} == in_python([dlx])
    assert ari_repo.availability_changes(db_session, cid, first, first + timedelta(days=2)) == {
        key: expected[key] for key in ((codes[std], None), (codes[fam], None))}
