"""Storing a page of partner bookings exactly once, in one transaction, with set-based SQL.

Order inside the transaction: lock the channel's ingest (advisory lock), read what is
stored, plan (pure), then guests -> reservations -> channel_bookings (+ channel_booking_rooms,
same statement) -> inventory. The caller commits and only then acknowledges to the partner.

What the PMS uses is stored in columns: on channel_bookings the stay, amounts, payment (card
type and last 4 digits at most), booker, policy, penalties/extras/requests (jsonb), loyalty
and the partner group id; one channel_booking_rooms row per booked room (nightly prices,
meal plan, staying guest, room extras/requests). A message that omits a value (a cancel
without amounts) keeps the stored one; a modification replaces lists, a cancel without them
keeps them. Reservations get the partner's requests and comments as notes, replaced by a
later message only while nobody edited them; the booker's e-mail/phone/country go to the
guest.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from channels.base import BookingEvent, BookingRecord, SpecialRequest
from channels.pci import scrub_text
from db.models import ChannelBooking
from db.repositories.booking_plan import (
    BookingPlan,
    ExistingBooking,
    ExistingRoom,
    latest_per_booking,
    plan_page,
    requests_note,
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
    #: Messages of the page that were acknowledged before it (a re-delivery: not applied,
    #: not acknowledged again), as (partner booking id, revision, digest) keys.
    #: They are counted as duplicates.
    acked_before: set[tuple[str, str, str | None]] = field(default_factory=set)

    @property
    def success(self) -> int:
        return self.new + self.updated + self.duplicates + self.unmapped


def booking_ref(session: Session, channel_booking_id: int) -> tuple[int, str] | None:
    """(channel id, partner booking id) of a stored channel booking, None if there is none."""
    row = session.execute(
        select(ChannelBooking.channel_id, ChannelBooking.external_booking_id).where(
            ChannelBooking.id == channel_booking_id
        )
    ).first()
    return None if row is None else (row.channel_id, row.external_booking_id)


def mark_acknowledged(session: Session, channel_id: int, acked: list[BookingRecord]) -> None:
    """Record messages as acknowledged to the partner: their revisions and content digests."""
    if not acked:
        return
    session.execute(
        text("""
            UPDATE channel_bookings cb SET acknowledged_at = now(),
                acked_revisions = cb.acked_revisions || u.revs,
                acked_messages = cb.acked_messages || u.digests
            FROM (SELECT ext, array_agg(rev) AS revs,
                         coalesce(array_agg(digest) FILTER (WHERE digest IS NOT NULL),
                                  '{}') AS digests
                  FROM unnest(CAST(:ext AS text[]), CAST(:rev AS text[]),
                              CAST(:digest AS text[])) AS x(ext, rev, digest)
                  GROUP BY ext) u
            WHERE cb.channel_id = :c AND cb.external_booking_id = u.ext
        """),
        {"c": channel_id, "ext": [r.external_id for r in acked],
         "rev": [r.revision for r in acked], "digest": [r.message_digest() for r in acked]},
    )


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
                   cb.acked_messages,
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
            row.id, row.revision, rooms, tuple(row.acked_revisions or ()),
            tuple(row.acked_messages or ()),
        )
    return out


def _payloads(records: Iterable[BookingRecord]) -> str:
    """The raw payloads as one JSON array (already PCI-masked by the adapters)."""
    return json.dumps([r.raw_payload for r in records], default=str, ensure_ascii=False)


def _scrubbed(record: BookingRecord) -> BookingRecord:
    """The record with card-number-looking runs masked in its free texts (comments, special
    requests): they become columns and reservation notes, so a number a guest typed must not.
    """
    rooms_with = [room for room in record.rooms if room.special_requests]
    if not (record.comments or record.special_requests or rooms_with):
        return record

    def requests(items: list[SpecialRequest]) -> list[SpecialRequest]:
        return [q.model_copy(update={"text": scrub_text(q.text)}) for q in items]

    return record.model_copy(
        update={
            "comments": scrub_text(record.comments) if record.comments else record.comments,
            "special_requests": requests(record.special_requests),
            "rooms": [
                room.model_copy(update={"special_requests": requests(room.special_requests)})
                if room.special_requests
                else room
                for room in record.rooms
            ],
        }
    )


def _country(code: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 code as stored (upper case), or None for anything else."""
    if code and len(code) == 2 and code.isalpha():
        return code.upper()
    return None


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
                "co": [_country(x.country) for x in g],
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
                    country = COALESCE(u.co, g.country), updated_at = now()
                FROM unnest(CAST(:id AS bigint[]), CAST(:fn AS text[]), CAST(:ln AS text[]),
                            CAST(:em AS text[]), CAST(:ph AS text[]), CAST(:co AS text[]))
                    AS u(id, fn, ln, em, ph, co)
                WHERE g.id = u.id
            """),
            {
                "id": [p.existing.rooms[0].guest_id for p in updates if p.existing],
                "fn": [p.record.guest.first_name[:100] for p in updates],
                "ln": [p.record.guest.last_name[:100] for p in updates],
                "em": [p.record.guest.email for p in updates],
                "ph": [p.record.guest.phone for p in updates],
                "co": [_country(p.record.guest.country) for p in updates],
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
    overbooked: set[str],
) -> dict[str, dict[int, int]]:
    """Insert or update one reservation per booked room (flagged overbooked, unless
    cancelled, when its booking is in `overbooked`; a flag is never cleared here); returns
    the reservation ids per booking and room index."""
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "ext",
            "idx",
            "guest",
            "rt",
            "rp",
            "ci",
            "co",
            "ad",
            "ch",
            "amt",
            "cur",
            "st",
            "notes",
            "ob",
        )
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
            cols["notes"].append(row.notes)
            cols["ob"].append(p.record.external_id in overbooked)
    stored_ids: dict[str, dict[int, int]] = {}
    if cols["ext"]:
        rows = session.execute(
            text("""
                INSERT INTO reservations AS r (property_id, guest_id, room_type_id, rate_plan_id,
                    check_in, check_out, adults, children, amount, currency, status,
                    source_channel, channel_id, external_ref, room_index, confirmation_code,
                    notes, overbooked)
                SELECT :prop, u.guest, u.rt, u.rp, u.ci, u.co, u.ad, u.ch, u.amt, u.cur, u.st,
                       CAST(:cname AS text), :c, u.ext, u.idx, CAST(:cname AS text) || ':' || u.ext || ':' || u.idx,
                       u.notes, u.ob AND u.st <> 'cancelled'
                FROM unnest(CAST(:ext AS text[]), CAST(:idx AS int[]), CAST(:guest AS bigint[]),
                    CAST(:rt AS bigint[]), CAST(:rp AS bigint[]), CAST(:ci AS date[]),
                    CAST(:co AS date[]), CAST(:ad AS int[]), CAST(:ch AS int[]),
                    CAST(:amt AS numeric[]), CAST(:cur AS text[]), CAST(:st AS text[]),
                    CAST(:notes AS text[]), CAST(:ob AS boolean[]))
                    AS u(ext, idx, guest, rt, rp, ci, co, ad, ch, amt, cur, st, notes, ob)
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
                    status = EXCLUDED.status,
                    -- the partner's requests replace the notes while nobody edited them (they
                    -- still hold what the partner wrote last); a cancel leaves them alone
                    notes = CASE
                        WHEN EXCLUDED.status = 'cancelled' THEN r.notes
                        WHEN r.notes IS NULL OR r.notes = (
                            SELECT b.requests_note FROM channel_bookings cb
                            JOIN channel_booking_rooms b ON b.channel_booking_id = cb.id
                            WHERE cb.channel_id = r.channel_id
                              AND cb.external_booking_id = r.external_ref
                              AND b.room_index = r.room_index) THEN EXCLUDED.notes
                        ELSE r.notes END,
                    overbooked = r.overbooked OR EXCLUDED.overbooked,
                    updated_at = now()
                RETURNING r.id, r.external_ref, r.room_index
            """),
            {"prop": property_id, "cname": channel_name, "c": channel_id, **cols},
        ).all()
        for stored in rows:
            stored_ids.setdefault(stored.external_ref, {})[stored.room_index] = stored.id
    gone = [rid for p in plans for rid in p.cancel_room_ids]
    if gone:
        session.execute(
            text(
                "UPDATE reservations SET status = 'cancelled', updated_at = now() "
                "WHERE id = ANY(CAST(:ids AS bigint[]))"
            ),
            {"ids": gone},
        )
    return stored_ids


#: What of a BookingRecord goes to the structured columns (the raw payload travels apart).
_RECORD_JSON_EXCLUDE: dict[str, Any] = {"raw_payload": True, "ack_token": True, "channel": True}

# Each todo booking is one element of the arrays below; the record's structured fields travel
# as one JSON array (pydantic serializes each record in Rust) and are spread into columns by
# PostgreSQL. Rooms go to channel_booking_rooms in the same statement. Scalars absent from a
# message keep the stored value; lists are replaced, except by a cancel that carries none.
_UPSERT_CHANNEL_BOOKINGS = """
WITH u AS MATERIALIZED (
    SELECT * FROM ROWS FROM (
        unnest(CAST(:ext AS text[])), unnest(CAST(:rev AS text[])), unnest(CAST(:st AS text[])),
        -- payloads travel as one JSON array: a text[] of JSON strings costs psycopg a regex
        -- escape per quote (17 ms for 50 bookings, against 0.8 ms this way)
        jsonb_array_elements(CAST(:payload AS jsonb)), unnest(CAST(:sync AS text[])),
        unnest(CAST(:err AS text[])), unnest(CAST(:res AS bigint[])),
        jsonb_array_elements(CAST(:recs AS jsonb)), unnest(CAST(:cancel AS boolean[])),
        unnest(CAST(:write_rooms AS boolean[])), jsonb_array_elements(CAST(:notes AS jsonb)),
        unnest(CAST(:country AS text[])), jsonb_array_elements(CAST(:room_res AS jsonb)),
        unnest(CAST(:trim_rooms AS boolean[])), unnest(CAST(:ob AS boolean[]))
    ) AS u(ext, rev, st, payload, sync, err, res, rec, cancel, write_rooms, notes, country,
           room_res, trim_rooms, ob)
),
up AS (
    INSERT INTO channel_bookings AS cb (channel_id, external_booking_id, revision, status,
        raw_payload, sync_status, sync_error, reservation_id, last_synced_at,
        hotel_code, check_in, check_out, booked_at, total_amount, amount_before_tax, taxes,
        commission, currency, payment_model, card_type, card_last4, card_activation_date,
        card_deactivation_date, card_amount, booker_first_name, booker_last_name,
        booker_email, booker_phone, booker_country, language, loyalty, group_id, source,
        cancel_policy, cancel_penalties, extras, special_requests, comments, overbooked)
    SELECT :c, u.ext, u.rev, u.st, u.payload, u.sync, u.err, u.res, now(),
        r.hotel_code, r.check_in, r.check_out, r.booked_at, r.total_amount,
        r.amount_before_tax, r.taxes, r.commission, left(r.currency, 3),
        NULLIF(r.payment->>'model', 'unknown'), left(r.payment->>'card_type', 20),
        -- never more than the last four digits, whatever an adapter hands over
        NULLIF(right(regexp_replace(
            COALESCE(r.payment->>'card_last4', r.card_last4, ''), '[^0-9]', '', 'g'), 4), ''),
        CAST(r.payment->>'activation_date' AS date),
        CAST(r.payment->>'deactivation_date' AS date),
        CAST(r.payment->>'card_amount' AS numeric),
        NULLIF(r.guest->>'first_name', ''), NULLIF(r.guest->>'last_name', ''),
        r.guest->>'email', r.guest->>'phone', u.country,
        COALESCE(r.language, r.guest->>'language'),
        CASE WHEN u.cancel AND cardinality(r.loyalty) = 0 THEN NULL ELSE r.loyalty END,
        left(r.group_id, 128), r.source, r.cancel_policy,
        CASE WHEN u.cancel AND r.cancel_penalties = '[]' THEN NULL ELSE r.cancel_penalties END,
        CASE WHEN u.cancel AND r.extras = '[]' THEN NULL ELSE r.extras END,
        CASE WHEN u.cancel AND r.special_requests = '[]' THEN NULL ELSE r.special_requests END,
        r.comments, u.ob
    FROM u
    CROSS JOIN LATERAL jsonb_to_record(u.rec) AS r(hotel_code text, check_in date,
        check_out date, booked_at timestamptz, total_amount numeric, amount_before_tax numeric,
        taxes numeric, commission numeric, currency text, card_last4 text, payment jsonb,
        guest jsonb, language text, loyalty text[], group_id text, source text,
        cancel_policy text, cancel_penalties jsonb, extras jsonb, special_requests jsonb,
        comments text)
    ON CONFLICT (channel_id, external_booking_id) DO UPDATE SET
        revision = EXCLUDED.revision, status = EXCLUDED.status,
        raw_payload = EXCLUDED.raw_payload, sync_status = EXCLUDED.sync_status,
        sync_error = EXCLUDED.sync_error,
        reservation_id = COALESCE(EXCLUDED.reservation_id, cb.reservation_id),
        last_synced_at = now(), updated_at = now(),
        hotel_code = COALESCE(EXCLUDED.hotel_code, cb.hotel_code),
        check_in = COALESCE(EXCLUDED.check_in, cb.check_in),
        check_out = COALESCE(EXCLUDED.check_out, cb.check_out),
        booked_at = COALESCE(EXCLUDED.booked_at, cb.booked_at),
        total_amount = COALESCE(EXCLUDED.total_amount, cb.total_amount),
        amount_before_tax = COALESCE(EXCLUDED.amount_before_tax, cb.amount_before_tax),
        taxes = COALESCE(EXCLUDED.taxes, cb.taxes),
        commission = COALESCE(EXCLUDED.commission, cb.commission),
        currency = COALESCE(EXCLUDED.currency, cb.currency),
        payment_model = COALESCE(EXCLUDED.payment_model, cb.payment_model),
        card_type = COALESCE(EXCLUDED.card_type, cb.card_type),
        card_last4 = COALESCE(EXCLUDED.card_last4, cb.card_last4),
        card_activation_date = COALESCE(EXCLUDED.card_activation_date, cb.card_activation_date),
        card_deactivation_date
            = COALESCE(EXCLUDED.card_deactivation_date, cb.card_deactivation_date),
        card_amount = COALESCE(EXCLUDED.card_amount, cb.card_amount),
        booker_first_name = COALESCE(EXCLUDED.booker_first_name, cb.booker_first_name),
        booker_last_name = COALESCE(EXCLUDED.booker_last_name, cb.booker_last_name),
        booker_email = COALESCE(EXCLUDED.booker_email, cb.booker_email),
        booker_phone = COALESCE(EXCLUDED.booker_phone, cb.booker_phone),
        booker_country = COALESCE(EXCLUDED.booker_country, cb.booker_country),
        language = COALESCE(EXCLUDED.language, cb.language),
        loyalty = COALESCE(EXCLUDED.loyalty, cb.loyalty),
        group_id = COALESCE(EXCLUDED.group_id, cb.group_id),
        source = COALESCE(EXCLUDED.source, cb.source),
        cancel_policy = COALESCE(EXCLUDED.cancel_policy, cb.cancel_policy),
        cancel_penalties = COALESCE(EXCLUDED.cancel_penalties, cb.cancel_penalties),
        extras = COALESCE(EXCLUDED.extras, cb.extras),
        special_requests = COALESCE(EXCLUDED.special_requests, cb.special_requests),
        comments = COALESCE(EXCLUDED.comments, cb.comments),
        overbooked = cb.overbooked OR EXCLUDED.overbooked
    -- an older revision never overwrites a newer one
    WHERE cb.revision IS NULL OR cb.revision < EXCLUDED.revision
    RETURNING cb.id, cb.external_booking_id
),
mine AS (
    SELECT up.id, u.ext, u.rec, u.notes, u.room_res, u.trim_rooms
    FROM up JOIN u ON u.ext = up.external_booking_id
    WHERE u.write_rooms
),
gone AS (
    -- rooms a modification no longer has: one index probe per modified booking (a subquery
    -- per stored room instead scanned `mine` once per room: 3.6 s for 3,600 modifications)
    DELETE FROM channel_booking_rooms d
    USING mine m
    WHERE m.trim_rooms AND d.channel_booking_id = m.id
      AND d.room_index >= jsonb_array_length(m.rec->'rooms')
)
INSERT INTO channel_booking_rooms AS b (channel_booking_id, room_index, reservation_id,
    external_room_id, partner_room_type_code, partner_rate_plan_code, room_name,
    rate_plan_name, meal_plan, check_in, check_out, adults, children, child_ages, extra_beds,
    smoking, amount, amount_before_tax, taxes, commission, currency, guest_first_name,
    guest_last_name, guest_email, guest_phone, guest_country, nightly_prices, extras,
    special_requests, requests_note)
SELECT mine.id, e.ord - 1, CAST(mine.room_res->>CAST(e.ord - 1 AS int) AS bigint),
    x.external_room_id, x.partner_room_type_code,
    x.partner_rate_plan_code, x.room_name, x.rate_plan_name, x.meal_plan,
    COALESCE(x.check_in, CAST(mine.rec->>'check_in' AS date)),
    COALESCE(x.check_out, CAST(mine.rec->>'check_out' AS date)),
    x.adults, x.children, COALESCE(x.child_ages, '{}'), x.extra_beds, x.smoking, x.amount,
    x.amount_before_tax, x.taxes, x.commission,
    left(COALESCE(x.currency, mine.rec->>'currency'), 3),
    NULLIF(x.guest->>'first_name', ''), NULLIF(x.guest->>'last_name', ''),
    x.guest->>'email', x.guest->>'phone',
    CASE WHEN x.guest->>'country' ~ '^[A-Za-z]{2}$' THEN upper(x.guest->>'country') END,
    CASE WHEN x.nightly_prices = '[]' AND x.nightly_rates <> '{}' THEN (
        SELECT jsonb_agg(jsonb_build_object('night', n.night, 'amount', n.amount)
                         ORDER BY n.night)
        FROM jsonb_each(x.nightly_rates) AS n(night, amount))
    ELSE x.nightly_prices END,
    x.extras, x.special_requests, mine.notes->>CAST(e.ord - 1 AS int)
FROM mine
CROSS JOIN LATERAL jsonb_array_elements(mine.rec->'rooms') WITH ORDINALITY AS e(room, ord)
CROSS JOIN LATERAL jsonb_to_record(e.room) AS x(external_room_id text,
    partner_room_type_code text, partner_rate_plan_code text, room_name text,
    rate_plan_name text, meal_plan text, check_in date, check_out date, adults int,
    children int, child_ages int[], extra_beds int, smoking boolean, amount numeric,
    amount_before_tax numeric, taxes numeric, commission numeric, currency text, guest jsonb,
    nightly_prices jsonb, nightly_rates jsonb, extras jsonb, special_requests jsonb)
ON CONFLICT (channel_booking_id, room_index) DO UPDATE SET
    reservation_id = COALESCE(EXCLUDED.reservation_id, b.reservation_id),
    external_room_id = EXCLUDED.external_room_id,
    partner_room_type_code = EXCLUDED.partner_room_type_code,
    partner_rate_plan_code = EXCLUDED.partner_rate_plan_code,
    room_name = EXCLUDED.room_name, rate_plan_name = EXCLUDED.rate_plan_name,
    meal_plan = EXCLUDED.meal_plan, check_in = EXCLUDED.check_in,
    check_out = EXCLUDED.check_out, adults = EXCLUDED.adults, children = EXCLUDED.children,
    child_ages = EXCLUDED.child_ages, extra_beds = EXCLUDED.extra_beds,
    smoking = EXCLUDED.smoking, amount = EXCLUDED.amount,
    amount_before_tax = EXCLUDED.amount_before_tax, taxes = EXCLUDED.taxes,
    commission = EXCLUDED.commission, currency = EXCLUDED.currency,
    guest_first_name = EXCLUDED.guest_first_name, guest_last_name = EXCLUDED.guest_last_name,
    guest_email = EXCLUDED.guest_email, guest_phone = EXCLUDED.guest_phone,
    guest_country = EXCLUDED.guest_country, nightly_prices = EXCLUDED.nightly_prices,
    extras = EXCLUDED.extras, special_requests = EXCLUDED.special_requests,
    requests_note = EXCLUDED.requests_note, updated_at = now()
"""


def _upsert_channel_bookings(
    session: Session,
    channel_id: int,
    plans: list[BookingPlan],
    reservation_ids: dict[str, dict[int, int]],
    overbooked: set[str],
) -> None:
    """Insert or update the bookings and their rooms (flagged overbooked when in
    `overbooked`; a flag is never cleared here)."""
    todo = [p for p in plans if p.action in ("new", "update", "unmapped")]
    if not todo:
        return
    records = [p.record for p in todo]
    cancels = [r.event == BookingEvent.CANCELLED for r in records]
    # A cancel's rooms (often room type 0, no dates) never replace the stored ones.
    write_rooms = [bool(r.rooms) and not c for r, c in zip(records, cancels, strict=True)]
    room_ids = [reservation_ids.get(r.external_id, {}) for r in records]
    # Rooms a modification dropped can only exist for bookings stored before.
    trim = [w and p.existing is not None for p, w in zip(todo, write_rooms, strict=True)]
    session.execute(
        text(_UPSERT_CHANNEL_BOOKINGS),
        {
            "c": channel_id,
            "ext": [r.external_id for r in records],
            "rev": [r.revision for r in records],
            "st": [r.status for r in records],
            "payload": _payloads(records),
            "sync": ["unmapped" if p.action == "unmapped" else "synced" for p in todo],
            "err": [p.error for p in todo],
            # the booking's first room's reservation; each room row gets its own
            "res": [min(ids.items())[1] if ids else None for ids in room_ids],
            "room_res": json.dumps(
                [
                    [ids.get(i) for i in range(len(r.rooms))] if w else []
                    for r, w, ids in zip(records, write_rooms, room_ids, strict=True)
                ]
            ),
            "recs": "["
            + ",".join(
                r.model_dump_json(exclude=_RECORD_JSON_EXCLUDE, exclude_none=True) for r in records
            )
            + "]",
            "cancel": cancels,
            "write_rooms": write_rooms,
            "trim_rooms": trim,
            "notes": json.dumps(
                [
                    [requests_note(r, i) for i in range(len(r.rooms))] if w else []
                    for r, w in zip(records, write_rooms, strict=True)
                ],
                ensure_ascii=False,
            ),
            "country": [_country(r.guest.country) for r in records],
            "ob": [r.external_id in overbooked for r in records],
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


def ack_key(record: BookingRecord) -> tuple[str, str, str | None]:
    """What identifies one delivered message: booking id, revision, content digest."""
    return record.external_id, record.revision, record.message_digest()


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
    # JIT compiling these wide statements costs more than it saves (measured 10,000 bookings:
    # the reservations upsert 8.8 s with JIT, 3.8 s without; the same on smaller pages).
    session.execute(text("SET LOCAL jit = off"))
    # A large page's upsert materialises its parameters (payloads, records) and sorts them:
    # with the default 4 MB they spilled to temporary files (140 MB written for a
    # 10,000-booking page); 6.7 -> 4.9 s for that statement (bench/ingest.py --path flow).
    session.execute(text("SET LOCAL work_mem = '64MB'"))
    # One ingest per channel at a time: a webhook-triggered fetch and a poll may overlap.
    session.execute(
        text("SELECT pg_advisory_xact_lock(:ns, :c)"),
        {"ns": INGEST_LOCK_NAMESPACE, "c": channel_id},
    )
    existing = _load_existing(session, channel_id, sorted({r.external_id for r in records}))
    # A message acknowledged before is a re-delivery, whatever revision it now carries
    # (Booking.com's is the answer's TimeStamp): applying it again could revert a later one.
    fresh: list[BookingRecord] = []
    for rec in records:
        prev = existing.get(rec.external_id)
        if prev is not None and prev.acked(rec):
            result.acked_before.add(ack_key(rec))
        else:
            fresh.append(rec)
    latest, dropped_in_page = latest_per_booking(fresh)
    latest = [_scrubbed(r) for r in latest]
    result.duplicates += dropped_in_page + len(records) - len(fresh)
    property_id, room_map, rate_map = load_mappings(session, channel_id)
    if property_id is None:
        property_id = session.execute(
            text("SELECT min(property_id) FROM room_types WHERE id = ANY(CAST(:ids AS bigint[]))"),
            {"ids": list(room_map.values()) or [0]},
        ).scalar()
    plan = plan_page(latest, existing, room_map, rate_map)
    if property_id is None:
        # No property to book into: store every booking flagged, create no reservation.
        for p in plan.bookings:
            if p.action in ("new", "update"):
                p.action, p.error = "unmapped", "channel has no property and no room mappings"
        plan.inventory_delta.clear()
        plan.added_nights.clear()
    # Sold counts first: the rows are written once, their overbooked flags with them (an
    # UPDATE afterwards made a second version of every row and re-ran its foreign-key checks,
    # as PostgreSQL does for rows inserted in the same transaction: ~3 s per 10,000).
    oversold = apply_inventory_delta(session, plan.inventory_delta)
    flagged = [ext for ext, added in plan.added_nights.items() if added & oversold]
    flagged_ids = set(flagged)
    guest_ids = _upsert_guests(session, plan.bookings)
    reservation_ids = (
        _upsert_reservations(
            session, channel_id, channel_name, property_id, plan.bookings, guest_ids,
            flagged_ids,
        )
        if property_id is not None
        else {}
    )
    _upsert_channel_bookings(session, channel_id, plan.bookings, reservation_ids, flagged_ids)
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
