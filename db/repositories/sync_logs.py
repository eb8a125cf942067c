"""channel_sync_logs rows: one per flow run and channel operation."""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.orm import Session

MAX_ERRORS_KEPT = 200
#: Final statuses the reaper sets on a row whose run ended without closing it.
REAPED_STATUSES = ("crashed", "failed")


class RunningRow(BaseModel):
    """A row still marked running, with what tells whether its run is alive."""

    id: int
    operation: str
    flow_run_id: UUID | None
    host: str | None
    pid: int | None
    started_at: datetime
    #: The database's clock when read (ages are measured on one clock).
    now: datetime


def start_log(
    session: Session, channel_id: int | None, operation: str, flow_run_id: UUID | None
) -> int:
    """Open a 'running' log row owned by this process (host, pid); returns its id."""
    log_id: int = session.execute(
        text(
            "INSERT INTO channel_sync_logs (channel_id, operation, status, flow_run_id, host, pid) "
            "VALUES (:c, :op, 'running', :fr, :host, :pid) RETURNING id"
        ),
        {"c": channel_id, "op": operation, "fr": flow_run_id, "host": socket.gethostname(),
         "pid": os.getpid()},
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


def last_success_started(session: Session, channel_id: int, operation: str) -> datetime | None:
    """When the channel's latest fully successful `operation` run started (None: never).

    A run is `success` only when every page was stored and acknowledged, so everything the
    partner had changed before that instant is in (the incremental pull window starts here).
    """
    started: datetime | None = session.execute(
        text(
            "SELECT started_at FROM channel_sync_logs WHERE channel_id = :c "
            "AND operation = :op AND status = 'success' ORDER BY started_at DESC LIMIT 1"
        ),
        {"c": channel_id, "op": operation},
    ).scalar_one_or_none()
    return started


def running_logs(session: Session) -> list[RunningRow]:
    """Every sync log still marked running, oldest first."""
    rows = session.execute(
        text("SELECT id, operation, flow_run_id, host, pid, started_at, now() AS now "
             "FROM channel_sync_logs WHERE status = 'running' ORDER BY started_at, id")
    ).mappings().all()
    return [RunningRow.model_validate(dict(r)) for r in rows]


def close_unfinished(session: Session, log_id: int, status: str, reason: str) -> bool:
    """A running row whose run ended without closing it -> `status` with the reason.

    Only a row still running changes (a run finishing at the same moment wins); True if it did.
    """
    if status not in REAPED_STATUSES:
        raise ValueError(f"status must be one of {REAPED_STATUSES}")
    changed = session.execute(
        text("UPDATE channel_sync_logs SET status = :st, finished_at = now(), "
             "error_messages = error_messages || CAST(:e AS jsonb) "
             "WHERE id = :id AND status = 'running' RETURNING id"),
        {"id": log_id, "st": status, "e": json.dumps([reason[:1000]])},
    ).first()
    return changed is not None


def close_unfinished_of_flow_run(
    session: Session, flow_run_id: UUID, status: str, reason: str, channel_id: int | None = None
) -> int:
    """Every row of one flow run still running (of one channel only, with `channel_id`: a
    batch's channel that timed out) -> `status` (a timed-out or failed run)."""
    if status not in REAPED_STATUSES:
        raise ValueError(f"status must be one of {REAPED_STATUSES}")
    changed = session.execute(
        text("UPDATE channel_sync_logs SET status = :st, finished_at = now(), "
             "error_messages = error_messages || CAST(:e AS jsonb) "
             "WHERE flow_run_id = :fr AND status = 'running' "
             "AND (CAST(:c AS bigint) IS NULL OR channel_id = :c) RETURNING id"),
        {"fr": flow_run_id, "st": status, "e": json.dumps([reason[:1000]]), "c": channel_id},
    ).all()
    return len(changed)
