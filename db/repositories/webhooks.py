"""Webhook events: partner pushes received, and what became of them."""

from __future__ import annotations

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from db.models import WebhookEvent

MAX_ERROR_CHARS = 2000


def finish_event(session: Session, event_id: int, *, ok: bool, errors: list[str]) -> None:
    """Mark a received event processed (or failed, with the reasons)."""
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id)
        .values(
            status="processed" if ok else "failed",
            error="; ".join(errors)[:MAX_ERROR_CHARS] or None,
            processed_at=func.now(),
        )
    )
