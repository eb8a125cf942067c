"""Reading channel bookings: the list's filters, their booked rooms, partner groups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from db.models import ChannelBooking, ChannelBookingRoom


def channel_bookings_query(
    *,
    channel_id: int | None = None,
    status: str | None = None,
    sync_status: str | None = None,
    overbooked: bool | None = None,
    external_booking_id: str | None = None,
    group_id: str | None = None,
    created_from: date | None = None,
    created_to: date | None = None,
    check_in_from: date | None = None,
    check_in_to: date | None = None,
) -> Select[tuple[ChannelBooking]]:
    """Channel bookings matching every given filter, newest first (date ranges inclusive)."""
    stmt = select(ChannelBooking).order_by(ChannelBooking.id.desc())
    equals = [
        (ChannelBooking.channel_id, channel_id),
        (ChannelBooking.status, status),
        (ChannelBooking.sync_status, sync_status),
        (ChannelBooking.overbooked, overbooked),
        (ChannelBooking.external_booking_id, external_booking_id),
        (ChannelBooking.group_id, group_id),
    ]
    for column, value in equals:
        if value is not None:
            stmt = stmt.where(column == value)
    if created_from is not None:
        stmt = stmt.where(ChannelBooking.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(ChannelBooking.created_at < created_to + timedelta(days=1))
    if check_in_from is not None:
        stmt = stmt.where(ChannelBooking.check_in >= check_in_from)
    if check_in_to is not None:
        stmt = stmt.where(ChannelBooking.check_in <= check_in_to)
    return stmt


def rooms_of(session: Session, booking_ids: Sequence[int]) -> dict[int, list[ChannelBookingRoom]]:
    """The booked rooms of these channel bookings (one query), by booking id, in room order."""
    out: dict[int, list[ChannelBookingRoom]] = {i: [] for i in booking_ids}
    if not booking_ids:
        return out
    rows = session.scalars(
        select(ChannelBookingRoom)
        .where(ChannelBookingRoom.channel_booking_id.in_(list(booking_ids)))
        .order_by(ChannelBookingRoom.channel_booking_id, ChannelBookingRoom.room_index)
    )
    for row in rows:
        out[row.channel_booking_id].append(row)
    return out


def group_members(session: Session, channel_id: int, group_id: str) -> list[ChannelBooking]:
    """The channel bookings of one partner group (Expedia: one booking per room of a
    multi-room order, sharing the group id), oldest first."""
    return list(
        session.scalars(
            select(ChannelBooking)
            .where(ChannelBooking.channel_id == channel_id, ChannelBooking.group_id == group_id)
            .order_by(ChannelBooking.id)
        )
    )
