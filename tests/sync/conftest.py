"""Factories for channel-sync tests: a small hotel with channels and mappings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from itertools import count

import pytest
from sqlalchemy.orm import Session

from channels.base import BookedRoom, BookingEvent, BookingRecord, ChannelName, GuestInfo
from channels.simulators.catalog import CATALOG
from db.models import (
    Channel,
    ChannelRateMapping,
    ChannelRoomMapping,
    Inventory,
    Property,
    Rate,
    RatePlan,
    RoomType,
)
from innsync.crypto import app_key, encrypt_json

_seq = count(1)
ROOM_CODES = ("STD", "DLX", "STE", "FAM")
RATE_CODES = ("BAR", "NRF", "BB")


@dataclass
class Hotel:
    property_id: int
    room_types: dict[str, int]  # PMS code -> id
    rate_plans: dict[tuple[str, str], int]  # (room code, rate code) -> id
    channels: dict[ChannelName, int] = field(default_factory=dict)
    start: date = field(default_factory=date.today)


def make_hotel(
    session: Session,
    units: int = 5,
    days: int = 30,
    channels: tuple[ChannelName, ...] = tuple(ChannelName),
) -> Hotel:
    """A property with STD/DLX/STE/FAM, BAR/NRF/BB each, `days` of inventory and rates, mapped channels."""
    n = next(_seq)
    prop = Property(code=f"T{n}", name=f"Test hotel {n}", timezone="Europe/Lisbon", currency="EUR")
    session.add(prop)
    session.flush()
    hotel = Hotel(prop.id, {}, {})
    for code in ROOM_CODES:
        rt = RoomType(property_id=prop.id, code=code, name=code, total_units=units)
        session.add(rt)
        session.flush()
        hotel.room_types[code] = rt.id
        for rcode in RATE_CODES:
            rp = RatePlan(property_id=prop.id, room_type_id=rt.id, code=rcode, name=rcode)
            session.add(rp)
            session.flush()
            hotel.rate_plans[(code, rcode)] = rp.id
    for i in range(days):
        d = hotel.start + timedelta(days=i)
        for rt_id in hotel.room_types.values():
            session.add(Inventory(room_type_id=rt_id, date=d, total=units, sold=0, held=0))
        for rp_id in hotel.rate_plans.values():
            session.add(Rate(rate_plan_id=rp_id, date=d, amount=Decimal("100.00")))
    for name in channels:
        cat = CATALOG[name]
        ch = Channel(
            property_id=prop.id,
            name=f"{name}-{n}",
            channel_name=str(name),
            enabled=True,
            config_encrypted=encrypt_json(
                app_key(), {"apiKey": "k", "apiSecret": "s", "hotelId": cat["hotel_id"]}
            ),
            config_public={"hotelId": cat["hotel_id"]},
        )
        session.add(ch)
        session.flush()
        hotel.channels[name] = ch.id
        for code, rt_id in hotel.room_types.items():
            session.add(
                ChannelRoomMapping(
                    channel_id=ch.id, room_type_id=rt_id, partner_room_code=cat["room_types"][code]
                )
            )
            for rcode in RATE_CODES:
                if rcode in cat["rate_plans"]:
                    session.add(
                        ChannelRateMapping(
                            channel_id=ch.id,
                            rate_plan_id=hotel.rate_plans[(code, rcode)],
                            partner_room_code=cat["room_types"][code],
                            partner_rate_code=cat["rate_plans"][rcode],
                        )
                    )
    session.flush()
    return hotel


@pytest.fixture
def hotel(db_session: Session) -> Hotel:
    return make_hotel(db_session)


def booking(
    ext: str,
    *,
    channel: ChannelName = ChannelName.BOOKING_COM,
    rev: str = "0001",
    event: BookingEvent = BookingEvent.NEW,
    room: str = "STD",
    rate: str = "BAR",
    check_in: date | None = None,
    nights: int = 2,
    rooms: int = 1,
    amount: str = "200.00",
    first: str = "Zoë",
    last: str = "Müller",
) -> BookingRecord:
    """A booking record as an adapter would produce it (partner codes from the catalog)."""
    cat = CATALOG[channel]
    ci = check_in or date.today() + timedelta(days=3)
    return BookingRecord(
        channel=channel,
        external_id=ext,
        event=event,
        status=event.value,
        revision=rev,
        check_in=ci,
        check_out=ci + timedelta(days=nights),
        guest=GuestInfo(first_name=first, last_name=last, email=f"{ext}@example.com"),
        rooms=[
            BookedRoom(
                partner_room_type_code=cat["room_types"].get(room, room),
                partner_rate_plan_code=cat["rate_plans"].get(rate, rate),
                check_in=ci,
                check_out=ci + timedelta(days=nights),
                adults=2,
                amount=Decimal(amount),
                currency="EUR",
            )
            for _ in range(rooms)
        ],
        total_amount=Decimal(amount) * rooms,
        currency="EUR",
        raw_payload={"id": ext, "revision": rev, "card": {"number": "************1111"}},
    )


@pytest.fixture
def committed(engine):  # type: ignore[no-untyped-def]
    """A session whose writes are committed (flows run in their own transactions); every
    application table is emptied afterwards."""
    from sqlalchemy import text

    session = Session(bind=engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.rollback()
        tables = session.execute(
            text(
                "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ).scalar()
        session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        session.commit()
        session.close()


def point_channel_at(session: Session, channel_id: int, endpoint: str, **extra: str) -> None:
    """Re-seal a channel's config so its adapter talks to `endpoint`; a channel of a partner
    account: the account's (every channel of the account then talks to it)."""
    from channels.base import ChannelConfig
    from db.models import Channel
    from db.repositories.accounts import ACCOUNT_FIELDS, update_account_config
    from db.repositories.channels import update_channel_config

    account = session.get(Channel, channel_id).account_id  # type: ignore[union-attr]
    if account is None:
        update_channel_config(session, channel_id, ChannelConfig(endpoint=endpoint, **extra))
    else:
        own = {k: v for k, v in extra.items() if k not in ACCOUNT_FIELDS}
        update_account_config(session, account, {"endpoint": endpoint, **{
            k: v for k, v in extra.items() if k in ACCOUNT_FIELDS}})
        if own:
            update_channel_config(session, channel_id, own)
    session.commit()
