"""Reservations: filtered list and read (viewer), simple create/update (operator).
Writes keep inventory `sold` in step (see db.repositories.reservations)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from fastapi import APIRouter, Query, status
from pydantic import Field, StringConstraints, model_validator

from api import audit
from api.crud import audit_write, get_or_404, repository_errors, require_ref
from api.deps import OperatorDep, SessionDep, ViewerDep
from api.errors import Unprocessable
from api.paging import LIST_DOCS, PageDep, page_of
from api.schemas import APIInput, APIModel
from api.scopes import scoped
from api.validators import Currency, Day, Id, NonNegative
from db.models import Guest, Property, RatePlan, Reservation, RoomType
from db.repositories.base import paginate
from db.repositories.queue import enqueue_reservation
from db.repositories.reservations import (
    create_reservation,
    reservations_query,
    update_reservation,
)

router = APIRouter(prefix="/reservations", tags=["reservations"])

Status = Literal["pending", "confirmed", "cancelled", "no_show", "checked_in", "checked_out"]
Source = Literal["booking.com", "agoda", "expedia", "airbnb", "direct"]
Money = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
ConfirmationCode = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ReservationOut(APIModel):
    id: int
    property_id: int
    guest_id: int
    room_type_id: int | None
    room_id: int | None
    rate_plan_id: int | None
    confirmation_code: str | None
    check_in: date
    check_out: date
    adults: int
    children: int
    amount: Decimal
    currency: str
    status: str
    source_channel: str | None
    overbooked: bool
    notes: str | None
    created_at: datetime
    updated_at: datetime


class ReservationCreate(APIInput):
    property_id: Id
    guest_id: Id
    room_type_id: Id
    rate_plan_id: Id | None = None
    confirmation_code: ConfirmationCode | None = None
    check_in: Day
    check_out: Day
    adults: NonNegative = 1
    children: NonNegative = 0
    amount: Money
    currency: Currency | None = None  # default: the property's currency
    status: Status = "confirmed"
    source_channel: Source | None = None
    notes: str | None = None

    @model_validator(mode="after")
    def _stay(self) -> Self:
        if self.check_out <= self.check_in:
            raise ValueError("checkOut must be after checkIn")
        return self


class ReservationUpdate(APIInput):
    check_in: Day | None = None
    check_out: Day | None = None
    adults: NonNegative | None = None
    children: NonNegative | None = None
    amount: Money | None = None
    status: Status | None = None
    notes: str | None = None


@router.get("", response_model=list[ReservationOut], **LIST_DOCS)
def list_reservations(
    session: SessionDep,
    principal: ViewerDep,
    page: PageDep,
    property_id: Annotated[Id | None, Query(alias="propertyId")] = None,
    res_status: Annotated[Status | None, Query(alias="status")] = None,
    channel: Annotated[str | None, Query(description="source channel")] = None,
    guest_id: Annotated[Id | None, Query(alias="guestId")] = None,
    room_type_id: Annotated[Id | None, Query(alias="roomTypeId")] = None,
    check_in_from: Annotated[Day | None, Query(alias="checkInFrom")] = None,
    check_in_to: Annotated[Day | None, Query(alias="checkInTo")] = None,
    staying_on: Annotated[Day | None, Query(alias="stayingOn")] = None,
) -> list[ReservationOut]:
    stmt = reservations_query(
        property_id=property_id, status=res_status, source_channel=channel,
        guest_id=guest_id, room_type_id=room_type_id, check_in_from=check_in_from,
        check_in_to=check_in_to, staying_on=staying_on,
    )
    stmt = scoped(stmt, Reservation.property_id, principal, property_id)
    rows, total = paginate(session, stmt, page.limit, page.offset)
    return page_of(ReservationOut, rows, total, page)


@router.get("/{reservation_id}", response_model=ReservationOut)
def get_reservation(reservation_id: Id, session: SessionDep, _: ViewerDep) -> ReservationOut:
    return ReservationOut.model_validate(
        get_or_404(session, Reservation, reservation_id, "reservation")
    )


@router.post("", response_model=ReservationOut, status_code=status.HTTP_201_CREATED)
def create(body: ReservationCreate, session: SessionDep, principal: OperatorDep) -> ReservationOut:
    prop = require_ref(session, Property, body.property_id, "property")
    principal.require_property(prop.id, f"property {prop.id}")
    require_ref(session, Guest, body.guest_id, "guest")
    room_type = require_ref(session, RoomType, body.room_type_id, "room type")
    if room_type.property_id != prop.id:
        raise Unprocessable("the room type belongs to another property")
    if body.rate_plan_id is not None:
        plan = require_ref(session, RatePlan, body.rate_plan_id, "rate plan")
        if plan.room_type_id != room_type.id:
            raise Unprocessable("the rate plan belongs to another room type")
    values = body.model_dump()
    values["currency"] = values["currency"] or prop.currency
    if values["source_channel"] == "direct":
        values["source_channel"] = None
    with repository_errors():
        row = create_reservation(session, Reservation(**values))
    enqueue_reservation(session, row)
    audit_write(session, principal, "create", "reservation", row, None)
    return ReservationOut.model_validate(row)


@router.patch("/{reservation_id}", response_model=ReservationOut)
def update(
    reservation_id: Id, body: ReservationUpdate, session: SessionDep, principal: OperatorDep
) -> ReservationOut:
    row = get_or_404(session, Reservation, reservation_id, "reservation")
    values = body.model_dump(exclude_unset=True)
    nulls = [k for k, v in values.items() if v is None and k != "notes"]
    if nulls:
        raise Unprocessable(f"cannot be null: {', '.join(nulls)}")
    if values.get("check_out", row.check_out) <= values.get("check_in", row.check_in):
        raise Unprocessable("checkOut must be after checkIn")
    before = audit.snapshot(row)
    with repository_errors():
        update_reservation(session, row, values)
    enqueue_reservation(session, row, before)
    audit_write(session, principal, "update", "reservation", row, before)
    return ReservationOut.model_validate(row)
