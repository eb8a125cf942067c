"""Room types of a property: read for viewers, writes for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from api import audit
from api.crud import audit_write, get_or_404, repository_errors, require_ref
from api.deps import AdminDep, SessionDep, ViewerDep
from api.paging import LIST_DOCS, PageDep, page_of
from api.schemas import APIInput, APIModel
from api.scopes import scoped
from api.validators import Code, Id, Name, NonNegative, Positive
from db.models import Property, RoomType
from db.repositories.base import add_guarded, delete_guarded, paginate, update_guarded
from db.repositories.pms import room_types_query
from db.repositories.queue import enqueue

router = APIRouter(prefix="/room-types", tags=["room types"])


class RoomTypeOut(APIModel):
    id: int
    property_id: int
    code: str
    name: str
    max_occupancy: int
    total_units: int
    created_at: datetime
    updated_at: datetime


class RoomTypeCreate(APIInput):
    property_id: Id
    code: Code
    name: Name
    max_occupancy: Positive = 2
    total_units: NonNegative = 0


class RoomTypeUpdate(APIInput):
    code: Code | None = None
    name: Name | None = None
    max_occupancy: Positive | None = None
    total_units: NonNegative | None = None


@router.get("", response_model=list[RoomTypeOut], **LIST_DOCS)
def list_room_types(
    session: SessionDep,
    principal: ViewerDep,
    page: PageDep,
    property_id: Annotated[Id | None, Query(alias="propertyId")] = None,
    code: Annotated[str | None, Query()] = None,
) -> list[RoomTypeOut]:
    stmt = scoped(room_types_query(property_id, code), RoomType.property_id, principal, property_id)
    rows, total = paginate(session, stmt, page.limit, page.offset)
    return page_of(RoomTypeOut, rows, total, page)


@router.get("/{room_type_id}", response_model=RoomTypeOut)
def get_room_type(room_type_id: Id, session: SessionDep, _: ViewerDep) -> RoomTypeOut:
    return RoomTypeOut.model_validate(get_or_404(session, RoomType, room_type_id, "room type"))


@router.post("", response_model=RoomTypeOut, status_code=status.HTTP_201_CREATED)
def create_room_type(
    body: RoomTypeCreate, session: SessionDep, principal: AdminDep
) -> RoomTypeOut:
    require_ref(session, Property, body.property_id, "property")
    principal.require_property(body.property_id, f"property {body.property_id}")
    with repository_errors():
        row = add_guarded(
            session, RoomType(**body.model_dump()), f"room type {body.code!r} in this property"
        )
    enqueue(session, "room_type", row.id, "create", {"property_id": row.property_id})
    audit_write(session, principal, "create", "room_type", row, None)
    return RoomTypeOut.model_validate(row)


@router.patch("/{room_type_id}", response_model=RoomTypeOut)
def update_room_type(
    room_type_id: Id, body: RoomTypeUpdate, session: SessionDep, principal: AdminDep
) -> RoomTypeOut:
    row = get_or_404(session, RoomType, room_type_id, "room type")
    before = audit.snapshot(row)
    with repository_errors():
        update_guarded(session, row, body.model_dump(exclude_unset=True), "room type")
    enqueue(session, "room_type", row.id, "update", {"property_id": row.property_id})
    audit_write(session, principal, "update", "room_type", row, before)
    return RoomTypeOut.model_validate(row)


@router.delete("/{room_type_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_room_type(room_type_id: Id, session: SessionDep, principal: AdminDep) -> None:
    """Delete a room type with its rooms, rate plans and calendars (409 while reservations
    point at it)."""
    row = get_or_404(session, RoomType, room_type_id, "room type")
    before = audit.snapshot(row)
    with repository_errors():
        delete_guarded(session, row, f"room type {room_type_id}")
    enqueue(session, "room_type", room_type_id, "delete", {"property_id": before["property_id"]})
    audit_write(session, principal, "delete", "room_type", row, before)
