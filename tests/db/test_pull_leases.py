"""Channel pull leases: one holder per channel, taken in one statement, expiring on their own."""

from __future__ import annotations

from sqlalchemy import text

from channels.base import ChannelName
from db.repositories.pull_leases import (
    leased_channels,
    release_leases,
    renew_leases,
    take_leases,
)
from tests.sync.conftest import make_hotel


def test_a_channel_has_one_holder_until_released_or_expired(db_session) -> None:  # type: ignore[no-untyped-def]
    hotel = make_hotel(db_session, days=1,
                       channels=(ChannelName.AGODA, ChannelName.EXPEDIA, ChannelName.AIRBNB))
    a, b, c = sorted(hotel.channels.values())
    assert take_leases(db_session, [a, b], "batch-1", 60) == [a, b]
    # Another batch gets only what batch-1 does not hold; a channel that does not exist is
    # left out rather than failing the batch.
    assert take_leases(db_session, [a, b, c, 999_999], "batch-2", 60) == [c]
    assert leased_channels(db_session) == {a: "batch-1", b: "batch-1", c: "batch-2"}
    # Renewing and releasing touch the holder's own leases only.
    assert renew_leases(db_session, "batch-2", [a, b, c], 60) == 1
    assert release_leases(db_session, "batch-2", [a]) == 0
    assert release_leases(db_session, "batch-1", [a]) == 1
    assert take_leases(db_session, [a], "batch-2", 60) == [a]
    # A holder that died: its lease expires and the next batch takes the channel.
    db_session.execute(text("UPDATE channel_pull_leases SET expires_at = now() - interval '1 s' "
                            "WHERE channel_id = :c"), {"c": b})
    assert b not in leased_channels(db_session)
    assert take_leases(db_session, [b], "batch-3", 60) == [b]
    assert renew_leases(db_session, "batch-1", [b], 60) == 0  # batch-1 lost it
    assert take_leases(db_session, [], "batch-4", 60) == []


def test_a_deleted_channel_takes_its_lease_with_it(db_session) -> None:  # type: ignore[no-untyped-def]
    hotel = make_hotel(db_session, days=1, channels=(ChannelName.AGODA,))
    cid = hotel.channels[ChannelName.AGODA]
    take_leases(db_session, [cid], "batch-1", 60)
    db_session.execute(text("DELETE FROM channel_room_mappings WHERE channel_id = :c"), {"c": cid})
    db_session.execute(text("DELETE FROM channel_rate_mappings WHERE channel_id = :c"), {"c": cid})
    db_session.execute(text("DELETE FROM channels WHERE id = :c"), {"c": cid})
    assert leased_channels(db_session) == {}
