"""Guests and reservations; inventory `sold` follows reservations that hold rooms.

`sold` of a room type on a date counts the reservations in SOLD_STATUSES (the booking
ingest's ACTIVE_STATUSES: pending, confirmed, checked_in) whose stay covers that night
(check_in <= date < check_out).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from db.models import Guest, Reservation
from db.repositories.base import add_guarded, update_guarded
from db.repositories.booking_plan import ACTIVE_STATUSES, nights
from db.repositories.bookings import apply_inventory_delta

SOLD_STATUSES = ACTIVE_STATUSES


def guests_query(
    q: str | None = None, email: str | None = None, country: str | None = None
) -> Select[tuple[Guest]]:
    """Guests matching a name/email fragment, an exact email and a country, by id."""
    stmt = select(Guest).order_by(Guest.id)
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        stmt = stmt.where(
            or_(
                Guest.first_name.ilike(pattern),
                Guest.last_name.ilike(pattern),
                Guest.email.ilike(pattern),
            )
        )
    if email is not None:
        stmt = stmt.where(Guest.email == email)
    if country is not None:
        stmt = stmt.where(Guest.country == country)
    return stmt


def reservations_query(
    *,
    property_id: int | None = None,
    status: str | None = None,
    source_channel: str | None = None,
    guest_id: int | None = None,
    room_type_id: int | None = None,
    check_in_from: date | None = None,
    check_in_to: date | None = None,
    staying_on: date | None = None,
) -> Select[tuple[Reservation]]:
    """Reservations filtered by the given fields (source "direct" = no channel), by
    check-in then id."""
    stmt = select(Reservation).order_by(Reservation.check_in, Reservation.id)
    if property_id is not None:
        stmt = stmt.where(Reservation.property_id == property_id)
    if status is not None:
        stmt = stmt.where(Reservation.status == status)
    if source_channel == "direct":
        stmt = stmt.where(Reservation.source_channel.is_(None))
    elif source_channel is not None:
        stmt = stmt.where(Reservation.source_channel == source_channel)
    if guest_id is not None:
        stmt = stmt.where(Reservation.guest_id == guest_id)
    if room_type_id is not None:
        stmt = stmt.where(Reservation.room_type_id == room_type_id)
    if check_in_from is not None:
        stmt = stmt.where(Reservation.check_in >= check_in_from)
    if check_in_to is not None:
        stmt = stmt.where(Reservation.check_in <= check_in_to)
    if staying_on is not None:
        stmt = stmt.where(Reservation.check_in <= staying_on, Reservation.check_out > staying_on)
    return stmt


def adjust_sold(
    session: Session, room_type_id: int | None, check_in: date, check_out: date, delta: int
) -> None:
    """Add `delta` to inventory.sold on each night of a stay, through the same locked path
    as channel bookings (rows locked in order, missing nights created, never below zero)."""
    if room_type_id is None or delta == 0:
        return
    apply_inventory_delta(
        session, Counter({(room_type_id, night): delta for night in nights(check_in, check_out)})
    )


def _holds(res: Reservation) -> bool:
    return res.status in SOLD_STATUSES


def create_reservation(session: Session, reservation: Reservation) -> Reservation:
    """Insert a reservation and count its nights as sold when its status holds rooms."""
    add_guarded(session, reservation, "reservation")
    if _holds(reservation):
        adjust_sold(session, reservation.room_type_id, reservation.check_in,
                    reservation.check_out, +1)
    return reservation


def update_reservation(
    session: Session, reservation: Reservation, values: dict[str, Any]
) -> Reservation:
    """Change a reservation, moving its sold nights when status, dates or room type change."""
    old = (reservation.room_type_id, reservation.check_in, reservation.check_out,
           _holds(reservation))
    update_guarded(session, reservation, values, "reservation")
    new = (reservation.room_type_id, reservation.check_in, reservation.check_out,
           _holds(reservation))
    if old != new:
        if old[3]:
            adjust_sold(session, old[0], old[1], old[2], -1)
        if new[3]:
            adjust_sold(session, new[0], new[1], new[2], +1)
    return reservation
