"""Which property a row belongs to, for API keys scoped to properties."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from db.models import (
    Channel,
    ChannelBooking,
    Property,
    RatePlan,
    Reservation,
    Room,
    RoomType,
)


def property_of(session: Session, param: str, ident: int) -> tuple[bool, int | None]:
    """(found, property id) of the row a path parameter names; unknown parameters are
    (False, None)."""
    stmt: Select[Any] | None = None
    if param == "property_id":
        stmt = select(Property.id).where(Property.id == ident)
    elif param == "room_type_id":
        stmt = select(RoomType.property_id).where(RoomType.id == ident)
    elif param == "rate_plan_id":
        stmt = select(RatePlan.property_id).where(RatePlan.id == ident)
    elif param == "room_id":
        stmt = select(Room.property_id).where(Room.id == ident)
    elif param == "reservation_id":
        stmt = select(Reservation.property_id).where(Reservation.id == ident)
    elif param == "channel_id":
        stmt = select(Channel.property_id).where(Channel.id == ident)
    elif param == "booking_id":
        stmt = (
            select(Channel.property_id)
            .join(ChannelBooking, ChannelBooking.channel_id == Channel.id)
            .where(ChannelBooking.id == ident)
        )
    if stmt is None:
        return False, None
    row = session.execute(stmt).first()
    return (row is not None, row[0] if row is not None else None)


def guest_in_properties(session: Session, guest_id: int, property_ids: Sequence[int]) -> bool:
    """True when the guest has a reservation at one of these properties."""
    return session.scalar(
        select(Reservation.id)
        .where(Reservation.guest_id == guest_id,
               Reservation.property_id.in_(list(property_ids)))
        .limit(1)
    ) is not None


def guests_in_properties(property_ids: Sequence[int]) -> Select[tuple[int]]:
    """Ids of the guests with a reservation at these properties (a subquery)."""
    return select(Reservation.guest_id).where(Reservation.property_id.in_(list(property_ids)))


def channels_in_properties(property_ids: Sequence[int]) -> Select[tuple[int]]:
    """Ids of the channels of these properties (a subquery)."""
    return select(Channel.id).where(Channel.property_id.in_(list(property_ids)))
