"""Partner accounts (`partner_accounts`) and the reservations they return for hotels no
channel maps (`unroutable_reservations`).

An account holds the credentials and endpoint (ACCOUNT_FIELDS) of one partner login that
serves many properties; its channels are property connections, each with the account's
hotel id for one property. A channel's *effective* config is its own config with the
account's fields over it (`effective_config`): adapters never see the difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from pydantic import BaseModel
from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from channels.base import ChannelConfig
from db.models import Channel, ChannelBooking, PartnerAccount, UnroutableReservation
from db.repositories.base import add_guarded, update_guarded
from db.repositories.channels import config_to_dict, open_config, seal_config, set_changes

#: The config fields that belong to the account, not to a property connection.
ACCOUNT_FIELDS = ("apiKey", "apiSecret", "endpoint", "webhookSecret")


class AccountNotFoundError(LookupError):
    """No partner account with that id."""


def account_part(config: ChannelConfig) -> ChannelConfig:
    """Only the account's fields of a config."""
    plain = config_to_dict(config)
    return ChannelConfig.model_validate({k: plain.get(k) for k in ACCOUNT_FIELDS})


def account_fields_set(config: ChannelConfig) -> list[str]:
    """The account fields a (channel) config sets."""
    plain = config_to_dict(config)
    return [k for k in ACCOUNT_FIELDS if plain.get(k)]


def effective_config(channel_sealed: str, account_sealed: str | None) -> ChannelConfig:
    """A channel's config with its account's credentials and endpoint over it."""
    own = open_config(channel_sealed)
    if account_sealed is None:
        return own
    account = config_to_dict(open_config(account_sealed))
    merged = config_to_dict(own) | {k: account[k] for k in ACCOUNT_FIELDS if account.get(k)}
    return ChannelConfig.model_validate(merged)


class SealedConfigs(NamedTuple):
    channel_name: str
    channel: str
    account: str | None
    account_id: int | None


def sealed_configs(session: Session, channel_id: int) -> SealedConfigs | None:
    """A channel's encrypted config and its account's (None: no such channel)."""
    row = session.execute(
        select(Channel.channel_name, Channel.config_encrypted, PartnerAccount.config_encrypted,
               Channel.account_id)
        .outerjoin(PartnerAccount, PartnerAccount.id == Channel.account_id)
        .where(Channel.id == channel_id)
    ).first()
    return SealedConfigs(*row) if row is not None else None


def accounts_query(channel_name: str | None = None) -> Select[tuple[PartnerAccount]]:
    stmt = select(PartnerAccount).order_by(PartnerAccount.id)
    if channel_name is not None:
        stmt = stmt.where(PartnerAccount.channel_name == channel_name)
    return stmt


def create_account(session: Session, *, name: str, channel_name: str,
                   config: ChannelConfig) -> PartnerAccount:
    """Insert an account with its credentials encrypted (DuplicateError on a taken name)."""
    encrypted, public = seal_config(account_part(config))
    row = PartnerAccount(name=name, channel_name=str(channel_name),
                         config_encrypted=encrypted, config_public=public)
    return add_guarded(session, row, f"partner account {name!r}")


def get_account(session: Session, account_id: int) -> PartnerAccount:
    row = session.get(PartnerAccount, account_id)
    if row is None:
        raise AccountNotFoundError(f"partner account {account_id} not found")
    return row


def update_account_config(session: Session, account_id: int,
                          changes: Mapping[str, Any] | ChannelConfig) -> PartnerAccount:
    """Merge account fields into the account's config: a mapping of camelCase names (None
    clears one), or the fields a ChannelConfig sets."""
    if isinstance(changes, ChannelConfig):
        changes = set_changes(changes)
    row = get_account(session, account_id)
    current = config_to_dict(open_config(row.config_encrypted))
    merged = ChannelConfig.model_validate(
        {**current, **{k: v for k, v in changes.items() if k in ACCOUNT_FIELDS}})
    encrypted, public = seal_config(account_part(merged))
    return update_guarded(session, row, {"config_encrypted": encrypted, "config_public": public},
                          "partner account")


class Connection(NamedTuple):
    """A property connection of an account: the channel and the account's hotel id."""

    channel_id: int
    hotel_code: str
    enabled: bool


def account_connections(session: Session, account_id: int) -> list[Connection]:
    """Every channel of the account with the hotel id it maps (config_public's hotelId,
    else its propertyId), by channel id."""
    rows = session.execute(
        select(Channel.id, Channel.config_public, Channel.enabled)
        .where(Channel.account_id == account_id).order_by(Channel.id)
    ).all()
    out = []
    for cid, public, enabled in rows:
        code = (public or {}).get("hotelId") or (public or {}).get("propertyId")
        if code:
            out.append(Connection(cid, str(code), bool(enabled)))
    return out


def accounts_of_channels(session: Session, channel_ids: Sequence[int],
                         partners: Iterable[str] | None = None) -> dict[int, int]:
    """channel id -> account id of those channels that belong to an account (of one of
    `partners`, when given)."""
    if not channel_ids:
        return {}
    stmt = select(Channel.id, Channel.account_id).where(
        Channel.id.in_(list(channel_ids)), Channel.account_id.is_not(None))
    if partners is not None:
        stmt = stmt.where(Channel.channel_name.in_(list(partners)))
    rows = session.execute(stmt).all()
    return {cid: int(aid) for cid, aid in rows}


def channels_of_bookings(session: Session, channel_ids: Sequence[int],
                         external_ids: Sequence[str]) -> dict[str, int]:
    """booking id -> the channel among `channel_ids` that stored it (a modification or
    cancellation that names no hotel goes where its booking is)."""
    if not channel_ids or not external_ids:
        return {}
    rows = session.execute(
        select(ChannelBooking.external_booking_id, ChannelBooking.channel_id).where(
            ChannelBooking.channel_id.in_(list(channel_ids)),
            ChannelBooking.external_booking_id.in_(list(set(external_ids))))
    ).all()
    return {ext: int(cid) for ext, cid in rows}


class Unroutable(NamedTuple):
    hotel_code: str
    external_id: str
    event: str
    check_in: date | None
    check_out: date | None


def record_unroutable(session: Session, account_id: int, items: Iterable[Unroutable]) -> int:
    """Store (or count again) reservations for hotel codes the account maps to no channel;
    one statement. Returns how many rows were written."""
    rows = [i._asdict() | {"a": account_id} for i in items]
    if not rows:
        return 0
    session.execute(
        text(
            "INSERT INTO unroutable_reservations AS u (account_id, hotel_code, external_id, "
            "event, check_in, check_out) VALUES (:a, :hotel_code, :external_id, :event, "
            ":check_in, :check_out) ON CONFLICT (account_id, hotel_code, external_id) DO UPDATE "
            "SET event = EXCLUDED.event, check_in = COALESCE(EXCLUDED.check_in, u.check_in), "
            "check_out = COALESCE(EXCLUDED.check_out, u.check_out), last_seen_at = now(), "
            "times_seen = u.times_seen + 1"
        ),
        rows,
    )
    return len(rows)


class UnroutableSummary(BaseModel):
    """An account's reservations for hotel codes no channel maps, seen lately (health)."""

    account_id: int
    account: str
    partner: str
    reservations: int
    last_seen_at: datetime


def recent_unroutable(session: Session, hours: float = 24.0) -> list[UnroutableSummary]:
    """Per account, the unroutable reservations seen in the last `hours` (the partner has
    not had them acknowledged, so it falls back to e-mail: an operator must map the hotel
    or book them by hand)."""
    rows = session.execute(text(
        "SELECT a.id, a.name, a.channel_name, count(*) AS n, max(u.last_seen_at) AS seen "
        "FROM unroutable_reservations u JOIN partner_accounts a ON a.id = u.account_id "
        "WHERE u.last_seen_at > now() - make_interval(secs => :s) "
        "GROUP BY a.id, a.name, a.channel_name ORDER BY a.id"), {"s": hours * 3600}).all()
    return [UnroutableSummary(account_id=r.id, account=r.name, partner=r.channel_name,
                              reservations=r.n, last_seen_at=r.seen) for r in rows]


def unroutable_query(account_id: int) -> Select[tuple[UnroutableReservation]]:
    """An account's unroutable reservations, most recently seen first."""
    return (
        select(UnroutableReservation)
        .where(UnroutableReservation.account_id == account_id)
        .order_by(UnroutableReservation.last_seen_at.desc(), UnroutableReservation.id.desc())
    )
