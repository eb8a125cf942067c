"""Overbooked reservations (accepted on sold-out nights) for the API's read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, ConfigDict
from sqlalchemy import text
from sqlalchemy.orm import Session


class OverbookingRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reservation_id: int
    property_id: int
    channel_booking_id: int | None
    channel_id: int | None
    channel: str | None
    external_booking_id: str | None
    room_type_id: int | None
    check_in: date
    check_out: date
    guest: str
    status: str


_BASE = """
    FROM reservations r
    JOIN guests g ON g.id = r.guest_id
    LEFT JOIN channels c ON c.id = r.channel_id
    LEFT JOIN channel_bookings cb
      ON cb.channel_id = r.channel_id AND cb.external_booking_id = r.external_ref
    WHERE r.overbooked AND r.status <> 'cancelled'
      AND (CAST(:props AS bigint[]) IS NULL OR r.property_id = ANY(CAST(:props AS bigint[])))
"""


def list_overbookings(
    session: Session, property_ids: Sequence[int] | None, limit: int, offset: int
) -> tuple[list[OverbookingRow], int]:
    """Open overbooked reservations (of these properties; None = all), by arrival, and the
    total of them."""
    params = {"props": list(property_ids) if property_ids is not None else None}
    total = session.execute(text(f"SELECT count(*) {_BASE}"), params).scalar() or 0
    rows = session.execute(
        text(f"""
        SELECT r.id AS reservation_id, r.property_id, cb.id AS channel_booking_id,
               r.channel_id, c.name AS channel, r.external_ref AS external_booking_id,
               r.room_type_id, r.check_in, r.check_out,
               g.first_name || ' ' || g.last_name AS guest, r.status
        {_BASE} ORDER BY r.check_in, r.id LIMIT :l OFFSET :o
        """),
        {**params, "l": limit, "o": offset},
    ).mappings().all()
    return [OverbookingRow.model_validate(dict(r)) for r in rows], total
