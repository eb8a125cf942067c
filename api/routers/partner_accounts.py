"""Partner accounts: one partner login (credentials + endpoint) serving many properties,
whose channels are its property connections (issue 13). Install-wide: a property-scoped
API key may not read or change them. Secrets are masked as on channels.

Body: `{name, channelName, config}`, `config` holding only the account's fields
`{apiKey, apiSecret, endpoint, webhookSecret}`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import Field

from api import audit
from api.crud import audit_write, get_or_404, repository_errors
from api.deps import AdminDep, SessionDep, ViewerDep
from api.errors import Unprocessable
from api.paging import LIST_DOCS, PageDep
from api.routers.channels import ChannelLabel, MaskedConfig, check_endpoint
from api.schemas import APIInput, APIModel
from api.validators import Id
from channels.base import ChannelConfig, ChannelName
from db.models import PartnerAccount
from db.repositories.accounts import (
    ACCOUNT_FIELDS,
    accounts_query,
    create_account,
    unroutable_query,
    update_account_config,
)
from db.repositories.base import delete_guarded, paginate, update_guarded
from db.repositories.channels import given_fields

router = APIRouter(prefix="/partner-accounts", tags=["partner accounts"])


class AccountOut(APIModel):
    id: int
    name: str
    channel_name: str
    config: MaskedConfig
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: PartnerAccount) -> AccountOut:
        return cls(id=row.id, name=row.name, channel_name=row.channel_name,
                   config=MaskedConfig.of_public(row.config_public or {}),
                   created_at=row.created_at, updated_at=row.updated_at)


class AccountCreate(APIInput):
    name: ChannelLabel
    channel_name: ChannelName
    config: ChannelConfig = Field(default_factory=ChannelConfig)


class AccountUpdate(APIInput):
    """Only the fields present change; inside `config` likewise (null clears a field)."""

    name: ChannelLabel | None = None
    config: ChannelConfig | None = None


class UnroutableOut(APIModel):
    id: int
    hotel_code: str
    external_id: str
    event: str
    check_in: date | None
    check_out: date | None
    first_seen_at: datetime
    last_seen_at: datetime
    times_seen: int


def _only_account_fields(config: ChannelConfig | None) -> None:
    if config is None:
        return
    wrong = sorted(given_fields(config) - set(ACCOUNT_FIELDS))
    if wrong:
        raise Unprocessable(f"an account holds only {', '.join(ACCOUNT_FIELDS)}; "
                            f"{', '.join(wrong)} belong to its channels")
    check_endpoint(config)


@router.get("", response_model=list[AccountOut], **LIST_DOCS)
def list_accounts(
    session: SessionDep, principal: ViewerDep, page: PageDep,
    channel_name: Annotated[ChannelName | None, Query(alias="channelName")] = None,
) -> list[AccountOut]:
    principal.require_unscoped("partner accounts")
    rows, total = paginate(session, accounts_query(channel_name), page.limit, page.offset)
    return page.answer([AccountOut.of(r) for r in rows], total)


@router.get("/{account_id}", response_model=AccountOut)
def get_account(account_id: Id, session: SessionDep, principal: ViewerDep) -> AccountOut:
    principal.require_unscoped("partner accounts")
    return AccountOut.of(get_or_404(session, PartnerAccount, account_id, "partner account"))


@router.post("", response_model=AccountOut, status_code=status.HTTP_201_CREATED)
def create(body: AccountCreate, session: SessionDep, principal: AdminDep) -> AccountOut:
    """Create an account; its credentials are encrypted at rest, never returned unmasked."""
    principal.require_unscoped("partner accounts")
    _only_account_fields(body.config)
    with repository_errors():
        row = create_account(session, name=body.name, channel_name=body.channel_name,
                             config=body.config)
    audit_write(session, principal, "create", "partner_account", row, None)
    return AccountOut.of(row)


@router.patch("/{account_id}", response_model=AccountOut)
def update(account_id: Id, body: AccountUpdate, session: SessionDep,
           principal: AdminDep) -> AccountOut:
    """Rename or change credentials: every channel of the account uses them at once."""
    principal.require_unscoped("partner accounts")
    row = get_or_404(session, PartnerAccount, account_id, "partner account")
    _only_account_fields(body.config)
    before = audit.snapshot(row)
    if "name" in body.model_fields_set and body.name is None:
        raise Unprocessable("name cannot be null")
    with repository_errors():
        if body.name is not None:
            update_guarded(session, row, {"name": body.name}, f"partner account {body.name!r}")
        if body.config is not None:
            update_account_config(session, account_id, body.config)
    audit_write(session, principal, "update", "partner_account", row, before)
    return AccountOut.of(row)


@router.delete("/{account_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(account_id: Id, session: SessionDep, principal: AdminDep) -> None:
    """Delete an account (409 while channels still use it)."""
    principal.require_unscoped("partner accounts")
    row = get_or_404(session, PartnerAccount, account_id, "partner account")
    before = audit.snapshot(row)
    with repository_errors():
        delete_guarded(session, row, f"partner account {account_id} (its channels use it)")
    audit_write(session, principal, "delete", "partner_account", row, before)


@router.get("/{account_id}/unroutable", response_model=list[UnroutableOut], **LIST_DOCS)
def list_unroutable(account_id: Id, session: SessionDep, principal: ViewerDep,
                    page: PageDep) -> list[UnroutableOut]:
    """Reservations the account's pull returned for hotel codes no channel of the account
    maps: stored, not acknowledged (the partner falls back to e-mail). Connect the hotel
    (a channel with that hotelId) and the next pull takes them."""
    principal.require_unscoped("partner accounts")
    get_or_404(session, PartnerAccount, account_id, "partner account")
    rows, total = paginate(session, unroutable_query(account_id), page.limit, page.offset)
    return page.answer([UnroutableOut.model_validate(r, from_attributes=True) for r in rows],
                       total)
