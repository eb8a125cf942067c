"""Channels and their mappings: encrypted configs, sync bookkeeping, code maps for flows.

The whole ChannelConfig is stored encrypted (`config_encrypted`, AES-GCM under app_key());
`config_public` holds the non-secret fields plus masked hints of the secrets, so reads
never need the key. Only `load_channel_config` decrypts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import SecretStr
from sqlalchemy import Select, case, func, select, text
from sqlalchemy.orm import Session

from channels.base import ChannelConfig
from db.models import Channel, ChannelRateMapping, ChannelRoomMapping
from db.repositories.base import add_guarded, update_guarded
from innsync.crypto import app_key, decrypt_json, encrypt_json

PUBLIC_FIELDS = ("propertyId", "endpoint", "hotelId")
SECRET_FIELDS = ("apiKey", "apiSecret", "webhookSecret")
MASK = "****"


class ChannelNotFoundError(LookupError):
    """No channel with that id."""


class ChannelMappings(NamedTuple):
    """Code maps of one channel: room type id -> partner room code, and
    rate plan id -> (partner room code, partner rate code)."""

    rooms: dict[int, str]
    rates: dict[int, tuple[str, str]]


def mask_secret(value: str | None) -> str | None:
    """`****` plus the last 4 characters for secrets of 12+ characters, else `****`."""
    if not value:
        return None
    return MASK + value[-4:] if len(value) >= 12 else MASK


def config_to_dict(config: ChannelConfig) -> dict[str, Any]:
    """The config as a camelCase dict with the secrets revealed (for encryption only)."""
    out: dict[str, Any] = {}
    for name, value in config.model_dump(by_alias=True).items():
        out[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    return out


def public_config(plain: Mapping[str, Any]) -> dict[str, Any]:
    """The non-secret fields and masked secrets of a config dict."""
    out: dict[str, Any] = {k: plain.get(k) for k in PUBLIC_FIELDS}
    out["masked"] = {k: mask_secret(plain.get(k)) for k in SECRET_FIELDS}
    return out


def seal_config(config: ChannelConfig, key: bytes | None = None) -> tuple[str, dict[str, Any]]:
    """(ciphertext of the whole config, public part) for storing a config."""
    plain = config_to_dict(config)
    return encrypt_json(key or app_key(), plain), public_config(plain)


def open_config(token: str, key: bytes | None = None) -> ChannelConfig:
    """Decrypt a stored config (DecryptionError under a wrong key)."""
    return ChannelConfig.model_validate(decrypt_json(key or app_key(), token))


def channels_query(
    property_id: int | None = None, channel_name: str | None = None, enabled: bool | None = None
) -> Select[tuple[Channel]]:
    """Channels filtered by property, partner and enabled flag, by id."""
    stmt = select(Channel).order_by(Channel.id)
    if property_id is not None:
        stmt = stmt.where(Channel.property_id == property_id)
    if channel_name is not None:
        stmt = stmt.where(Channel.channel_name == channel_name)
    if enabled is not None:
        stmt = stmt.where(Channel.enabled.is_(enabled))
    return stmt


def create_channel(
    session: Session,
    *,
    name: str,
    channel_name: str,
    config: ChannelConfig,
    enabled: bool = True,
    property_id: int | None = None,
    account_id: int | None = None,
) -> Channel:
    """Insert a channel with its config encrypted (DuplicateError on a taken name; an
    account of another partner is refused by the database: InvalidDataError)."""
    encrypted, public = seal_config(config)
    channel = Channel(
        name=name,
        channel_name=str(channel_name),
        enabled=enabled,
        property_id=property_id,
        account_id=account_id,
        config_encrypted=encrypted,
        config_public=public,
    )
    return add_guarded(session, channel, f"channel {name!r}")


def _get(session: Session, channel_id: int) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise ChannelNotFoundError(f"channel {channel_id} not found")
    return channel


def load_channel_config(session: Session, channel_id: int) -> ChannelConfig:
    """The decrypted, effective config of a channel: its own with its partner account's
    credentials and endpoint over it (ChannelNotFoundError, DecryptionError)."""
    from db.repositories.accounts import effective_config, sealed_configs

    sealed = sealed_configs(session, channel_id)
    if sealed is None:
        raise ChannelNotFoundError(f"channel {channel_id} not found")
    return effective_config(sealed.channel, sealed.account)


def update_channel_config(
    session: Session, channel_id: int, changes: Mapping[str, Any] | ChannelConfig
) -> Channel:
    """Merge changes into a channel's config and re-encrypt it. A mapping uses the
    config's camelCase names (a None clears a field); a ChannelConfig replaces the fields
    it sets."""
    channel = _get(session, channel_id)
    current = config_to_dict(open_config(channel.config_encrypted))
    if isinstance(changes, ChannelConfig):
        changes = set_changes(changes)
    merged = ChannelConfig.model_validate({**current, **changes})
    encrypted, public = seal_config(merged)
    return update_guarded(
        session, channel, {"config_encrypted": encrypted, "config_public": public}, "channel"
    )


def given_fields(config: ChannelConfig) -> set[str]:
    """The camelCase names of the fields a config sets (null included)."""
    return {ChannelConfig.model_fields[n].alias or n for n in config.model_fields_set}


def set_changes(config: ChannelConfig) -> dict[str, Any]:
    """The fields a config sets, camelCase with secrets revealed (a None clears a field)."""
    given = given_fields(config)
    return {k: v for k, v in config_to_dict(config).items() if k in given}


def mark_sync_success(session: Session, channel_id: int, operation: str, at: datetime) -> None:
    """Record `at` as the last successful `operation` sync (never moves backwards)."""
    mark_syncs_success(session, [channel_id], operation, at)


def mark_syncs_success(
    session: Session, channel_ids: Sequence[int], operation: str, at: datetime
) -> None:
    """mark_sync_success for many channels in one statement."""
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    if not channel_ids:
        return
    session.execute(
        text(
            "UPDATE channels SET last_successful_sync = last_successful_sync "
            "|| jsonb_build_object(CAST(:op AS text), CAST(:iso AS text)), updated_at = now() "
            "WHERE id = ANY(CAST(:ids AS bigint[])) "
            "AND (last_successful_sync ->> CAST(:op AS text) IS NULL "
            "OR (last_successful_sync ->> CAST(:op AS text))::timestamptz < :at)"
        ),
        {"ids": list(channel_ids), "op": operation, "iso": at.isoformat(), "at": at},
    )


def get_mappings(session: Session, channel_id: int) -> ChannelMappings:
    """Room and rate code maps of a channel."""
    rooms = session.execute(
        select(ChannelRoomMapping.room_type_id, ChannelRoomMapping.partner_room_code).where(
            ChannelRoomMapping.channel_id == channel_id
        )
    ).all()
    rates = session.execute(
        select(
            ChannelRateMapping.rate_plan_id,
            ChannelRateMapping.partner_room_code,
            ChannelRateMapping.partner_rate_code,
        ).where(ChannelRateMapping.channel_id == channel_id)
    ).all()
    return ChannelMappings(
        rooms={rt: code for rt, code in rooms},
        rates={rp: (room, rate) for rp, room, rate in rates},
    )


def room_mappings_query(channel_id: int) -> Select[tuple[ChannelRoomMapping]]:
    """Room-type mappings of a channel, by id."""
    return (
        select(ChannelRoomMapping)
        .where(ChannelRoomMapping.channel_id == channel_id)
        .order_by(ChannelRoomMapping.id)
    )


def rate_mappings_query(channel_id: int) -> Select[tuple[ChannelRateMapping]]:
    """Rate-plan mappings of a channel, by id."""
    return (
        select(ChannelRateMapping)
        .where(ChannelRateMapping.channel_id == channel_id)
        .order_by(ChannelRateMapping.id)
    )


class ChannelFacts(NamedTuple):
    """Plain facts about a channel (safe to log: no secrets)."""

    id: int
    name: str
    channel_name: str
    enabled: bool
    property_id: int | None


def channel_facts(session: Session, channel_id: int) -> ChannelFacts:
    """Name, partner, enabled flag and property of a channel (ChannelNotFoundError)."""
    return channels_facts(session, [channel_id])[channel_id]


def channels_facts(session: Session, channel_ids: Sequence[int]) -> dict[int, ChannelFacts]:
    """channel_facts of many channels in one query, by id (ChannelNotFoundError naming the
    ids that are not channels)."""
    rows = session.execute(
        select(
            Channel.id, Channel.name, Channel.channel_name, Channel.enabled, Channel.property_id
        ).where(Channel.id.in_(list(channel_ids)))
    ).all()
    found = {row[0]: ChannelFacts(*row) for row in rows}
    missing = sorted(set(channel_ids) - found.keys())
    if missing:
        raise ChannelNotFoundError(f"channel {', '.join(map(str, missing))} not found")
    return found


def property_channels_facts(session: Session, property_id: int) -> dict[int, ChannelFacts]:
    """channel_facts of a property's enabled channels in one query, by id (in id order)."""
    rows = session.execute(
        select(
            Channel.id, Channel.name, Channel.channel_name, Channel.enabled, Channel.property_id
        ).where(Channel.enabled.is_(True), Channel.property_id == property_id)
        .order_by(Channel.id)
    ).all()
    return {row[0]: ChannelFacts(*row) for row in rows}


def enabled_channel_ids(session: Session, property_id: int | None = None) -> list[int]:
    """Ids of the enabled channels (of one property when given), by id."""
    stmt = select(Channel.id).where(Channel.enabled.is_(True)).order_by(Channel.id)
    if property_id is not None:
        stmt = stmt.where(Channel.property_id == property_id)
    return list(session.execute(stmt).scalars())


def pull_requests_per_poll(session: Session, room_wise: Sequence[str]) -> dict[str, int]:
    """partner -> partner requests one booking poll of all its enabled channels sends: one
    per channel, and for the `room_wise` partners (reservations listed per room, e.g. per
    Airbnb listing) one per distinct mapped partner room code (at least one per channel)."""
    rooms = (
        select(ChannelRoomMapping.channel_id,
               func.count(ChannelRoomMapping.partner_room_code.distinct()).label("rooms"))
        .group_by(ChannelRoomMapping.channel_id)
        .subquery()
    )
    per_channel = case(
        (Channel.channel_name.in_(list(room_wise)), func.greatest(1, func.coalesce(rooms.c.rooms, 0))),
        else_=1,
    )
    stmt = (
        select(Channel.channel_name, func.sum(per_channel))
        .outerjoin(rooms, rooms.c.channel_id == Channel.id)
        .where(Channel.enabled.is_(True))
        .group_by(Channel.channel_name)
    )
    return {partner: int(total) for partner, total in session.execute(stmt)}


def enabled_channels_of_partners(
    session: Session, channel_names: list[str] | None = None
) -> list[tuple[int, str, str]]:
    """(id, name, partner) of every enabled channel, optionally of some partners only."""
    stmt = (
        select(Channel.id, Channel.name, Channel.channel_name)
        .where(Channel.enabled.is_(True))
        .order_by(Channel.id)
    )
    if channel_names is not None:
        stmt = stmt.where(Channel.channel_name.in_(channel_names))
    return [(r.id, r.name, r.channel_name) for r in session.execute(stmt)]
