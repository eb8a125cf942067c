"""Rate plans (one room type each): read for viewers, writes for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import StringConstraints

from api import audit
from api.crud import audit_write, get_or_404, repository_errors, require_ref
from api.deps import AdminDep, SessionDep, ViewerDep
from api.paging import LIST_DOCS, PageDep, page_of
from api.schemas import APIInput, APIModel
from api.scopes import scoped
from api.validators import Code, Currency, Id, Name
from db.models import Property, RatePlan, RoomType
from db.repositories.base import add_guarded, delete_guarded, paginate, update_guarded
from db.repositories.pms import rate_plans_query

router = APIRouter(prefix="/rate-plans", tags=["rate plans"])

MealPlan = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class RatePlanOut(APIModel):
    id: int
    property_id: int
    room_type_id: int
    code: str
    name: str
    currency: str
    meal_plan: str | None
    refundable: bool
    created_at: datetime
    updated_at: datetime


class RatePlanCreate(APIInput):
    room_type_id: Id
    code: Code
    name: Name
    currency: Currency | None = None  # default: the property's currency
    meal_plan: MealPlan | None = None
    refundable: bool = True


class RatePlanUpdate(APIInput):
    code: Code | None = None
    name: Name | None = None
    currency: Currency | None = None
    meal_plan: MealPlan | None = None
    refundable: bool | None = None


@router.get("", response_model=list[RatePlanOut], **LIST_DOCS)
def list_rate_plans(
    session: SessionDep,
    principal: ViewerDep,
    page: PageDep,
    property_id: Annotated[Id | None, Query(alias="propertyId")] = None,
    room_type_id: Annotated[Id | None, Query(alias="roomTypeId")] = None,
    code: Annotated[str | None, Query()] = None,
) -> list[RatePlanOut]:
    stmt = scoped(rate_plans_query(property_id, room_type_id, code), RatePlan.property_id,
                  principal, property_id)
    rows, total = paginate(session, stmt, page.limit, page.offset)
    return page_of(RatePlanOut, rows, total, page)


@router.get("/{rate_plan_id}", response_model=RatePlanOut)
def get_rate_plan(rate_plan_id: Id, session: SessionDep, _: ViewerDep) -> RatePlanOut:
    return RatePlanOut.model_validate(get_or_404(session, RatePlan, rate_plan_id, "rate plan"))


@router.post("", response_model=RatePlanOut, status_code=status.HTTP_201_CREATED)
def create_rate_plan(
    body: RatePlanCreate, session: SessionDep, principal: AdminDep
) -> RatePlanOut:
    room_type = require_ref(session, RoomType, body.room_type_id, "room type")
    principal.require_property(room_type.property_id, f"room type {room_type.id}")
    values = body.model_dump()
    if values["currency"] is None:
        values["currency"] = get_or_404(session, Property, room_type.property_id, "property").currency
    row = RatePlan(property_id=room_type.property_id, **values)
    with repository_errors():
        add_guarded(session, row, f"rate plan {body.code!r} for this room type")
    audit_write(session, principal, "create", "rate_plan", row, None)
    return RatePlanOut.model_validate(row)


@router.patch("/{rate_plan_id}", response_model=RatePlanOut)
def update_rate_plan(
    rate_plan_id: Id, body: RatePlanUpdate, session: SessionDep, principal: AdminDep
) -> RatePlanOut:
    row = get_or_404(session, RatePlan, rate_plan_id, "rate plan")
    before = audit.snapshot(row)
    with repository_errors():
        update_guarded(session, row, body.model_dump(exclude_unset=True), "rate plan")
    audit_write(session, principal, "update", "rate_plan", row, before)
    return RatePlanOut.model_validate(row)


@router.delete("/{rate_plan_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rate_plan(rate_plan_id: Id, session: SessionDep, principal: AdminDep) -> None:
    """Delete a rate plan with its rate calendar and channel mappings."""
    row = get_or_404(session, RatePlan, rate_plan_id, "rate plan")
    before = audit.snapshot(row)
    with repository_errors():
        delete_guarded(session, row, f"rate plan {rate_plan_id}")
    audit_write(session, principal, "delete", "rate_plan", row, before)
