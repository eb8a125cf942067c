"""What a sync call of the API pushes: PMS room types / rate plans by code or id, and their
partner codes on a channel."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ChannelRateMapping, ChannelRoomMapping, RatePlan, RoomType


class RateTarget(BaseModel):
    partner_room_code: str
    partner_rate_code: str
    currency: str


def codes_and_ids(
    session: Session,
    kind: type[RoomType] | type[RatePlan],
    property_id: int | None,
    room_type_ids: Sequence[int] | None = None,
) -> list[tuple[int, str]]:
    """(id, code) of the property's room types or rate plans (rate plans of these room
    types only, when given)."""
    stmt = select(kind.id, kind.code).where(kind.property_id == property_id)
    if room_type_ids and kind is RatePlan:
        stmt = stmt.where(RatePlan.room_type_id.in_(list(room_type_ids)))
    return [(i, c) for i, c in session.execute(stmt.order_by(kind.id)).all()]


def rate_plan_ids_of(
    session: Session, property_id: int | None, room_type_ids: Sequence[int]
) -> list[int]:
    """The property's rate plans of these room types."""
    return list(
        session.scalars(
            select(RatePlan.id)
            .where(RatePlan.property_id == property_id,
                   RatePlan.room_type_id.in_(list(room_type_ids)))
            .order_by(RatePlan.id)
        )
    )


def room_codes(session: Session, channel_id: int, room_type_ids: Sequence[int]) -> dict[int, str]:
    """Partner room codes of these room types on the channel (unmapped ones absent)."""
    rows = session.execute(
        select(ChannelRoomMapping.room_type_id, ChannelRoomMapping.partner_room_code).where(
            ChannelRoomMapping.channel_id == channel_id,
            ChannelRoomMapping.room_type_id.in_(list(room_type_ids)),
        )
    ).all()
    return {rt: code for rt, code in rows}


def rate_targets(session: Session, channel_id: int, rate_plan_ids: Sequence[int]) -> list[RateTarget]:
    """Partner room/rate codes and currency of these rate plans on the channel."""
    rows = session.execute(
        select(
            ChannelRateMapping.partner_room_code,
            ChannelRateMapping.partner_rate_code,
            RatePlan.currency,
        )
        .join(RatePlan, RatePlan.id == ChannelRateMapping.rate_plan_id)
        .where(
            ChannelRateMapping.channel_id == channel_id,
            ChannelRateMapping.rate_plan_id.in_(list(rate_plan_ids)),
        )
        .order_by(ChannelRateMapping.id)
    ).all()
    return [RateTarget(partner_room_code=a, partner_rate_code=b, currency=c) for a, b, c in rows]
