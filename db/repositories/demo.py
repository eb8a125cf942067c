"""Reads about the demo hotel (the one `innsync up` seeds and aims at the simulators)."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Channel, Property


class DemoChannel(NamedTuple):
    id: int
    channel_name: str
    endpoint: str | None


def count_channels_outside(session: Session, property_code: str) -> int:
    """Channels not of the property with that code (channels of no property included)."""
    stmt = (
        select(func.count())
        .select_from(Channel)
        .outerjoin(Property, Property.id == Channel.property_id)
        .where(Property.code.is_distinct_from(property_code))
    )
    return int(session.execute(stmt).scalar_one())


def channels_of_property(session: Session, property_code: str) -> list[DemoChannel]:
    """Id, partner and configured endpoint of the channels of the property with that code."""
    stmt = (
        select(Channel.id, Channel.channel_name, Channel.config_public["endpoint"].astext)
        .join(Property, Property.id == Channel.property_id)
        .where(Property.code == property_code)
        .order_by(Channel.id)
    )
    return [DemoChannel(*row) for row in session.execute(stmt)]
