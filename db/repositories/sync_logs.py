"""channel_sync_logs rows: one per flow run and channel operation."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
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
    return start_logs(session, [channel_id], operation, flow_run_id)[0]


def start_logs(
    session: Session, channel_ids: Sequence[int | None], operation: str,
    flow_run_id: UUID | None,
) -> list[int]:
    """start_log for many channels in one statement; the ids in the order of `channel_ids`
    (rows are inserted in that order, so their sequence ids ascend with it)."""
    ids: list[int] = sorted(session.execute(
        text(
            "INSERT INTO channel_sync_logs (channel_id, operation, status, flow_run_id, host, pid) "
            "SELECT t.c, :op, 'running', :fr, :host, :pid "
            "FROM unnest(CAST(:cs AS bigint[])) WITH ORDINALITY AS t(c, n) ORDER BY t.n "
            "RETURNING id"
        ),
        {"cs": list(channel_ids), "op": operation, "fr": flow_run_id,
         "host": socket.gethostname(), "pid": os.getpid()},
    ).scalars())
    return ids


class LogClose(NamedTuple):
    """What closes one log row (finish_logs)."""

    log_id: int
    processed: int
    success: int
    failed: int
    errors: list[str]
    details: dict[str, Any] | None = None
    #: Forced final status; None derives it from the counts (final_status).
    status: str | None = None


def final_status(failed: int, success: int, errors: list[str]) -> str:
    """'success', 'partial' (some failed) or 'failed' (nothing succeeded)."""
    if failed == 0 and not errors:
        return "success"
    return "partial" if success > 0 else "failed"


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
    return finish_logs(
        session, [LogClose(log_id, processed, success, failed, errors, details, status)])[0]


def finish_logs(session: Session, closes: Sequence[LogClose]) -> list[str]:
    """finish_log for many rows in one round trip; their statuses, in order."""
    statuses = [c.status or final_status(c.failed, c.success, c.errors) for c in closes]
    if not closes:
        return statuses
    session.execute(
        text("""
            UPDATE channel_sync_logs SET status = :st, records_processed = :p,
                records_success = :s, records_failed = :f,
                error_messages = CAST(:e AS jsonb), details = CAST(:d AS jsonb),
                finished_at = now()
            WHERE id = :id
        """),
        [
            {
                "id": c.log_id,
                "st": st,
                "p": c.processed,
                "s": c.success,
                "f": c.failed,
                "e": json.dumps(c.errors[:MAX_ERRORS_KEPT]),
                "d": json.dumps(c.details or {}, default=str),
            }
            for c, st in zip(closes, statuses, strict=True)
        ],
    )
    return statuses


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
