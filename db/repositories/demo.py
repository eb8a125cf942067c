"""Reads about the demo hotel (the one `innsync up` seeds and aims at the simulators)."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from db.models import Channel, PartnerAccount, Property


class DemoChannel(NamedTuple):
    id: int
    channel_name: str
    endpoint: str | None


def _in_group(property_code: str) -> ColumnElement[bool]:
    """The property with that code and its group's ("<code>-0002", ...)."""
    return or_(Property.code == property_code, Property.code.like(f"{property_code}-%"))


def count_channels_outside(session: Session, property_code: str) -> int:
    """Channels not of the property with that code or its group (channels of no property
    included)."""
    stmt = (
        select(func.count())
        .select_from(Channel)
        .outerjoin(Property, Property.id == Channel.property_id)
        .where(or_(Property.id.is_(None), ~_in_group(property_code)))
    )
    return int(session.execute(stmt).scalar_one())


def channels_of_property(session: Session, property_code: str) -> list[DemoChannel]:
    """Id, partner and configured endpoint of the channels of the property with that code
    and of its group's properties."""
    stmt = (
        select(Channel.id, Channel.channel_name, Channel.config_public["endpoint"].astext)
        .join(Property, Property.id == Channel.property_id)
        .where(_in_group(property_code))
        .order_by(Channel.id)
    )
    return [DemoChannel(*row) for row in session.execute(stmt)]


def accounts_of_property(session: Session, property_code: str) -> list[DemoChannel]:
    """Id, partner and endpoint of the partner accounts the channels of the property with
    that code (and of its group's properties) use."""
    stmt = (
        select(PartnerAccount.id, PartnerAccount.channel_name,
               PartnerAccount.config_public["endpoint"].astext)
        .where(PartnerAccount.id.in_(
            select(Channel.account_id).join(Property, Property.id == Channel.property_id)
            .where(_in_group(property_code))))
        .order_by(PartnerAccount.id)
    )
    return [DemoChannel(*row) for row in session.execute(stmt)]
