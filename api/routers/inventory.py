"""Inventory calendar of a room type: read a date range (viewer), range updates (operator)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Self

from fastapi import APIRouter, Query
from pydantic import Field, model_validator

from api import audit
from api.crud import get_or_404, repository_errors
from api.deps import OperatorDep, SessionDep, ViewerDep
from api.paging import LIST_DOCS, PageDep, page_of
from api.ranges import RangeUpdate, check_range
from api.schemas import APIModel
from api.validators import Day, Id, Int4
from db.models import RoomType
from db.repositories.base import paginate
from db.repositories.calendar import inventory_query, upsert_inventory_range
from db.repositories.queue import enqueue_range

router = APIRouter(prefix="/room-types/{room_type_id}/inventory", tags=["inventory"])


class InventoryDay(APIModel):
    date: date
    total: int
    sold: int
    held: int
    stop_sell: bool
    updated_at: datetime


class InventoryRangeUpdate(RangeUpdate):
    total: Int4 | None = Field(default=None, ge=0)
    held: Int4 | None = Field(default=None, ge=0)
    stop_sell: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        if any(v is None for v in self.values().values()):
            raise ValueError("total, held and stopSell cannot be null")
        return self


class RangeResult(APIModel):
    room_type_id: int
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    days: int


@router.get("", response_model=list[InventoryDay], **LIST_DOCS)
def get_inventory(
    room_type_id: Id,
    session: SessionDep,
    _: ViewerDep,
    page: PageDep,
    start: Annotated[Day, Query(alias="from")],
    end: Annotated[Day, Query(alias="to")],
) -> list[InventoryDay]:
    """The stored inventory days of a room type in from..to (inclusive)."""
    get_or_404(session, RoomType, room_type_id, "room type")
    check_range(start, end)
    rows, total = paginate(session, inventory_query(room_type_id, start, end), page.limit,
                           page.offset)
    return page_of(InventoryDay, rows, total, page)


@router.put("", response_model=RangeResult)
def update_inventory(
    room_type_id: Id, body: InventoryRangeUpdate, session: SessionDep, principal: OperatorDep
) -> RangeResult:
    """Set total/held/stopSell on every day of the range (creating missing days)."""
    get_or_404(session, RoomType, room_type_id, "room type")
    with repository_errors():
        days = upsert_inventory_range(session, room_type_id, body.start, body.end,
                                      body.values(), body.weekdays)
    enqueue_range(session, "inventory", room_type_id, body.start, body.end)
    change = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    audit.record(session, principal.actor, "range_update", "inventory", room_type_id, None,
                 {**change, "days": days})
    return RangeResult(room_type_id=room_type_id, start=body.start, end=body.end, days=days)


# PATCH does the same range update (only the given fields change); its own operation id
# keeps the OpenAPI document valid.
router.add_api_route("", update_inventory, methods=["PATCH"], response_model=RangeResult,
                     operation_id="update_inventory_patch")
