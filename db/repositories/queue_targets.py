"""What queue items point at, looked up set-wise for a whole batch (no query per item)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class ReservationFacts:
    """A reservation as it is now, and the channel booking it came from (if any)."""

    id: int
    property_id: int
    room_type_id: int | None
    check_in: date
    check_out: date
    status: str
    channel_id: int | None
    external_ref: str | None
    #: Every reservation of the same channel booking has this status (multi-room bookings).
    booking_all_same_status: bool


@dataclass
class BatchFacts:
    """Current rows behind a batch of queue items, keyed by id."""

    reservations: dict[int, ReservationFacts] = field(default_factory=dict)
    room_type_property: dict[int, int] = field(default_factory=dict)
    rate_plan_property: dict[int, int] = field(default_factory=dict)
    rooms: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> (property, type)
    channels_of_property: dict[int, list[int]] = field(default_factory=dict)


def _ints(values: Iterable[Any]) -> list[int]:
    out = set()
    for v in values:
        try:
            out.add(int(v))
        except (TypeError, ValueError):
            continue
    return sorted(out)


def load_facts(
    session: Session,
    reservation_ids: Iterable[Any],
    room_type_ids: Iterable[Any],
    rate_plan_ids: Iterable[Any],
    room_ids: Iterable[Any],
) -> BatchFacts:
    """Reservations, room types, rate plans and rooms of a batch, one query each."""
    facts = BatchFacts()
    res_ids = _ints(reservation_ids)
    if res_ids:
        for r in session.execute(
            text("""
                SELECT r.id, r.property_id, r.room_type_id, r.check_in, r.check_out, r.status,
                       r.channel_id, r.external_ref,
                       NOT EXISTS (SELECT 1 FROM reservations o
                                   WHERE o.channel_id = r.channel_id
                                     AND o.external_ref = r.external_ref
                                     AND o.status <> r.status) AS same
                FROM reservations r WHERE r.id = ANY(CAST(:ids AS bigint[]))
            """),
            {"ids": res_ids},
        ):
            facts.reservations[r.id] = ReservationFacts(
                r.id, r.property_id, r.room_type_id, r.check_in, r.check_out, r.status,
                r.channel_id, r.external_ref, r.same,
            )
    rt_ids = _ints([*room_type_ids, *(f.room_type_id for f in facts.reservations.values())])
    if rt_ids:
        facts.room_type_property = dict(
            session.execute(
                text("SELECT id, property_id FROM room_types WHERE id = ANY(CAST(:ids AS bigint[]))"),
                {"ids": rt_ids},
            ).tuples().all()
        )
    rp_ids = _ints(rate_plan_ids)
    if rp_ids:
        facts.rate_plan_property = dict(
            session.execute(
                text("SELECT id, property_id FROM rate_plans WHERE id = ANY(CAST(:ids AS bigint[]))"),
                {"ids": rp_ids},
            ).tuples().all()
        )
    room_id_list = _ints(room_ids)
    if room_id_list:
        facts.rooms = {
            r.id: (r.property_id, r.room_type_id)
            for r in session.execute(
                text("SELECT id, property_id, room_type_id FROM rooms "
                     "WHERE id = ANY(CAST(:ids AS bigint[]))"),
                {"ids": room_id_list},
            )
        }
    return facts


def enabled_channels(session: Session, property_ids: Iterable[int]) -> dict[int, list[int]]:
    """Enabled channel ids per property."""
    out: dict[int, list[int]] = {}
    ids = _ints(property_ids)
    if not ids:
        return out
    for r in session.execute(
        text("SELECT id, property_id FROM channels WHERE enabled "
             "AND property_id = ANY(CAST(:ids AS bigint[])) ORDER BY id"),
        {"ids": ids},
    ):
        out.setdefault(r.property_id, []).append(r.id)
    return out


def mark_outcomes(session: Session, notes: dict[int, str]) -> None:
    """Record a handler's note on items (e.g. not applicable) in their data."""
    if not notes:
        return
    session.execute(
        text("""
            UPDATE data_sync_queue q SET data = q.data || jsonb_build_object('outcome', u.note)
            FROM unnest(CAST(:ids AS bigint[]), CAST(:notes AS text[])) AS u(id, note)
            WHERE q.id = u.id
        """),
        {"ids": list(notes), "notes": list(notes.values())},
    )
