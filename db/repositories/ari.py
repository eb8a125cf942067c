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


def _filter(column: str, ids: list[int] | None) -> str:
    return f" AND {column} = ANY(CAST(:ids AS bigint[]))" if ids else ""


def availability_now(
    session: Session,
    channel_id: int,
    start: date,
    end: date,
    room_type_ids: list[int] | None = None,
) -> Calendar:
    """Rooms to sell per mapped room type and date: total - sold - held, 0 under stop-sell."""
    rows = session.execute(
        text(f"""
            SELECT m.partner_room_code, i.date,
                   GREATEST(0, i.total - i.sold - i.held) AS available, i.stop_sell
            FROM channel_room_mappings m
            JOIN inventory i ON i.room_type_id = m.room_type_id
            WHERE m.channel_id = :c AND i.date BETWEEN :s AND :e
            {_filter("m.room_type_id", room_type_ids)}
        """),
        {"c": channel_id, "s": start, "e": end, "ids": room_type_ids},
    ).all()
    cal: Calendar = {}
    for r in rows:
        cal.setdefault((r.partner_room_code, None), {})[r.date] = DayValues(
            available=0 if r.stop_sell else r.available, stop_sell=r.stop_sell
        )
    return cal


def availability_acked(
    session: Session,
    channel_id: int,
    start: date,
    end: date,
    room_type_ids: list[int] | None = None,
) -> Calendar:
    rows = session.execute(
        text(f"""
            SELECT m.partner_room_code, s.date, s.available, s.stop_sell
            FROM channel_availability_state s
            JOIN channel_room_mappings m
              ON m.channel_id = s.channel_id AND m.room_type_id = s.room_type_id
            WHERE s.channel_id = :c AND s.date BETWEEN :s AND :e
            {_filter("s.room_type_id", room_type_ids)}
        """),
        {"c": channel_id, "s": start, "e": end, "ids": room_type_ids},
    ).all()
    cal: Calendar = {}
    for r in rows:
        cal.setdefault((r.partner_room_code, None), {})[r.date] = DayValues(
            available=r.available, stop_sell=r.stop_sell
        )
    return cal


_RATE_COLUMNS = """m.partner_room_code, m.partner_rate_code, {t}.date, {t}.amount,
    p.currency, {t}.min_los, {t}.max_los, {t}.closed_to_arrival, {t}.closed_to_departure,
    {t}.closed"""


def _rate_values(r: Any) -> DayValues:
    return DayValues(
        rate=r.amount,
        currency=r.currency,
        min_los=r.min_los,
        max_los=r.max_los,
        closed_to_arrival=r.closed_to_arrival,
        closed_to_departure=r.closed_to_departure,
        stop_sell=r.closed,
    )


def rates_now(
    session: Session,
    channel_id: int,
    start: date,
    end: date,
    rate_plan_ids: list[int] | None = None,
) -> Calendar:
    """Price and restrictions per mapped (room, rate) pair and date."""
    rows = session.execute(
        text(f"""
            SELECT {_RATE_COLUMNS.format(t="r")}
            FROM channel_rate_mappings m
            JOIN rates r ON r.rate_plan_id = m.rate_plan_id
            JOIN rate_plans p ON p.id = m.rate_plan_id
            WHERE m.channel_id = :c AND r.date BETWEEN :s AND :e
            {_filter("m.rate_plan_id", rate_plan_ids)}
        """),
        {"c": channel_id, "s": start, "e": end, "ids": rate_plan_ids},
    ).all()
    cal: Calendar = {}
    for r in rows:
        cal.setdefault((r.partner_room_code, r.partner_rate_code), {})[r.date] = _rate_values(r)
    return cal


def rates_acked(
    session: Session,
    channel_id: int,
    start: date,
    end: date,
    rate_plan_ids: list[int] | None = None,
) -> Calendar:
    rows = session.execute(
        text(f"""
            SELECT {_RATE_COLUMNS.format(t="s")}
            FROM channel_rate_state s
            JOIN channel_rate_mappings m
              ON m.channel_id = s.channel_id AND m.rate_plan_id = s.rate_plan_id
            JOIN rate_plans p ON p.id = s.rate_plan_id
            WHERE s.channel_id = :c AND s.date BETWEEN :s AND :e
            {_filter("s.rate_plan_id", rate_plan_ids)}
        """),
        {"c": channel_id, "s": start, "e": end, "ids": rate_plan_ids},
    ).all()
    cal: Calendar = {}
    for r in rows:
        cal.setdefault((r.partner_room_code, r.partner_rate_code), {})[r.date] = _rate_values(r)
    return cal


def save_acked(session: Session, channel_id: int, updates: Iterable[ARIUpdate]) -> int:
    """Record what the channel accepted, day by day (the base of the next delta)."""
    avail: dict[tuple[str, date], DayValues] = {}
    rates: dict[tuple[str, str, date], DayValues] = {}
    for u in updates:
        v = values_of(u)
        for day in days_of(u):
            if u.partner_rate_plan_code is None:
                avail[(u.partner_room_type_code, day)] = v
            else:
                rates[(u.partner_room_type_code, u.partner_rate_plan_code, day)] = v
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
