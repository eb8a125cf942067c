"""channel_sync_logs rows: one per flow run and channel operation."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.orm import Session

MAX_ERRORS_KEPT = 200


def start_log(
    session: Session, channel_id: int | None, operation: str, flow_run_id: UUID | None
) -> int:
    """Open a 'running' log row; returns its id."""
    log_id: int = session.execute(
        text(
            "INSERT INTO channel_sync_logs (channel_id, operation, status, flow_run_id) "
            "VALUES (:c, :op, 'running', :fr) RETURNING id"
        ),
        {"c": channel_id, "op": operation, "fr": flow_run_id},
    ).scalar_one()
    return log_id


def finish_log(
    session: Session,
    log_id: int,
    *,
    processed: int,
    success: int,
    failed: int,
    errors: list[str],
    details: dict[str, Any] | None = None,
    status: str | None = None,
) -> str:
    """Close a log row: 'success', 'partial' (some failed) or 'failed' (nothing succeeded)."""
    import json

    if status is None:
        if failed == 0 and not errors:
            status = "success"
        elif success > 0:
            status = "partial"
        else:
            status = "failed"
    session.execute(
        text("""
            UPDATE channel_sync_logs SET status = :st, records_processed = :p,
                records_success = :s, records_failed = :f,
                error_messages = CAST(:e AS jsonb), details = CAST(:d AS jsonb),
                finished_at = now()
            WHERE id = :id
        """),
        {
            "id": log_id,
            "st": status,
            "p": processed,
            "s": success,
            "f": failed,
            "e": json.dumps(errors[:MAX_ERRORS_KEPT]),
            "d": json.dumps(details or {}, default=str),
        },
    )
    return status
