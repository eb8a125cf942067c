"""Guests: list/search and read (viewer), create/update (operator)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import StringConstraints

from api import audit
from api.crud import audit_write, get_or_404, repository_errors
from api.deps import OperatorDep, SessionDep, ViewerDep
from api.paging import LIST_DOCS, PageDep, page_of
from api.schemas import APIInput, APIModel
from api.validators import BoundedText, Id
from db.models import Guest
from db.repositories.base import add_guarded, paginate, update_guarded
from db.repositories.queue import enqueue
from db.repositories.reservations import guests_query
from db.repositories.scopes import guests_in_properties

router = APIRouter(prefix="/guests", tags=["guests"])

PersonName = Annotated[str, BoundedText(min_length=1, max_length=100)]
Email = Annotated[str, BoundedText(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
Phone = Annotated[str, BoundedText(max_length=50)]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class GuestOut(APIModel):
    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    country: str | None
    created_at: datetime
    updated_at: datetime


class GuestCreate(APIInput):
    first_name: PersonName
    last_name: PersonName
    email: Email | None = None
    phone: Phone | None = None
    country: Country | None = None


class GuestUpdate(APIInput):
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    email: Email | None = None
    phone: Phone | None = None
    country: Country | None = None


@router.get("", response_model=list[GuestOut], **LIST_DOCS)
def list_guests(
    session: SessionDep,
    principal: ViewerDep,
    page: PageDep,
    q: Annotated[str | None, Query(description="name or email fragment")] = None,
    email: Annotated[str | None, Query()] = None,
    country: Annotated[str | None, Query()] = None,
) -> list[GuestOut]:
    """Guests; a property-scoped key sees those with a reservation at its properties."""
    stmt = guests_query(q, email, country)
    if principal.property_ids is not None:
        stmt = stmt.where(Guest.id.in_(guests_in_properties(sorted(principal.property_ids))))
    rows, total = paginate(session, stmt, page.limit, page.offset)
    return page_of(GuestOut, rows, total, page)


@router.get("/{guest_id}", response_model=GuestOut)
def get_guest(guest_id: Id, session: SessionDep, _: ViewerDep) -> GuestOut:
    return GuestOut.model_validate(get_or_404(session, Guest, guest_id, "guest"))


@router.post("", response_model=GuestOut, status_code=status.HTTP_201_CREATED)
def create_guest(body: GuestCreate, session: SessionDep, principal: OperatorDep) -> GuestOut:
    with repository_errors():
        row = add_guarded(session, Guest(**body.model_dump()), "guest")
    audit_write(session, principal, "create", "guest", row, None)
    return GuestOut.model_validate(row)


@router.patch("/{guest_id}", response_model=GuestOut)
def update_guest(
    guest_id: Id, body: GuestUpdate, session: SessionDep, principal: OperatorDep
) -> GuestOut:
    row = get_or_404(session, Guest, guest_id, "guest")
    before = audit.snapshot(row)
    with repository_errors():
        update_guarded(session, row, body.model_dump(exclude_unset=True), "guest")
    enqueue(session, "guest", row.id, "update", {"fields": sorted(body.model_fields_set)})
    audit_write(session, principal, "update", "guest", row, before)
    return GuestOut.model_validate(row)
