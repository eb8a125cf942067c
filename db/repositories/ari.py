"""ARI calendars per channel: what the PMS says now, what the channel last acknowledged."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from channels.ari import ARIKey, DayValues, days_of, values_of
from channels.base import ARIUpdate

Calendar = dict[ARIKey, dict[date, DayValues]]


#: Rooms left to sell of a mapped room type on a date in the PMS (`inventory x`).
_LEFT_NOW = "GREATEST(0, x.total - x.sold - x.held)"

# Where each side of a delta comes from: the PMS tables now, or what the channel acknowledged.
# Both read through the channel's mappings, so only mapped room types / rate plans appear.
_AVAILABILITY = {
    "now": (
        "JOIN inventory x ON x.room_type_id = m.room_type_id",
        _LEFT_NOW,
    ),
    "acked": (
        "JOIN channel_availability_state x ON x.room_type_id = m.room_type_id "
        "AND x.channel_id = m.channel_id",
        "x.available",
    ),
}
_RATES = {
    "now": "JOIN rates x ON x.rate_plan_id = m.rate_plan_id",
    "acked": "JOIN channel_rate_state x ON x.rate_plan_id = m.rate_plan_id "
    "AND x.channel_id = m.channel_id",
}


def _params(channel_id: int, start: date, end: date, ids: list[int] | None) -> dict[str, Any]:
    return {"c": channel_id, "s": start, "e": end, "ids": ids}


def _only(column: str, ids: list[int] | None) -> str:
    return f" AND {column} = ANY(CAST(:ids AS bigint[]))" if ids else ""


def availability(
    session: Session,
    channel_id: int,
    start: date,
    end: date,
    room_type_ids: list[int] | None = None,
    *,
    source: str = "now",
) -> Calendar:
    """Rooms to sell per mapped room type and date (total - sold - held, 0 under stop-sell),
    from the PMS (`source="now"`) or as the channel last acknowledged it (`"acked"`)."""
    join, available = _AVAILABILITY[source]
    rows = session.execute(
        text(f"""
            SELECT m.partner_room_code, x.date, {available} AS available, x.stop_sell
            FROM channel_room_mappings m {join}
            WHERE m.channel_id = :c AND x.date BETWEEN :s AND :e
            {_only("m.room_type_id", room_type_ids)}
        """),
        _params(channel_id, start, end, room_type_ids),
    ).all()
    return _availability_calendar(rows)


def _availability_calendar(rows: Iterable[Any]) -> Calendar:
    cal: Calendar = {}
    for r in rows:
        cal.setdefault((r.partner_room_code, None), {})[r.date] = DayValues(
            available=0 if r.stop_sell else r.available, stop_sell=r.stop_sell
        )
    return cal


#: The PMS availability of a mapped room type and date now (0 under stop-sell, as sent).
_AVAILABLE_NOW = f"CASE WHEN x.stop_sell THEN 0 ELSE {_LEFT_NOW} END"


def availability_changes(
    session: Session,
    channel_id: int,
    start: date,
    end: date,
    room_type_ids: list[int] | None = None,
) -> Calendar:
    """The dates whose availability differs from what the channel last acknowledged (or that
    it never acknowledged), with their values now: `delta(availability(.., source="acked"),
    availability(..))` computed by the database, so unchanged dates are neither read nor
    sent over (a close reads a few changed nights, not its window twice)."""
    rows = session.execute(
        text(f"""
            SELECT m.partner_room_code, x.date, {_AVAILABLE_NOW} AS available, x.stop_sell
            FROM channel_room_mappings m
            JOIN inventory x ON x.room_type_id = m.room_type_id
            LEFT JOIN channel_availability_state a ON a.channel_id = m.channel_id
                AND a.room_type_id = m.room_type_id AND a.date = x.date
            WHERE m.channel_id = :c AND x.date BETWEEN :s AND :e
            {_only("m.room_type_id", room_type_ids)}
              AND (a.date IS NULL OR a.stop_sell <> x.stop_sell
                   OR (CASE WHEN a.stop_sell THEN 0 ELSE a.available END) <> {_AVAILABLE_NOW})
        """),
        _params(channel_id, start, end, room_type_ids),
    ).all()
    return _availability_calendar(rows)


def rates(
    session: Session,
    channel_id: int,
    start: date,
    end: date,
    rate_plan_ids: list[int] | None = None,
    *,
    source: str = "now",
) -> Calendar:
    """Price and restrictions per mapped (room, rate) pair and date, from the PMS or as the
    channel last acknowledged them."""
    rows = session.execute(
        text(f"""
            SELECT m.partner_room_code, m.partner_rate_code, x.date, x.amount, p.currency,
                   x.min_los, x.max_los, x.closed_to_arrival, x.closed_to_departure, x.closed
            FROM channel_rate_mappings m {_RATES[source]}
            JOIN rate_plans p ON p.id = m.rate_plan_id
            WHERE m.channel_id = :c AND x.date BETWEEN :s AND :e
            {_only("m.rate_plan_id", rate_plan_ids)}
        """),
        _params(channel_id, start, end, rate_plan_ids),
    ).all()
    cal: Calendar = {}
    for r in rows:
        cal.setdefault((r.partner_room_code, r.partner_rate_code), {})[r.date] = DayValues(
            rate=r.amount,
            currency=r.currency,
            min_los=r.min_los,
            max_los=r.max_los,
            closed_to_arrival=r.closed_to_arrival,
            closed_to_departure=r.closed_to_departure,
            stop_sell=r.closed,
        )
    return cal


def _by_day(
    updates: Iterable[ARIUpdate],
) -> tuple[dict[tuple[str, date], DayValues], dict[tuple[str, str, date], DayValues]]:
    avail: dict[tuple[str, date], DayValues] = {}
    rates: dict[tuple[str, str, date], DayValues] = {}
    for u in updates:
        v = values_of(u)
        for day in days_of(u):
            if u.partner_rate_plan_code is None:
                avail[(u.partner_room_type_code, day)] = v
            else:
                rates[(u.partner_room_type_code, u.partner_rate_plan_code, day)] = v
    return avail, rates


def forget_acked(session: Session, channel_id: int, updates: Iterable[ARIUpdate]) -> int:
    """Drop the acknowledged state of the days these updates cover, so the next delta sends
    their current values again (a push that may have reached the partner out of order)."""
    avail, rates = _by_day(updates)
    dropped = 0
    if avail:
        dropped += int(session.execute(
            text("""
                DELETE FROM channel_availability_state s
                USING unnest(CAST(:code AS text[]), CAST(:d AS date[])) AS u(code, d),
                      channel_room_mappings m
                WHERE m.channel_id = :c AND m.partner_room_code = u.code
                  AND s.channel_id = :c AND s.room_type_id = m.room_type_id AND s.date = u.d
            """),
            {"c": channel_id, "code": [k[0] for k in avail], "d": [k[1] for k in avail]},
        ).rowcount or 0)  # type: ignore[attr-defined]
    if rates:
        dropped += int(session.execute(
            text("""
                DELETE FROM channel_rate_state s
                USING unnest(CAST(:room AS text[]), CAST(:rate AS text[]), CAST(:d AS date[]))
                      AS u(room, rate, d), channel_rate_mappings m
                WHERE m.channel_id = :c AND m.partner_room_code = u.room
                  AND m.partner_rate_code = u.rate
                  AND s.channel_id = :c AND s.rate_plan_id = m.rate_plan_id AND s.date = u.d
            """),
            {"c": channel_id, "room": [k[0] for k in rates], "rate": [k[1] for k in rates],
             "d": [k[2] for k in rates]},
        ).rowcount or 0)  # type: ignore[attr-defined]
    return dropped


def save_acked(session: Session, channel_id: int, updates: Iterable[ARIUpdate]) -> int:
    """Record what the channel accepted, day by day (the base of the next delta)."""
    avail, rates = _by_day(updates)
    if avail:
        keys = list(avail)
        session.execute(
            text("""
                INSERT INTO channel_availability_state AS s
                    (channel_id, room_type_id, date, available, stop_sell)
                SELECT :c, m.room_type_id, u.d, u.a, u.ss
                FROM unnest(CAST(:code AS text[]), CAST(:d AS date[]), CAST(:a AS int[]),
                            CAST(:ss AS boolean[])) AS u(code, d, a, ss)
                JOIN channel_room_mappings m ON m.channel_id = :c AND m.partner_room_code = u.code
                ON CONFLICT (channel_id, room_type_id, date) DO UPDATE SET
                    available = EXCLUDED.available, stop_sell = EXCLUDED.stop_sell,
                    acked_at = now()
            """),
            {
                "c": channel_id,
                "code": [k[0] for k in keys],
                "d": [k[1] for k in keys],
                "a": [avail[k].available or 0 for k in keys],
                "ss": [bool(avail[k].stop_sell) for k in keys],
            },
        )
    if rates:
        keys2 = list(rates)
        vals = [rates[k] for k in keys2]
        session.execute(
            text("""
                INSERT INTO channel_rate_state AS s (channel_id, rate_plan_id, date, amount,
                    min_los, max_los, closed_to_arrival, closed_to_departure, closed)
                SELECT :c, m.rate_plan_id, u.d, u.amt, u.mn, u.mx, u.cta, u.ctd, u.cl
                FROM unnest(CAST(:room AS text[]), CAST(:rate AS text[]), CAST(:d AS date[]),
                    CAST(:amt AS numeric[]), CAST(:mn AS int[]), CAST(:mx AS int[]),
                    CAST(:cta AS boolean[]), CAST(:ctd AS boolean[]), CAST(:cl AS boolean[]))
                    AS u(room, rate, d, amt, mn, mx, cta, ctd, cl)
                JOIN channel_rate_mappings m ON m.channel_id = :c
                 AND m.partner_room_code = u.room AND m.partner_rate_code = u.rate
                ON CONFLICT (channel_id, rate_plan_id, date) DO UPDATE SET
                    amount = EXCLUDED.amount, min_los = EXCLUDED.min_los,
                    max_los = EXCLUDED.max_los, closed_to_arrival = EXCLUDED.closed_to_arrival,
                    closed_to_departure = EXCLUDED.closed_to_departure,
                    closed = EXCLUDED.closed, acked_at = now()
            """),
            {
                "c": channel_id,
                "room": [k[0] for k in keys2],
                "rate": [k[1] for k in keys2],
                "d": [k[2] for k in keys2],
                "amt": [v.rate or 0 for v in vals],
                "mn": [v.min_los for v in vals],
                "mx": [v.max_los for v in vals],
                "cta": [bool(v.closed_to_arrival) for v in vals],
                "ctd": [bool(v.closed_to_departure) for v in vals],
                "cl": [bool(v.stop_sell) for v in vals],
            },
        )
    return len(avail) + len(rates)
