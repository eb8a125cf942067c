"""Inventory and rate calendars: date-range reads and one-statement range upserts."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from db.models import Inventory, Rate
from db.repositories.base import execute_guarded

#: Settable inventory columns (sold is derived from reservations, never set directly).
INVENTORY_COLUMNS = ("total", "held", "stop_sell")
#: Settable rate columns; `amount` is required to create a missing day.
RATE_COLUMNS = (
    "amount",
    "currency",
    "min_los",
    "max_los",
    "closed_to_arrival",
    "closed_to_departure",
    "closed",
)


_SQL_TYPES = {
    "total": "int",
    "held": "int",
    "stop_sell": "boolean",
    "amount": "numeric(12,2)",
    "currency": "varchar(3)",
    "min_los": "int",
    "max_los": "int",
    "closed_to_arrival": "boolean",
    "closed_to_departure": "boolean",
    "closed": "boolean",
}


def _typed(columns: list[str]) -> str:
    # Explicit casts: a NULL parameter would otherwise be typed text.
    return ", ".join(f"CAST(:{c} AS {_SQL_TYPES[c]})" for c in columns)


def inventory_query(room_type_id: int, start: date, end: date) -> Select[tuple[Inventory]]:
    """Inventory days of one room type in start..end (inclusive), by date."""
    return (
        select(Inventory)
        .where(Inventory.room_type_id == room_type_id, Inventory.date.between(start, end))
        .order_by(Inventory.date)
    )


def rates_query(rate_plan_id: int, start: date, end: date) -> Select[tuple[Rate]]:
    """Rate days of one rate plan in start..end (inclusive), by date."""
    return (
        select(Rate)
        .where(Rate.rate_plan_id == rate_plan_id, Rate.date.between(start, end))
        .order_by(Rate.date)
    )


def _weekday_filter(column: str, weekdays: Collection[int] | None) -> str:
    # 0=Monday..6=Sunday, as in channels.base.ARIUpdate.
    if not weekdays:
        return ""
    return f" WHERE (extract(isodow FROM {column})::int - 1) = ANY(CAST(:weekdays AS int[]))"


def _params(key: int, start: date, end: date, weekdays: Collection[int] | None,
            values: Mapping[str, Any]) -> dict[str, Any]:
    return {"key": key, "start": start, "end": end,
            "weekdays": sorted(weekdays) if weekdays else None, **values}


def _check_columns(values: Mapping[str, Any], allowed: tuple[str, ...]) -> list[str]:
    unknown = set(values) - set(allowed)
    if unknown:
        raise ValueError(f"not settable: {', '.join(sorted(unknown))}")
    if not values:
        raise ValueError("nothing to set")
    return [c for c in allowed if c in values]


def upsert_inventory_range(
    session: Session,
    room_type_id: int,
    start: date,
    end: date,
    values: Mapping[str, Any],
    weekdays: Collection[int] | None = None,
) -> int:
    """Set `values` on every day start..end (optionally only `weekdays`) in one
    INSERT .. ON CONFLICT DO UPDATE over generate_series; returns the days written."""
    columns = _check_columns(values, INVENTORY_COLUMNS)
    sql = (
        f"INSERT INTO inventory (room_type_id, date, {', '.join(columns)}) "
        f"SELECT :key, g.d::date, {_typed(columns)} "
        "FROM generate_series(CAST(:start AS date), CAST(:end AS date), interval '1 day') AS g(d)"
        f"{_weekday_filter('g.d', weekdays)} "
        "ON CONFLICT (room_type_id, date) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
        + ", updated_at = now()"
    )
    params = _params(room_type_id, start, end, weekdays, values)
    result = execute_guarded(session, "inventory update", text(sql), params)
    return int(result.rowcount)


def upsert_rate_range(
    session: Session,
    rate_plan_id: int,
    start: date,
    end: date,
    values: Mapping[str, Any],
    weekdays: Collection[int] | None = None,
) -> int:
    """Set `values` on every day start..end of a rate plan in one statement; returns the days
    written. With an `amount`, missing days are created (INSERT .. ON CONFLICT over
    generate_series); without one only existing days can change (one bulk UPDATE)."""
    columns = _check_columns(values, RATE_COLUMNS)
    params = _params(rate_plan_id, start, end, weekdays, values)
    if "amount" in values:
        sql = (
            f"INSERT INTO rates (rate_plan_id, date, {', '.join(columns)}) "
            f"SELECT :key, g.d::date, {_typed(columns)} "
            "FROM generate_series(CAST(:start AS date), CAST(:end AS date), interval '1 day') "
            f"AS g(d){_weekday_filter('g.d', weekdays)} "
            "ON CONFLICT (rate_plan_id, date) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
            + ", updated_at = now()"
        )
    else:
        where = _weekday_filter("date", weekdays).replace(" WHERE ", " AND ")
        sql = (
            "UPDATE rates SET "
            + ", ".join(f"{c} = CAST(:{c} AS {_SQL_TYPES[c]})" for c in columns)
            + ", updated_at = now() WHERE rate_plan_id = :key AND date BETWEEN :start AND :end"
            + where
        )
    result = execute_guarded(session, "rate update", text(sql), params)
    return int(result.rowcount)
