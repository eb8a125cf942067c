"""Every write through the API records an audit_logs row in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from db.models import AuditLog

REDACTED = "***"
SECRET_KEYS = {"config_encrypted", "key_hash", "apiSecret", "api_secret", "apiKey", "api_key",
               "webhookSecret", "webhook_secret"}


def snapshot(obj: Any) -> dict[str, Any]:
    """A JSON-able dict of an ORM object's columns, secrets redacted."""
    out: dict[str, Any] = {}
    for attr in inspect(obj).mapper.column_attrs:
        value = getattr(obj, attr.key)
        if attr.key in SECRET_KEYS:
            value = REDACTED
        elif value is not None and not isinstance(value, (str, int, float, bool, dict, list)):
            value = str(value)
        out[attr.key] = value
    return out


def record(
    session: Session,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=None if entity_id is None else str(entity_id),
            before=before,
            after=after,
        )
    )
