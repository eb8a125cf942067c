"""API key management (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, status
from pydantic import Field
from sqlalchemy import func, select

from api import audit
from api.auth import create_api_key
from api.crud import repository_errors
from api.deps import AdminDep, SessionDep
from api.errors import NotFound
from api.paging import LIST_DOCS, PageDep
from api.schemas import APIInput, APIModel
from api.validators import Id
from db.models import ApiKey
from db.repositories.api_keys import scopes_of

router = APIRouter(prefix="/api-keys", tags=["api keys"])


class ApiKeyOut(APIModel):
    id: int
    name: str
    role: str
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    property_ids: list[int] | None = Field(
        default=None, description="the properties the key may act on; null: every property"
    )


class ApiKeyCreate(APIInput):
    name: str
    role: Literal["viewer", "operator", "admin"]
    property_ids: list[Id] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="scope the key to these properties (403 outside them); omit for a key "
        "on every property",
    )


class ApiKeyCreated(ApiKeyOut):
    key: str


@router.get("", response_model=list[ApiKeyOut], **LIST_DOCS)
def list_keys(session: SessionDep, _: AdminDep, page: PageDep) -> list[ApiKeyOut]:
    total = session.scalar(select(func.count()).select_from(ApiKey)) or 0
    rows = session.scalars(
        select(ApiKey).order_by(ApiKey.id).limit(page.limit).offset(page.offset)
    ).all()
    scopes = scopes_of(session, [r.id for r in rows])
    return page.answer([_out(r, scopes.get(r.id)) for r in rows], total)


def _out(row: ApiKey, scope: list[int] | None) -> ApiKeyOut:
    return ApiKeyOut.model_validate(
        {**ApiKeyOut.model_validate(row).model_dump(), "property_ids": scope}
    )


@router.post("", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
def create_key(body: ApiKeyCreate, session: SessionDep, principal: AdminDep) -> ApiKeyCreated:
    """Create a key. The plaintext `key` is in this answer only; it is never stored."""
    with repository_errors():
        row, plaintext = create_api_key(session, body.name, body.role, body.property_ids)
    scope = scopes_of(session, [row.id]).get(row.id)
    audit.record(session, principal.actor, "create", "api_key", row.id, None,
                 {**audit.snapshot(row), "property_ids": scope})
    return ApiKeyCreated.model_validate({**_out(row, scope).model_dump(), "key": plaintext})


@router.delete("/{key_id}", response_model=ApiKeyOut)
def revoke_key(key_id: Id, session: SessionDep, principal: AdminDep) -> ApiKeyOut:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"API key {key_id} not found")
    before = audit.snapshot(row)
    row.revoked_at = session.scalar(select(func.now()))
    session.flush()
    audit.record(session, principal.actor, "revoke", "api_key", row.id, before, audit.snapshot(row))
    return _out(row, scopes_of(session, [row.id]).get(row.id))
