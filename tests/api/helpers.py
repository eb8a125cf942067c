"""Shared assertions and factories for API tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditLog, Guest, Property, RatePlan, RoomType


def assert_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the one error body with this status and code."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    return body["error"]


def audit_rows(session: Session, entity_type: str, action: str | None = None) -> list[AuditLog]:
    """Audit rows of an entity type (optionally one action), oldest first."""
    stmt = select(AuditLog).where(AuditLog.entity_type == entity_type).order_by(AuditLog.id)
    if action is not None:
        stmt = stmt.where(AuditLog.action == action)
    return list(session.scalars(stmt))


def make_property(session: Session, code: str = "HTL", **kw: Any) -> Property:
    row = Property(code=code, name=kw.pop("name", f"Hotel {code}"), **kw)
    session.add(row)
    session.flush()
    return row


def make_room_type(session: Session, prop: Property, code: str = "STD", **kw: Any) -> RoomType:
    row = RoomType(property_id=prop.id, code=code, name=kw.pop("name", f"Room {code}"), **kw)
    session.add(row)
    session.flush()
    return row


def make_rate_plan(session: Session, rt: RoomType, code: str = "BAR", **kw: Any) -> RatePlan:
    row = RatePlan(property_id=rt.property_id, room_type_id=rt.id, code=code,
                   name=kw.pop("name", f"Plan {code}"), **kw)
    session.add(row)
    session.flush()
    return row


def make_guest(session: Session, last_name: str = "Müller", **kw: Any) -> Guest:
    row = Guest(first_name=kw.pop("first_name", "Zoë"), last_name=last_name, **kw)
    session.add(row)
    session.flush()
    return row


D = date.fromisoformat
M = Decimal


def total_of(resp) -> int:  # type: ignore[no-untyped-def]
    """The X-Total-Count of a list answer (the body is the array itself)."""
    assert resp.status_code == 200, resp.text
    assert isinstance(resp.json(), list), resp.text
    return int(resp.headers["X-Total-Count"])
