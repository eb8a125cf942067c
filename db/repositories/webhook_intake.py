"""What the webhook routes read and write: the channels a push may be for, and the
received event (idempotent on the partner's event key)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import Channel, WebhookEvent


def enabled_channels_of(session: Session, channel_name: str) -> list[Channel]:
    """The enabled channels of one partner, by id (their configs hold the webhook secret)."""
    return list(
        session.scalars(
            select(Channel)
            .where(Channel.channel_name == channel_name, Channel.enabled.is_(True))
            .order_by(Channel.id)
        )
    )


def record_event(
    session: Session, channel_id: int, event_key: str, external_booking_id: str
) -> int | None:
    """Insert a received event; its id, or None when the same key was already received."""
    stmt = (
        insert(WebhookEvent)
        .values(channel_id=channel_id, event_key=event_key[:200],
                external_booking_id=external_booking_id)
        .on_conflict_do_nothing(index_elements=["channel_id", "event_key"])
        .returning(WebhookEvent.id)
    )
    return session.execute(stmt).scalar()
