"""Channel performance report: one query per metric group, joined in Python per channel.

Window: reservations *received* from..to (inclusive, by their created_at date in UTC), and
sync runs started in the same days. Money is summed as stored (one currency per property).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tasks.results import ChannelReportRow


def _window(start: date, end: date) -> dict[str, Any]:
    return {"s": start, "e": end + timedelta(days=1)}


def _bookings(session: Session, start: date, end: date) -> dict[int, Any]:
    return {
        r.channel_id: r
        for r in session.execute(
            text("""
                SELECT channel_id,
                       count(DISTINCT external_ref) AS bookings,
                       count(*) AS reservations,
                       count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                       COALESCE(sum(check_out - check_in)
                                FILTER (WHERE status <> 'cancelled'), 0) AS room_nights,
                       COALESCE(sum(amount) FILTER (WHERE status <> 'cancelled'), 0) AS revenue,
                       avg(check_in - (created_at AT TIME ZONE 'UTC')::date) AS lead_time
                FROM reservations
                WHERE channel_id IS NOT NULL AND created_at >= :s AND created_at < :e
                GROUP BY channel_id
            """),
            _window(start, end),
        )
    }


def _sync(session: Session, start: date, end: date) -> dict[int, Any]:
    # Runs still going and "not applicable" answers are neither success nor failure.
    return {
        r.channel_id: r
        for r in session.execute(
            text("""
                SELECT channel_id, count(*) AS runs,
                       count(*) FILTER (WHERE status = 'success') AS ok
                FROM channel_sync_logs
                WHERE channel_id IS NOT NULL AND started_at >= :s AND started_at < :e
                  AND status NOT IN ('running', 'not_applicable')
                GROUP BY channel_id
            """),
            _window(start, end),
        )
    }


def _overbookings(session: Session) -> dict[int, int]:
    return dict(
        session.execute(
            text("""
                SELECT channel_id, count(*) FROM reservations
                WHERE overbooked AND status <> 'cancelled' AND channel_id IS NOT NULL
                GROUP BY channel_id
            """)
        ).tuples().all()
    )


def _latest(value: dict[str, Any] | None) -> str | None:
    times = [v for v in (value or {}).values() if isinstance(v, str)]
    return max(times) if times else None


def channel_report(
    session: Session, start: date, end: date, property_id: int | None = None
) -> list[ChannelReportRow]:
    """Per channel: bookings, room nights, revenue, ADR, cancellation rate, lead time, sync
    success rate, last successful sync and open overbookings."""
    channels = session.execute(
        text("SELECT id, name, channel_name, enabled, last_successful_sync FROM channels "
             "WHERE CAST(:p AS bigint) IS NULL OR property_id = :p ORDER BY id"),
        {"p": property_id},
    ).all()
    bookings = _bookings(session, start, end)
    sync = _sync(session, start, end)
    overbooked = _overbookings(session)
    rows = []
    for ch in channels:
        row = ChannelReportRow(channel_id=ch.id, channel=ch.name,
                               channel_name=ch.channel_name, enabled=ch.enabled,
                               last_successful_sync=_latest(ch.last_successful_sync),
                               open_overbookings=overbooked.get(ch.id, 0))
        b = bookings.get(ch.id)
        if b is not None:
            row.bookings, row.reservations = b.bookings, b.reservations
            row.room_nights, row.revenue = int(b.room_nights), Decimal(b.revenue)
            if row.room_nights:
                row.average_daily_rate = (row.revenue / row.room_nights).quantize(Decimal("0.01"))
            row.cancellation_rate = round(b.cancelled / b.reservations, 4)
            row.average_lead_time_days = (
                None if b.lead_time is None else round(float(b.lead_time), 1)
            )
        s = sync.get(ch.id)
        if s is not None and s.runs:
            row.sync_runs = s.runs
            row.sync_success_rate = round(s.ok / s.runs, 4)
        rows.append(row)
    return rows
