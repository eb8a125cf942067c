"""Repository reads that replaced raw SQL in flows, tasks and the launcher."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.base import ChannelName
from db.models import Channel, WebhookEvent
from db.repositories.bookings import booking_ref
from db.repositories.channels import (
    ChannelNotFoundError,
    channel_facts,
    channels_facts,
    enabled_channel_ids,
    enabled_channels_of_partners,
    get_mappings,
    property_channels_facts,
    pull_requests_per_poll,
)
from db.repositories.demo import channels_of_property, count_channels_outside
from db.repositories.webhooks import finish_event
from tests.sync.conftest import make_hotel

pytestmark = pytest.mark.postgres


def test_channel_reads(db_session: Session) -> None:
    a = make_hotel(db_session, days=1, channels=(ChannelName.BOOKING_COM, ChannelName.AIRBNB))
    b = make_hotel(db_session, days=1, channels=(ChannelName.EXPEDIA,))
    off = a.channels[ChannelName.AIRBNB]
    db_session.get_one(Channel, off).enabled = False
    db_session.flush()
    bcom = a.channels[ChannelName.BOOKING_COM]
    facts = channel_facts(db_session, bcom)
    assert (facts.channel_name, facts.enabled, facts.property_id) == (
        "booking.com", True, a.property_id)
    assert channel_facts(db_session, off).enabled is False
    with pytest.raises(ChannelNotFoundError):
        channel_facts(db_session, 10**12)
    many = channels_facts(db_session, [off, bcom])
    assert many == {bcom: facts, off: channel_facts(db_session, off)}
    with pytest.raises(ChannelNotFoundError, match=f"channel {10**12} not found"):
        channels_facts(db_session, [bcom, 10**12])
    assert enabled_channel_ids(db_session, a.property_id) == [bcom]
    assert enabled_channel_ids(db_session, b.property_id) == [b.channels[ChannelName.EXPEDIA]]
    # a property's enabled channels with their facts, in one read (the closing pushes')
    assert property_channels_facts(db_session, a.property_id) == {bcom: facts}
    assert list(property_channels_facts(db_session, b.property_id)) == [
        b.channels[ChannelName.EXPEDIA]]
    assert property_channels_facts(db_session, 10**12) == {}
    everything = enabled_channel_ids(db_session)
    assert bcom in everything and off not in everything
    by_partner = enabled_channels_of_partners(db_session, ["expedia", "airbnb"])
    assert [c[0] for c in by_partner if c[0] in (off, b.channels[ChannelName.EXPEDIA])] == [
        b.channels[ChannelName.EXPEDIA]]
    assert all(c[2] in ("expedia", "airbnb") for c in by_partner)
    assert enabled_channels_of_partners(db_session, []) == []


def test_poll_requests_count_each_airbnb_listing(db_session: Session) -> None:
    """The partner budgets' units: one per enabled channel, one per mapped listing for
    Airbnb (its reservations are read per listing), at least one per Airbnb channel."""
    from tasks.limits import ROOM_WISE_PULL

    before = pull_requests_per_poll(db_session, ROOM_WISE_PULL)
    per_channel_before = pull_requests_per_poll(db_session, ())
    a = make_hotel(db_session, days=1, channels=(ChannelName.BOOKING_COM, ChannelName.AIRBNB))
    b = make_hotel(db_session, days=1, channels=(ChannelName.AIRBNB,))
    db_session.get_one(Channel, b.channels[ChannelName.AIRBNB]).enabled = False
    db_session.add(Channel(name="no listings mapped", channel_name="airbnb", config_encrypted="x"))
    db_session.flush()
    listings = len(set(get_mappings(db_session, a.channels[ChannelName.AIRBNB]).rooms.values()))
    assert listings == 4

    def grown(now: dict[str, int], then: dict[str, int]) -> dict[str, int]:
        return {k: now.get(k, 0) - then.get(k, 0) for k in {*now, *then}
                if now.get(k, 0) != then.get(k, 0)}

    assert grown(pull_requests_per_poll(db_session, ROOM_WISE_PULL), before) == {
        "booking.com": 1, "airbnb": listings + 1}
    assert grown(pull_requests_per_poll(db_session, ()), per_channel_before) == {
        "booking.com": 1, "airbnb": 2}


def test_demo_reads(db_session: Session) -> None:
    hotel = make_hotel(db_session, days=1, channels=(ChannelName.AGODA, ChannelName.EXPEDIA))
    code = db_session.execute(
        select(Channel.property_id).where(Channel.id == hotel.channels[ChannelName.AGODA])
    ).scalar_one()
    from db.models import Property

    prop_code = db_session.get_one(Property, code).code
    rows = channels_of_property(db_session, prop_code)
    assert [(r.id, r.channel_name) for r in rows] == sorted(
        (cid, str(name)) for name, cid in hotel.channels.items())
    assert all(r.endpoint is None for r in rows)  # make_hotel sets no endpoint
    outside = count_channels_outside(db_session, prop_code)
    assert count_channels_outside(db_session, "no-such-code") == outside + 2
    db_session.add(Channel(name="orphan", channel_name="agoda", config_encrypted="x"))
    db_session.flush()
    assert count_channels_outside(db_session, prop_code) == outside + 1  # no property: counted


def test_booking_ref_and_webhook_event(db_session: Session) -> None:
    hotel = make_hotel(db_session, days=1, channels=(ChannelName.AIRBNB,))
    cid = hotel.channels[ChannelName.AIRBNB]
    assert booking_ref(db_session, 10**12) is None
    event = WebhookEvent(channel_id=cid, event_key="k1", external_booking_id="B1")
    db_session.add(event)
    db_session.flush()
    finish_event(db_session, event.id, ok=False, errors=["partner said no", "again"])
    db_session.refresh(event)
    assert (event.status, event.error) == ("failed", "partner said no; again")
    assert event.processed_at is not None
    finish_event(db_session, event.id, ok=True, errors=[])
    db_session.refresh(event)
    assert (event.status, event.error) == ("processed", None)
