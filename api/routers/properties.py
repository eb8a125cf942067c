"""Properties (hotels): read for viewers, create/update/delete for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from api import audit
from api.crud import audit_write, get_or_404, repository_errors
from api.deps import AdminDep, SessionDep, ViewerDep
from api.paging import LIST_DOCS, PageDep, page_of
from api.schemas import APIInput, APIModel
from api.scopes import scoped
from api.validators import Code, Currency, Id, Name, TimeZone
from db.models import Property
from db.repositories.base import add_guarded, delete_guarded, paginate, update_guarded
from db.repositories.pms import properties_query

router = APIRouter(prefix="/properties", tags=["properties"])


class PropertyOut(APIModel):
    id: int
    code: str
    name: str
    timezone: str
    currency: str
    created_at: datetime
    updated_at: datetime


class PropertyCreate(APIInput):
    code: Code
    name: Name
    timezone: TimeZone = "UTC"
    currency: Currency = "EUR"


class PropertyUpdate(APIInput):
    name: Name | None = None
    timezone: TimeZone | None = None
    currency: Currency | None = None


@router.get("", response_model=list[PropertyOut], **LIST_DOCS)
def list_properties(
    session: SessionDep,
    principal: ViewerDep,
    page: PageDep,
    code: Annotated[str | None, Query()] = None,
) -> list[PropertyOut]:
    stmt = scoped(properties_query(code), Property.id, principal)
    rows, total = paginate(session, stmt, page.limit, page.offset)
    return page_of(PropertyOut, rows, total, page)


@router.get("/{property_id}", response_model=PropertyOut)
def get_property(property_id: Id, session: SessionDep, _: ViewerDep) -> PropertyOut:
    return PropertyOut.model_validate(get_or_404(session, Property, property_id, "property"))


@router.post("", response_model=PropertyOut, status_code=status.HTTP_201_CREATED)
def create_property(body: PropertyCreate, session: SessionDep, principal: AdminDep) -> PropertyOut:
    principal.require_unscoped("creating a property")
    with repository_errors():
        row = add_guarded(session, Property(**body.model_dump()), f"property {body.code!r}")
    audit_write(session, principal, "create", "property", row, None)
    return PropertyOut.model_validate(row)


@router.patch("/{property_id}", response_model=PropertyOut)
def update_property(
    property_id: Id, body: PropertyUpdate, session: SessionDep, principal: AdminDep
) -> PropertyOut:
    row = get_or_404(session, Property, property_id, "property")
    before = audit.snapshot(row)
    with repository_errors():
        update_guarded(session, row, body.model_dump(exclude_unset=True), "property")
    audit_write(session, principal, "update", "property", row, before)
    return PropertyOut.model_validate(row)


@router.delete("/{property_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_property(property_id: Id, session: SessionDep, principal: AdminDep) -> None:
    """Delete a property and its room types, rates and inventory (409 while reservations
    point at it)."""
    row = get_or_404(session, Property, property_id, "property")
    before = audit.snapshot(row)
    with repository_errors():
        delete_guarded(session, row, f"property {property_id}")
    audit_write(session, principal, "delete", "property", row, before)
