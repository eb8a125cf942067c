"""Channels (OTA connections): read for viewers with secrets masked, writes for admins.

Body: `{name, channelName, config, enabled}` as in the seed, `config` being ChannelConfig
`{apiKey, apiSecret, propertyId, endpoint, hotelId}` (its `propertyId` is the partner's id
for the hotel). The optional top-level `propertyId` links the channel to our PMS property.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import Field

from api import audit
from api.crud import audit_write, get_or_404, repository_errors, require_ref
from api.deps import AdminDep, SessionDep, ViewerDep
from api.errors import Unprocessable
from api.paging import LIST_DOCS, PageDep
from api.schemas import APIInput, APIModel
from api.scopes import scoped
from api.validators import BoundedText, Id
from channels.base import ChannelConfig, ChannelName
from db.models import Channel, PartnerAccount, Property
from db.repositories.accounts import ACCOUNT_FIELDS, account_fields_set
from db.repositories.base import delete_guarded, paginate, update_guarded
from db.repositories.channels import channels_query, create_channel, update_channel_config

router = APIRouter(prefix="/channels", tags=["channels"])

ChannelLabel = Annotated[str, BoundedText(min_length=1, max_length=100)]


class MaskedConfig(APIModel):
    """The config as the API shows it: secrets masked (`****` + last 4 at most)."""

    api_key: str | None = None
    api_secret: str | None = None
    property_id: str | None = None
    endpoint: str | None = None
    hotel_id: str | None = None
    webhook_secret: str | None = None

    @classmethod
    def of_public(cls, public: dict[str, Any]) -> MaskedConfig:
        """From a stored public config (no decryption)."""
        masked = public.get("masked") or {}
        return cls(
            api_key=masked.get("apiKey"),
            api_secret=masked.get("apiSecret"),
            property_id=public.get("propertyId"),
            endpoint=public.get("endpoint"),
            hotel_id=public.get("hotelId"),
            webhook_secret=masked.get("webhookSecret"),
        )


class ChannelOut(APIModel):
    id: int
    name: str
    channel_name: str
    enabled: bool
    property_id: int | None
    #: The partner account whose credentials and endpoint this channel uses (None: its own).
    account_id: int | None = None
    config: MaskedConfig
    last_successful_sync: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Channel) -> ChannelOut:
        """Build from a row using only its public config (no decryption)."""
        return cls(
            id=row.id, name=row.name, channel_name=row.channel_name, enabled=row.enabled,
            property_id=row.property_id, account_id=row.account_id,
            config=MaskedConfig.of_public(row.config_public or {}),
            last_successful_sync=row.last_successful_sync or {},
            created_at=row.created_at, updated_at=row.updated_at,
        )


class ChannelCreate(APIInput):
    name: ChannelLabel
    channel_name: ChannelName
    config: ChannelConfig = Field(default_factory=ChannelConfig)
    enabled: bool = True
    property_id: Id | None = None
    #: A partner account of the same partner: its credentials and endpoint apply, `config`
    #: then carries the account's hotel id for this property (`hotelId`), no credentials.
    account_id: Id | None = None


class ChannelUpdate(APIInput):
    """Only the fields present change; inside `config` likewise (null clears a field)."""

    name: ChannelLabel | None = None
    config: ChannelConfig | None = None
    enabled: bool | None = None
    property_id: Id | None = None
    #: Attach to a partner account (its credentials replace the channel's) or detach (null).
    account_id: Id | None = None


def check_endpoint(config: ChannelConfig | None) -> None:
    endpoint = config.endpoint if config else None
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise Unprocessable("config.endpoint must be an http:// or https:// URL")


def _check_account(session: SessionDep, account_id: int, partner: ChannelName,
                   config: ChannelConfig | None) -> None:
    """422 unless the account exists, is of the channel's partner, and the channel's config
    sets none of the account's fields (credentials live in one place)."""
    account = session.get(PartnerAccount, account_id)
    if account is None:
        raise Unprocessable(f"partner account {account_id} not found")
    if account.channel_name != partner.value:
        raise Unprocessable(f"partner account {account_id} is a {account.channel_name} "
                            f"account, not {partner.value}")
    own = account_fields_set(config) if config is not None else []
    if own:
        raise Unprocessable(f"{', '.join(own)} belong to partner account {account_id}: "
                            "change them there")


@router.get("", response_model=list[ChannelOut], **LIST_DOCS)
def list_channels(
    session: SessionDep,
    principal: ViewerDep,
    page: PageDep,
    property_id: Annotated[Id | None, Query(alias="propertyId")] = None,
    channel_name: Annotated[ChannelName | None, Query(alias="channelName")] = None,
    enabled: Annotated[bool | None, Query()] = None,
) -> list[ChannelOut]:
    stmt = scoped(channels_query(property_id, channel_name, enabled), Channel.property_id,
                  principal, property_id)
    rows, total = paginate(session, stmt, page.limit, page.offset)
    return page.answer([ChannelOut.of(r) for r in rows], total)


@router.get("/{channel_id}", response_model=ChannelOut)
def get_channel(channel_id: Id, session: SessionDep, _: ViewerDep) -> ChannelOut:
    return ChannelOut.of(get_or_404(session, Channel, channel_id, "channel"))


@router.post("", response_model=ChannelOut, status_code=status.HTTP_201_CREATED)
def create(body: ChannelCreate, session: SessionDep, principal: AdminDep) -> ChannelOut:
    """Create a channel; its config is encrypted at rest and never returned unmasked."""
    check_endpoint(body.config)
    if body.property_id is not None:
        require_ref(session, Property, body.property_id, "property")
    principal.require_property(body.property_id, "a channel of no property"
                               if body.property_id is None else f"property {body.property_id}")
    if body.account_id is not None:
        _check_account(session, body.account_id, body.channel_name, body.config)
    with repository_errors():
        row = create_channel(
            session, name=body.name, channel_name=body.channel_name, config=body.config,
            enabled=body.enabled, property_id=body.property_id, account_id=body.account_id,
        )
    audit_write(session, principal, "create", "channel", row, None)
    return ChannelOut.of(row)


@router.patch("/{channel_id}", response_model=ChannelOut)
def update(
    channel_id: Id, body: ChannelUpdate, session: SessionDep, principal: AdminDep
) -> ChannelOut:
    row = get_or_404(session, Channel, channel_id, "channel")
    values = body.model_dump(exclude_unset=True, exclude={"config"})
    if values.get("name", "") is None or values.get("enabled", False) is None:
        raise Unprocessable("name and enabled cannot be null")
    if values.get("property_id") is not None:
        require_ref(session, Property, values["property_id"], "property")
    if "property_id" in values:
        principal.require_property(values["property_id"], "the channel's new property")
    check_endpoint(body.config)
    account_id = values.get("account_id", row.account_id)
    if account_id is not None:
        _check_account(session, account_id, ChannelName(row.channel_name), body.config)
    before = audit.snapshot(row)
    with repository_errors():
        update_guarded(session, row, values, f"channel {values.get('name', row.name)!r}")
        if body.config is not None:
            update_channel_config(session, channel_id, body.config)
        if values.get("account_id") is not None:  # the account's credentials replace its own
            update_channel_config(session, channel_id, dict.fromkeys(ACCOUNT_FIELDS))
    audit_write(session, principal, "update", "channel", row, before)
    return ChannelOut.of(row)


@router.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(channel_id: Id, session: SessionDep, principal: AdminDep) -> None:
    """Delete a channel and its mappings (409 once it has bookings: disable it instead)."""
    row = get_or_404(session, Channel, channel_id, "channel")
    before = audit.snapshot(row)
    with repository_errors():
        delete_guarded(session, row, f"channel {channel_id} (disable it instead)")
    audit_write(session, principal, "delete", "channel", row, before)
