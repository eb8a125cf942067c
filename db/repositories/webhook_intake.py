"""What the webhook routes read and write: the channels a push may be for, and the
received event (idempotent on the partner's event key)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import Channel, PartnerAccount, WebhookEvent


def enabled_channels_of(session: Session, channel_name: str) -> list[tuple[Channel, str | None]]:
    """The enabled channels of one partner, by id, each with its partner account's sealed
    config (which holds the webhook secret of an account's channels; None: no account)."""
    return [
        (row, account)
        for row, account in session.execute(
            select(Channel, PartnerAccount.config_encrypted)
            .outerjoin(PartnerAccount, PartnerAccount.id == Channel.account_id)
            .where(Channel.channel_name == channel_name, Channel.enabled.is_(True))
            .order_by(Channel.id)
        ).tuples()
    ]


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
