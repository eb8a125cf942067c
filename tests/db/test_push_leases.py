"""Channel push leases: a window's months taken all or none, one live holder per month."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from channels.base import ChannelName
from db.repositories.push_leases import (
    held,
    months_of,
    release_push_leases,
    renew_push_leases,
    take_push_leases,
)
from tests.sync.conftest import make_hotel

JAN, FEB, MAR = date(2027, 1, 1), date(2027, 2, 1), date(2027, 3, 1)


def test_months_of_a_window() -> None:
    assert months_of(date(2027, 1, 31), date(2027, 1, 31)) == [JAN]
    assert months_of(date(2027, 1, 15), date(2027, 3, 1)) == [JAN, FEB, MAR]
    assert months_of(date(2026, 12, 5), date(2027, 1, 2)) == [date(2026, 12, 1), JAN]


def test_a_month_has_one_live_holder(db_session) -> None:  # type: ignore[no-untyped-def]
    hotel = make_hotel(db_session, days=1, channels=(ChannelName.AGODA, ChannelName.EXPEDIA))
    a, b = sorted(hotel.channels.values())
    assert take_push_leases(db_session, a, [JAN, FEB], "push-1", 60)
    # another holder gets no month of a window that overlaps (only FEB is taken: not all)
    assert not take_push_leases(db_session, a, [FEB, MAR], "push-2", 60)
    # another channel's months are its own; the same holder may take again
    assert take_push_leases(db_session, b, [FEB], "push-2", 60)
    assert take_push_leases(db_session, a, [JAN], "push-1", 60)
    assert held(db_session, a, "push-1", [JAN, FEB])
    assert not held(db_session, a, "push-2", [FEB])
    assert renew_push_leases(db_session, a, "push-2", 60) == 0
    assert renew_push_leases(db_session, a, "push-1", 60) == 2
    # releasing touches the holder's own leases only
    assert release_push_leases(db_session, a, "push-2") == 0
    assert release_push_leases(db_session, a, "push-1") == 2
    assert take_push_leases(db_session, a, [FEB, MAR], "push-2", 60)


def test_a_window_refused_keeps_none_of_its_free_months(db_session) -> None:  # type: ignore[no-untyped-def]
    hotel = make_hotel(db_session, days=1, channels=(ChannelName.AGODA,))
    cid = hotel.channels[ChannelName.AGODA]
    assert take_push_leases(db_session, cid, [FEB], "push-1", 60)
    assert not take_push_leases(db_session, cid, [JAN, FEB, MAR], "push-2", 60)
    holders = db_session.execute(text("SELECT month, holder FROM channel_push_leases")).all()
    assert [tuple(r) for r in holders] == [(FEB, "push-1")]


def test_an_expired_lease_is_no_longer_held_and_goes_to_the_next(db_session) -> None:  # type: ignore[no-untyped-def]
    hotel = make_hotel(db_session, days=1, channels=(ChannelName.AGODA,))
    cid = hotel.channels[ChannelName.AGODA]
    assert take_push_leases(db_session, cid, [JAN], "push-1", 60)
    db_session.execute(text("UPDATE channel_push_leases SET expires_at = now() - interval '1 s'"))
    assert not held(db_session, cid, "push-1", [JAN])
    assert take_push_leases(db_session, cid, [JAN], "push-2", 60)
    assert not held(db_session, cid, "push-1", [JAN])
    assert held(db_session, cid, "push-2", [JAN])
