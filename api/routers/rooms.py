"""Physical rooms: read for viewers, writes for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import StringConstraints

from api import audit
from api.crud import audit_write, get_or_404, repository_errors, require_ref
from api.deps import AdminDep, SessionDep, ViewerDep
from api.errors import Unprocessable
from api.paging import LIST_DOCS, PageDep, page_of
from api.schemas import APIInput, APIModel
from api.scopes import scoped
from api.validators import BoundedText, Id, Int4
from db.models import Room, RoomType
from db.repositories.base import add_guarded, delete_guarded, paginate, update_guarded
from db.repositories.pms import rooms_query
from db.repositories.queue import enqueue_room

router = APIRouter(prefix="/rooms", tags=["rooms"])

RoomNumber = Annotated[str, BoundedText(min_length=1, max_length=16)]
RoomStatus = Annotated[str, StringConstraints(min_length=1, max_length=20)]


class RoomOut(APIModel):
    id: int
    property_id: int
    room_type_id: int
    number: str
    floor: int | None
    status: str
    created_at: datetime
    updated_at: datetime


class RoomCreate(APIInput):
    room_type_id: Id
    number: RoomNumber
    floor: Int4 | None = None
    status: RoomStatus = "clean"


class RoomUpdate(APIInput):
    room_type_id: Id | None = None
    number: RoomNumber | None = None
    floor: Int4 | None = None
    status: RoomStatus | None = None


@router.get("", response_model=list[RoomOut], **LIST_DOCS)
def list_rooms(
    session: SessionDep,
    principal: ViewerDep,
    page: PageDep,
    property_id: Annotated[Id | None, Query(alias="propertyId")] = None,
    room_type_id: Annotated[Id | None, Query(alias="roomTypeId")] = None,
    room_status: Annotated[str | None, Query(alias="status")] = None,
) -> list[RoomOut]:
    stmt = scoped(rooms_query(property_id, room_type_id, room_status), Room.property_id,
                  principal, property_id)
    rows, total = paginate(session, stmt, page.limit, page.offset)
    return page_of(RoomOut, rows, total, page)


@router.get("/{room_id}", response_model=RoomOut)
def get_room(room_id: Id, session: SessionDep, _: ViewerDep) -> RoomOut:
    return RoomOut.model_validate(get_or_404(session, Room, room_id, "room"))


@router.post("", response_model=RoomOut, status_code=status.HTTP_201_CREATED)
def create_room(body: RoomCreate, session: SessionDep, principal: AdminDep) -> RoomOut:
    room_type = require_ref(session, RoomType, body.room_type_id, "room type")
    principal.require_property(room_type.property_id, f"room type {room_type.id}")
    room = Room(property_id=room_type.property_id, **body.model_dump())
    with repository_errors():
        add_guarded(session, room, f"room {body.number!r} in this property")
    enqueue_room(session, room, "create")
    audit_write(session, principal, "create", "room", room, None)
    return RoomOut.model_validate(room)


@router.patch("/{room_id}", response_model=RoomOut)
def update_room(
    room_id: Id, body: RoomUpdate, session: SessionDep, principal: AdminDep
) -> RoomOut:
    row = get_or_404(session, Room, room_id, "room")
    values = body.model_dump(exclude_unset=True)
    if values.get("room_type_id") is not None:
        room_type = require_ref(session, RoomType, values["room_type_id"], "room type")
        if room_type.property_id != row.property_id:
            raise Unprocessable("a room cannot move to another property's room type")
    before = audit.snapshot(row)
    with repository_errors():
        update_guarded(session, row, values, "room")
    enqueue_room(session, row, "update", before)
    audit_write(session, principal, "update", "room", row, before)
    return RoomOut.model_validate(row)


@router.delete("/{room_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_room(room_id: Id, session: SessionDep, principal: AdminDep) -> None:
    row = get_or_404(session, Room, room_id, "room")
    before = audit.snapshot(row)
    with repository_errors():
        delete_guarded(session, row, f"room {room_id}")
    enqueue_room(session, row, "delete")
    audit_write(session, principal, "delete", "room", row, before)
