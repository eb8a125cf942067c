"""Channel health from channel_sync_logs: per channel and operation, what an alert needs.

Success is a run that stored or pushed something (`success`, `partial`) or had nothing to do
(`not_applicable`); a failure is `failed` or `crashed` (the reaper's verdict on a dead run).
Consecutive failures count the failures since the last success. Every channel has a
`sync_bookings` line even before its first pull (the every-minute pull is expected of all).
A channel's error rate is *high* when, over the last hour, at least ERROR_RATE_MIN_RUNS pulls
finished and INNSYNC_ERROR_RATE_ALERT of them (10 %: Expedia asks connectivity partners to act on a 10 %
booking-retrieval error rate) failed, even while the others keep it from going stale.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.orm import Session

SUCCESS_STATUSES = ("success", "partial", "not_applicable")
FAILURE_STATUSES = ("failed", "crashed")
#: The operation every enabled channel runs on a schedule: its age decides staleness.
PULL_OPERATION = "sync_bookings"
#: Fewer finished pulls in the hour than this say nothing about an error rate.
ERROR_RATE_MIN_RUNS = 5


class OperationHealth(BaseModel):
    """One channel and operation."""

    channel_id: int
    channel: str
    partner: str
    enabled: bool
    operation: str
    last_attempt_at: datetime | None
    last_status: str | None
    last_success_at: datetime | None
    #: Seconds since the last success (since the channel was created when there was none).
    success_age_seconds: float
    consecutive_failures: int
    running: int
    last_error: str | None
    #: Runs finished in the last hour, and how many of them failed.
    runs_last_hour: int = 0
    failed_last_hour: int = 0

    @property
    def failed_share(self) -> float:
        return self.failed_last_hour / self.runs_last_hour if self.runs_last_hour else 0.0


def channel_health(session: Session, channel_id: int | None = None) -> list[OperationHealth]:
    """Health lines of every channel (or one), by channel id then operation."""
    rows = session.execute(
        text("""
            WITH ops AS (
                SELECT DISTINCT channel_id, operation FROM channel_sync_logs
                WHERE channel_id IS NOT NULL
                  AND (CAST(:cid AS bigint) IS NULL OR channel_id = :cid)
                UNION
                SELECT id, :pull FROM channels
                WHERE CAST(:cid AS bigint) IS NULL OR id = :cid
            )
            SELECT c.id AS channel_id, c.name AS channel, c.channel_name AS partner, c.enabled,
                   o.operation, s.last_attempt_at, last.status AS last_status,
                   s.last_success_at,
                   extract(epoch FROM now() - coalesce(s.last_success_at, c.created_at))
                       AS success_age_seconds,
                   coalesce(f.n, 0) AS consecutive_failures, coalesce(s.running, 0) AS running,
                   last.error AS last_error,
                   coalesce(h.runs, 0) AS runs_last_hour, coalesce(h.failed, 0) AS failed_last_hour
            FROM ops o
            JOIN channels c ON c.id = o.channel_id
            LEFT JOIN LATERAL (
                SELECT max(l.started_at) AS last_attempt_at,
                       max(coalesce(l.finished_at, l.started_at))
                           FILTER (WHERE l.status = ANY(:ok)) AS last_success_at,
                       max(l.started_at) FILTER (WHERE l.status = ANY(:ok)) AS last_success_started,
                       count(*) FILTER (WHERE l.status = 'running') AS running
                FROM channel_sync_logs l
                WHERE l.channel_id = o.channel_id AND l.operation = o.operation
            ) s ON true
            LEFT JOIN LATERAL (
                SELECT l.status, l.error_messages ->> -1 AS error
                FROM channel_sync_logs l
                WHERE l.channel_id = o.channel_id AND l.operation = o.operation
                  AND l.status <> 'running'
                ORDER BY l.started_at DESC, l.id DESC LIMIT 1
            ) last ON true
            LEFT JOIN LATERAL (
                SELECT count(*) AS n FROM channel_sync_logs l
                WHERE l.channel_id = o.channel_id AND l.operation = o.operation
                  AND l.status = ANY(:bad)
                  AND l.started_at > coalesce(s.last_success_started, '-infinity')
            ) f ON true
            LEFT JOIN LATERAL (
                SELECT count(*) AS runs, count(*) FILTER (WHERE l.status = ANY(:bad)) AS failed
                FROM channel_sync_logs l
                WHERE l.channel_id = o.channel_id AND l.operation = o.operation
                  AND l.status <> 'running' AND l.started_at > now() - interval '1 hour'
            ) h ON true
            ORDER BY c.id, o.operation
        """),
        {"cid": channel_id, "pull": PULL_OPERATION, "ok": list(SUCCESS_STATUSES),
         "bad": list(FAILURE_STATUSES)},
    ).mappings().all()
    return [OperationHealth.model_validate(dict(r)) for r in rows]


def stale_channels(
    lines: list[OperationHealth], stale_after_seconds: float
) -> list[OperationHealth]:
    """Enabled channels whose booking pull has not succeeded for `stale_after_seconds`."""
    return [
        h for h in lines
        if h.enabled and h.operation == PULL_OPERATION and h.success_age_seconds > stale_after_seconds
    ]


def high_error_rate(lines: list[OperationHealth], share: float) -> list[OperationHealth]:
    """Enabled channels whose booking pulls failed `share` of the time over the last hour
    (at least ERROR_RATE_MIN_RUNS finished)."""
    return [
        h for h in lines
        if h.enabled and h.operation == PULL_OPERATION and h.runs_last_hour >= ERROR_RATE_MIN_RUNS
        and h.failed_share >= share
    ]
