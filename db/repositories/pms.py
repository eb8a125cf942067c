"""Queries over the PMS structure: properties, room types, rooms, rate plans."""

from __future__ import annotations

from sqlalchemy import Select, select

from db.models import Property, RatePlan, Room, RoomType


def properties_query(code: str | None = None) -> Select[tuple[Property]]:
    """Properties, optionally one code, ordered by id."""
    stmt = select(Property).order_by(Property.id)
    if code is not None:
        stmt = stmt.where(Property.code == code)
    return stmt


def room_types_query(
    property_id: int | None = None, code: str | None = None
) -> Select[tuple[RoomType]]:
    """Room types filtered by property and code, ordered by id."""
    stmt = select(RoomType).order_by(RoomType.id)
    if property_id is not None:
        stmt = stmt.where(RoomType.property_id == property_id)
    if code is not None:
        stmt = stmt.where(RoomType.code == code)
    return stmt


def rooms_query(
    property_id: int | None = None, room_type_id: int | None = None, status: str | None = None
) -> Select[tuple[Room]]:
    """Rooms filtered by property, room type and housekeeping status, ordered by id."""
    stmt = select(Room).order_by(Room.id)
    if property_id is not None:
        stmt = stmt.where(Room.property_id == property_id)
    if room_type_id is not None:
        stmt = stmt.where(Room.room_type_id == room_type_id)
    if status is not None:
        stmt = stmt.where(Room.status == status)
    return stmt


def rate_plans_query(
    property_id: int | None = None, room_type_id: int | None = None, code: str | None = None
) -> Select[tuple[RatePlan]]:
    """Rate plans filtered by property, room type and code, ordered by id."""
    stmt = select(RatePlan).order_by(RatePlan.id)
    if property_id is not None:
        stmt = stmt.where(RatePlan.property_id == property_id)
    if room_type_id is not None:
        stmt = stmt.where(RatePlan.room_type_id == room_type_id)
    if code is not None:
        stmt = stmt.where(RatePlan.code == code)
    return stmt
