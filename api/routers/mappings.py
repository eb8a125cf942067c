"""Channel room-type and rate-plan mappings to partner codes: read (viewer), writes (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status

from api.crud import audit_write, get_or_404, repository_errors, require_ref
from api.deps import AdminDep, SessionDep, ViewerDep
from api.errors import NotFound, Unprocessable
from api.paging import LIST_DOCS, PageDep, page_of
from api.schemas import APIInput, APIModel
from api.validators import BoundedText, Id
from db.models import Channel, ChannelRateMapping, ChannelRoomMapping, RatePlan, RoomType
from db.repositories.base import add_guarded, delete_guarded, paginate
from db.repositories.channels import rate_mappings_query, room_mappings_query

router = APIRouter(prefix="/channels/{channel_id}", tags=["channel mappings"])

PartnerCode = Annotated[str, BoundedText(min_length=1, max_length=64)]


class RoomMappingOut(APIModel):
    id: int
    channel_id: int
    room_type_id: int
    partner_room_code: str
    created_at: datetime


class RoomMappingCreate(APIInput):
    room_type_id: Id
    partner_room_code: PartnerCode


class RateMappingOut(APIModel):
    id: int
    channel_id: int
    rate_plan_id: int
    partner_room_code: str
    partner_rate_code: str
    created_at: datetime


class RateMappingCreate(APIInput):
    rate_plan_id: Id
    partner_room_code: PartnerCode
    partner_rate_code: PartnerCode


def _same_property(channel: Channel, property_id: int) -> None:
    if channel.property_id is not None and channel.property_id != property_id:
        raise Unprocessable("that belongs to another property than the channel")


@router.get("/room-mappings", response_model=list[RoomMappingOut], **LIST_DOCS)
def list_room_mappings(
    channel_id: Id, session: SessionDep, _: ViewerDep, page: PageDep
) -> list[RoomMappingOut]:
    get_or_404(session, Channel, channel_id, "channel")
    rows, total = paginate(session, room_mappings_query(channel_id), page.limit, page.offset)
    return page_of(RoomMappingOut, rows, total, page)


@router.post("/room-mappings", response_model=RoomMappingOut,
             status_code=status.HTTP_201_CREATED)
def create_room_mapping(
    channel_id: Id, body: RoomMappingCreate, session: SessionDep, principal: AdminDep
) -> RoomMappingOut:
    channel = get_or_404(session, Channel, channel_id, "channel")
    room_type = require_ref(session, RoomType, body.room_type_id, "room type")
    _same_property(channel, room_type.property_id)
    row = ChannelRoomMapping(channel_id=channel_id, **body.model_dump())
    with repository_errors():
        add_guarded(session, row, "a mapping for this room type or partner room code")
    audit_write(session, principal, "create", "channel_room_mapping", row, None)
    return RoomMappingOut.model_validate(row)


@router.delete("/room-mappings/{mapping_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_room_mapping(
    channel_id: Id, mapping_id: Id, session: SessionDep, principal: AdminDep
) -> None:
    row = session.get(ChannelRoomMapping, mapping_id)
    if row is None or row.channel_id != channel_id:
        raise NotFound(f"room mapping {mapping_id} not found on channel {channel_id}")
    before = RoomMappingOut.model_validate(row).model_dump(mode="json")
    with repository_errors():
        delete_guarded(session, row, f"room mapping {mapping_id}")
    audit_write(session, principal, "delete", "channel_room_mapping", row, before)


@router.get("/rate-mappings", response_model=list[RateMappingOut], **LIST_DOCS)
def list_rate_mappings(
    channel_id: Id, session: SessionDep, _: ViewerDep, page: PageDep
) -> list[RateMappingOut]:
    get_or_404(session, Channel, channel_id, "channel")
    rows, total = paginate(session, rate_mappings_query(channel_id), page.limit, page.offset)
    return page_of(RateMappingOut, rows, total, page)


@router.post("/rate-mappings", response_model=RateMappingOut,
             status_code=status.HTTP_201_CREATED)
def create_rate_mapping(
    channel_id: Id, body: RateMappingCreate, session: SessionDep, principal: AdminDep
) -> RateMappingOut:
    channel = get_or_404(session, Channel, channel_id, "channel")
    plan = require_ref(session, RatePlan, body.rate_plan_id, "rate plan")
    _same_property(channel, plan.property_id)
    row = ChannelRateMapping(channel_id=channel_id, **body.model_dump())
    with repository_errors():
        add_guarded(session, row, "a mapping for this rate plan or partner room/rate pair")
    audit_write(session, principal, "create", "channel_rate_mapping", row, None)
    return RateMappingOut.model_validate(row)


@router.delete("/rate-mappings/{mapping_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rate_mapping(
    channel_id: Id, mapping_id: Id, session: SessionDep, principal: AdminDep
) -> None:
    row = session.get(ChannelRateMapping, mapping_id)
    if row is None or row.channel_id != channel_id:
        raise NotFound(f"rate mapping {mapping_id} not found on channel {channel_id}")
    before = RateMappingOut.model_validate(row).model_dump(mode="json")
    with repository_errors():
        delete_guarded(session, row, f"rate mapping {mapping_id}")
    audit_write(session, principal, "delete", "channel_rate_mapping", row, before)
