"""Storing a page of partner bookings exactly once, in one transaction, with set-based SQL.

Order inside the transaction: lock the channel's ingest (advisory lock), read what is
stored, plan (pure), then guests -> reservations -> channel_bookings -> inventory. The caller
commits and only then acknowledges to the partner.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from channels.base import BookingRecord
from db.repositories.booking_plan import (
    BookingPlan,
    ExistingBooking,
    ExistingRoom,
    latest_per_booking,
    plan_page,
)

INGEST_LOCK_NAMESPACE = 7_311  # pg_advisory_xact_lock(namespace, channel_id)


@dataclass
class IngestResult:
    """What one page did. `acknowledgeable` are the ids safe to ack once committed."""

    processed: int = 0
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    unmapped: int = 0
    overbooked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    acknowledgeable: list[str] = field(default_factory=list)
    #: (room_type_id, night) whose sold count changed: availability to push to channels.
    touched: list[tuple[int, date]] = field(default_factory=list)
    #: Message revisions acknowledged before this page, per partner booking id.
    acked_before: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def success(self) -> int:
        return self.new + self.updated + self.duplicates + self.unmapped

    def as_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "new": self.new,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "unmapped": self.unmapped,
            "overbooked": self.overbooked,
            "errors": self.errors,
            "acknowledgeable": self.acknowledgeable,
            "touched": [(rt, d.isoformat()) for rt, d in self.touched],
        }


def load_mappings(
    session: Session, channel_id: int
) -> tuple[int | None, dict[str, int], dict[tuple[str, str], int]]:
    """(property id, partner room code -> room type id, (room, rate) codes -> rate plan id)."""
    property_id = session.execute(
        text("SELECT property_id FROM channels WHERE id = :c"), {"c": channel_id}
    ).scalar()
    rooms = session.execute(
        text(
            "SELECT partner_room_code, room_type_id FROM channel_room_mappings "
            "WHERE channel_id = :c"
        ),
        {"c": channel_id},
    ).all()
    rates = session.execute(
        text(
            "SELECT partner_room_code, partner_rate_code, rate_plan_id "
            "FROM channel_rate_mappings WHERE channel_id = :c"
        ),
        {"c": channel_id},
    ).all()
    return (
        property_id,
        {r.partner_room_code: r.room_type_id for r in rooms},
        {(r.partner_room_code, r.partner_rate_code): r.rate_plan_id for r in rates},
    )


def _load_existing(
    session: Session, channel_id: int, external_ids: list[str]
) -> dict[str, ExistingBooking]:
    rows = session.execute(
        text("""
            SELECT cb.id, cb.external_booking_id, cb.revision, cb.acked_revisions,
                   r.id AS reservation_id, r.room_index, r.room_type_id, r.check_in,
                   r.check_out, r.status, r.guest_id
            FROM channel_bookings cb
            LEFT JOIN reservations r
              ON r.channel_id = cb.channel_id AND r.external_ref = cb.external_booking_id
            WHERE cb.channel_id = :c AND cb.external_booking_id = ANY(CAST(:ids AS text[]))
            ORDER BY cb.id, r.room_index
        """),
        {"c": channel_id, "ids": external_ids},
    ).all()
    out: dict[str, ExistingBooking] = {}
    for row in rows:
        prev = out.get(row.external_booking_id)
        rooms = prev.rooms if prev else ()
        if row.reservation_id is not None:
            rooms = (
                *rooms,
                ExistingRoom(
                    row.reservation_id,
                    row.room_index,
                    row.room_type_id,
                    row.check_in,
                    row.check_out,
                    row.status,
                    row.guest_id,
                ),
            )
        out[row.external_booking_id] = ExistingBooking(
            row.id, row.revision, rooms, tuple(row.acked_revisions or ())
        )
    return out


def _payloads(records: Iterable[BookingRecord]) -> str:
    """The raw payloads as one JSON array (already PCI-masked by the adapters)."""
    return json.dumps([r.raw_payload for r in records], default=str, ensure_ascii=False)


def _upsert_guests(session: Session, plans: list[BookingPlan]) -> dict[str, int]:
    """Create guests for new bookings, update the stored guest on modifications."""
    # A booking stored earlier without rooms (it was unmapped) gets its guest now.
    new = [
        p
        for p in plans
        if p.action == "new" or (p.action == "update" and not (p.existing and p.existing.rooms))
    ]
    guest_ids: dict[str, int] = {}
    if new:
        ids = (
            session.execute(
                text(
                    "SELECT nextval(pg_get_serial_sequence('guests', 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"n": len(new)},
            )
            .scalars()
            .all()
        )
        g = [p.record.guest for p in new]
        session.execute(
            text("""
                INSERT INTO guests (id, first_name, last_name, email, phone, country)
                SELECT * FROM unnest(CAST(:id AS bigint[]), CAST(:fn AS text[]),
                    CAST(:ln AS text[]), CAST(:em AS text[]), CAST(:ph AS text[]),
                    CAST(:co AS text[]))
            """),
            {
                "id": list(ids),
                "fn": [x.first_name[:100] for x in g],
                "ln": [x.last_name[:100] for x in g],
                "em": [x.email for x in g],
                "ph": [x.phone for x in g],
                "co": [(x.country or None) and x.country[:2] for x in g],
            },
        )
        guest_ids = {p.record.external_id: gid for p, gid in zip(new, ids, strict=True)}
    updates = [
        p
        for p in plans
        if p.action == "update" and p.existing and p.existing.rooms and p.record.guest.last_name
    ]
    if updates:
        session.execute(
            text("""
                UPDATE guests g SET first_name = u.fn, last_name = u.ln,
                    email = COALESCE(u.em, g.email), phone = COALESCE(u.ph, g.phone),
                    updated_at = now()
                FROM unnest(CAST(:id AS bigint[]), CAST(:fn AS text[]), CAST(:ln AS text[]),
                            CAST(:em AS text[]), CAST(:ph AS text[])) AS u(id, fn, ln, em, ph)
                WHERE g.id = u.id
            """),
            {
                "id": [p.existing.rooms[0].guest_id for p in updates if p.existing],
                "fn": [p.record.guest.first_name[:100] for p in updates],
                "ln": [p.record.guest.last_name[:100] for p in updates],
                "em": [p.record.guest.email for p in updates],
                "ph": [p.record.guest.phone for p in updates],
            },
        )
    for p in plans:
        if p.action == "update" and p.existing and p.existing.rooms:
            guest_ids[p.record.external_id] = p.existing.rooms[0].guest_id
    return guest_ids


def _upsert_reservations(
    session: Session,
    channel_id: int,
    channel_name: str,
    property_id: int,
    plans: list[BookingPlan],
    guest_ids: dict[str, int],
) -> dict[str, int]:
    """Insert or update one reservation per booked room; returns first reservation id per
    booking."""
    cols: dict[str, list[Any]] = {
        k: []
        for k in ("ext", "idx", "guest", "rt", "rp", "ci", "co", "ad", "ch", "amt", "cur", "st")
    }
    for p in plans:
        if p.action not in ("new", "update") or p.record.external_id not in guest_ids:
            continue
        for row in p.rooms:
            cols["ext"].append(p.record.external_id)
            cols["idx"].append(row.room_index)
            cols["guest"].append(guest_ids[p.record.external_id])
            cols["rt"].append(row.room_type_id or None)
            cols["rp"].append(row.rate_plan_id)
            cols["ci"].append(row.check_in)
            cols["co"].append(row.check_out)
            cols["ad"].append(row.adults)
            cols["ch"].append(row.children)
            cols["amt"].append(row.amount)
            cols["cur"].append(row.currency[:3])
            cols["st"].append(row.status)
    first: dict[str, int] = {}
    if cols["ext"]:
        rows = session.execute(
            text("""
                INSERT INTO reservations AS r (property_id, guest_id, room_type_id, rate_plan_id,
                    check_in, check_out, adults, children, amount, currency, status,
                    source_channel, channel_id, external_ref, room_index, confirmation_code)
                SELECT :prop, u.guest, u.rt, u.rp, u.ci, u.co, u.ad, u.ch, u.amt, u.cur, u.st,
                       CAST(:cname AS text), :c, u.ext, u.idx, CAST(:cname AS text) || ':' || u.ext || ':' || u.idx
                FROM unnest(CAST(:ext AS text[]), CAST(:idx AS int[]), CAST(:guest AS bigint[]),
                    CAST(:rt AS bigint[]), CAST(:rp AS bigint[]), CAST(:ci AS date[]),
                    CAST(:co AS date[]), CAST(:ad AS int[]), CAST(:ch AS int[]),
                    CAST(:amt AS numeric[]), CAST(:cur AS text[]), CAST(:st AS text[]))
                    AS u(ext, idx, guest, rt, rp, ci, co, ad, ch, amt, cur, st)
                ON CONFLICT (channel_id, external_ref, room_index) DO UPDATE SET
                    room_type_id = COALESCE(EXCLUDED.room_type_id, r.room_type_id),
                    rate_plan_id = COALESCE(EXCLUDED.rate_plan_id, r.rate_plan_id),
                    check_in = EXCLUDED.check_in, check_out = EXCLUDED.check_out,
                    adults = CASE WHEN EXCLUDED.status = 'cancelled' THEN r.adults
                                  ELSE EXCLUDED.adults END,
                    children = CASE WHEN EXCLUDED.status = 'cancelled' THEN r.children
                                    ELSE EXCLUDED.children END,
                    amount = CASE WHEN EXCLUDED.status = 'cancelled' THEN r.amount
                                  ELSE EXCLUDED.amount END,
                    status = EXCLUDED.status, updated_at = now()
                RETURNING r.id, r.external_ref, r.room_index
            """),
            {"prop": property_id, "cname": channel_name, "c": channel_id, **cols},
        ).all()
        for stored in sorted(rows, key=lambda r: r.room_index):
            first.setdefault(stored.external_ref, stored.id)
    gone = [rid for p in plans for rid in p.cancel_room_ids]
    if gone:
        session.execute(
            text(
                "UPDATE reservations SET status = 'cancelled', updated_at = now() "
                "WHERE id = ANY(CAST(:ids AS bigint[]))"
            ),
            {"ids": gone},
        )
    return first


def _upsert_channel_bookings(
    session: Session, channel_id: int, plans: list[BookingPlan], first: dict[str, int]
) -> None:
    todo = [p for p in plans if p.action in ("new", "update", "unmapped")]
    if not todo:
        return
    session.execute(
        text("""
            INSERT INTO channel_bookings AS cb (channel_id, external_booking_id, revision,
                status, raw_payload, sync_status, sync_error, reservation_id, last_synced_at)
            SELECT :c, u.ext, u.rev, u.st, u.payload, u.sync, u.err, u.res, now()
            -- payloads travel as one JSON array: a text[] of JSON strings costs psycopg a
            -- regex escape per quote (17 ms for 50 bookings, against 0.8 ms this way)
            FROM ROWS FROM (unnest(CAST(:ext AS text[])), unnest(CAST(:rev AS text[])),
                unnest(CAST(:st AS text[])), jsonb_array_elements(CAST(:payload AS jsonb)),
                unnest(CAST(:sync AS text[])), unnest(CAST(:err AS text[])),
                unnest(CAST(:res AS bigint[]))) AS u(ext, rev, st, payload, sync, err, res)
            ON CONFLICT (channel_id, external_booking_id) DO UPDATE SET
                revision = EXCLUDED.revision, status = EXCLUDED.status,
                raw_payload = EXCLUDED.raw_payload, sync_status = EXCLUDED.sync_status,
                sync_error = EXCLUDED.sync_error,
                reservation_id = COALESCE(EXCLUDED.reservation_id, cb.reservation_id),
                last_synced_at = now(), updated_at = now()
            -- an older revision never overwrites a newer one
            WHERE cb.revision IS NULL OR cb.revision < EXCLUDED.revision
        """),
        {
            "c": channel_id,
            "ext": [p.record.external_id for p in todo],
            "rev": [p.record.revision for p in todo],
            "st": [p.record.status for p in todo],
            "payload": _payloads(p.record for p in todo),
            "sync": ["unmapped" if p.action == "unmapped" else "synced" for p in todo],
            "err": [p.error for p in todo],
            "res": [first.get(p.record.external_id) for p in todo],
        },
    )


def apply_inventory_delta(
    session: Session, delta: Counter[tuple[int, date]]
) -> set[tuple[int, date]]:
    """Move sold counts atomically; returns the (room type, night) now oversold.

    Rows are locked in (room_type_id, date) order so two channels booking the same nights
    at once serialize instead of deadlocking, and each sees the other's count.
    """
    if not delta:
        return set()
    keys = sorted(delta)
    params = {"rt": [k[0] for k in keys], "d": [k[1] for k in keys], "n": [delta[k] for k in keys]}
    # Nights beyond the loaded calendar get a row from the room type's unit count.
    session.execute(
        text("""
            INSERT INTO inventory (room_type_id, date, total)
            SELECT u.rt, u.d, rt.total_units
            FROM unnest(CAST(:rt AS bigint[]), CAST(:d AS date[])) AS u(rt, d)
            JOIN room_types rt ON rt.id = u.rt
            ON CONFLICT DO NOTHING
        """),
        params,
    )
    session.execute(
        text("""
            SELECT 1 FROM inventory i
            JOIN unnest(CAST(:rt AS bigint[]), CAST(:d AS date[])) AS u(rt, d)
              ON i.room_type_id = u.rt AND i.date = u.d
            ORDER BY i.room_type_id, i.date FOR UPDATE OF i
        """),
        params,
    )
    rows = session.execute(
        text("""
            UPDATE inventory i SET sold = GREATEST(0, i.sold + u.n), updated_at = now()
            FROM unnest(CAST(:rt AS bigint[]), CAST(:d AS date[]), CAST(:n AS int[]))
                AS u(rt, d, n)
            WHERE i.room_type_id = u.rt AND i.date = u.d
            RETURNING i.room_type_id, i.date, i.total, i.sold, i.held, i.stop_sell
        """),
        params,
    ).all()
    return {
        (r.room_type_id, r.date)
        for r in rows
        if delta[(r.room_type_id, r.date)] > 0 and (r.sold > r.total - r.held or r.stop_sell)
    }


def _flag_overbooked(session: Session, channel_id: int, external_ids: list[str]) -> None:
    if not external_ids:
        return
    params = {"c": channel_id, "ids": external_ids}
    session.execute(
        text(
            "UPDATE reservations SET overbooked = true WHERE channel_id = :c "
            "AND external_ref = ANY(CAST(:ids AS text[])) AND status <> 'cancelled'"
        ),
        params,
    )
    session.execute(
        text(
            "UPDATE channel_bookings SET overbooked = true WHERE channel_id = :c "
            "AND external_booking_id = ANY(CAST(:ids AS text[]))"
        ),
        params,
    )


def ingest_page(
    session: Session, channel_id: int, channel_name: str, records: list[BookingRecord]
) -> IngestResult:
    """Store a page of bookings exactly once; nothing is committed here."""
    result = IngestResult(processed=len(records))
    if not records:
        return result
    # Array-parameter lookups: a cached generic plan chosen on small tables stays slow as
    # they grow (measured 0.7 -> 41 ms per page by 30k bookings); plan each page afresh.
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    # One ingest per channel at a time: a webhook-triggered fetch and a poll may overlap.
    session.execute(
        text("SELECT pg_advisory_xact_lock(:ns, :c)"),
        {"ns": INGEST_LOCK_NAMESPACE, "c": channel_id},
    )
    latest, dropped_in_page = latest_per_booking(records)
    result.duplicates += dropped_in_page
    property_id, room_map, rate_map = load_mappings(session, channel_id)
    if property_id is None:
        property_id = session.execute(
            text("SELECT min(property_id) FROM room_types WHERE id = ANY(CAST(:ids AS bigint[]))"),
            {"ids": list(room_map.values()) or [0]},
        ).scalar()
    existing = _load_existing(session, channel_id, [r.external_id for r in latest])
    result.acked_before = {ext: e.acked_revisions for ext, e in existing.items()}
    plan = plan_page(latest, existing, room_map, rate_map)
    if property_id is None:
        # No property to book into: store every booking flagged, create no reservation.
        for p in plan.bookings:
            if p.action in ("new", "update"):
                p.action, p.error = "unmapped", "channel has no property and no room mappings"
        plan.inventory_delta.clear()
        plan.added_nights.clear()
    guest_ids = _upsert_guests(session, plan.bookings)
    first = (
        _upsert_reservations(
            session, channel_id, channel_name, property_id, plan.bookings, guest_ids
        )
        if property_id is not None
        else {}
    )
    _upsert_channel_bookings(session, channel_id, plan.bookings, first)
    oversold = apply_inventory_delta(session, plan.inventory_delta)
    flagged = [ext for ext, added in plan.added_nights.items() if added & oversold]
    _flag_overbooked(session, channel_id, flagged)
    for p in plan.bookings:
        result.acknowledgeable.append(p.record.external_id)
        if p.action == "new":
            result.new += 1
        elif p.action == "update":
            result.updated += 1
        elif p.action in ("duplicate", "stale"):
            result.duplicates += 1
        elif p.action == "unmapped":
            result.unmapped += 1
            result.errors.append(f"{p.record.external_id}: {p.error}")
    result.overbooked = flagged
    result.touched = sorted(plan.inventory_delta)
    return result
