"""Pure planning of what a page of partner bookings changes in the PMS (no I/O).

The SQL side (db/repositories/bookings.py) loads the current state, calls `plan_page`, and
applies the plan in one transaction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from channels.base import BookingEvent, BookingRecord

ACTIVE_STATUSES = frozenset({"confirmed", "checked_in", "pending"})


@dataclass(frozen=True)
class ExistingRoom:
    """A reservation row already stored for one room of a channel booking."""

    reservation_id: int
    room_index: int
    room_type_id: int | None
    check_in: date
    check_out: date
    status: str
    guest_id: int


@dataclass(frozen=True)
class ExistingBooking:
    channel_booking_id: int
    revision: str | None
    rooms: tuple[ExistingRoom, ...] = ()
    acked_revisions: tuple[str, ...] = ()
    #: Digests of the messages acknowledged so far (BookingRecord.message_digest).
    acked_messages: tuple[str, ...] = ()

    def acked(self, record: BookingRecord) -> bool:
        """True when this very message (by revision or by content) was acknowledged."""
        digest = record.message_digest()
        return record.revision in self.acked_revisions or (
            digest is not None and digest in self.acked_messages)


@dataclass
class RoomRow:
    """The wanted state of one reservation (one booked room)."""

    room_index: int
    room_type_id: int
    rate_plan_id: int | None
    check_in: date
    check_out: date
    adults: int
    children: int
    amount: Decimal
    currency: str
    status: str
    #: The partner's requests and comments for this room, for the reservation's notes.
    notes: str | None = None


@dataclass
class BookingPlan:
    record: BookingRecord
    action: str  # new | update | duplicate | unmapped | stale
    rooms: list[RoomRow] = field(default_factory=list)
    cancel_room_ids: list[int] = field(default_factory=list)  # rooms gone in a modification
    error: str | None = None
    existing: ExistingBooking | None = None


@dataclass
class PagePlan:
    bookings: list[BookingPlan]
    #: Net change of sold units per (room_type_id, night).
    inventory_delta: Counter[tuple[int, date]]
    #: Nights each booking adds, to flag the ones that land on an oversold night.
    added_nights: dict[str, set[tuple[int, date]]]


def nights(check_in: date, check_out: date) -> list[date]:
    return [check_in + timedelta(days=i) for i in range((check_out - check_in).days)]


def latest_per_booking(records: list[BookingRecord]) -> tuple[list[BookingRecord], int]:
    """Keep the newest revision of each booking in a page; returns (kept, dropped count).

    Of equal revisions the later in the page wins: partners list a booking's messages in
    the order they happened, and Booking.com gives every message of an answer one revision.
    """
    best: dict[str, BookingRecord] = {}
    for rec in records:
        cur = best.get(rec.external_id)
        if cur is None or rec.revision >= cur.revision:
            best[rec.external_id] = rec
    return list(best.values()), len(records) - len(best)


def requests_note(record: BookingRecord, room_index: int) -> str | None:
    """The partner's special requests (booking-wide, then this room's) and comments as one
    text for the reservation's notes: one line each, "[code] text" where coded; None if none.
    """
    requests = list(record.special_requests)
    if 0 <= room_index < len(record.rooms):
        requests += record.rooms[room_index].special_requests
    lines: list[str] = []
    for req in requests:
        text = req.text.strip()
        line = f"[{req.code}] {text}" if req.code and text else text or (req.code or "")
        if line and line not in lines:
            lines.append(line)
    comments = (record.comments or "").strip()
    if comments and comments not in lines:
        lines.append(comments)
    return "\n".join(lines) or None


def _status_for(record: BookingRecord) -> str:
    return "cancelled" if record.event == BookingEvent.CANCELLED else "confirmed"


def _wanted_rooms(
    record: BookingRecord,
    existing: ExistingBooking | None,
    room_map: dict[str, int],
    rate_map: dict[tuple[str, str], int],
) -> tuple[list[RoomRow], str | None]:
    """Rooms as the record wants them; a cancel without dates keeps the stored ones."""
    status = _status_for(record)
    stored = {r.room_index: r for r in existing.rooms} if existing else {}
    if record.event == BookingEvent.CANCELLED and stored:
        # Partners send cancels with room type 0 and no dates: key by id, keep what we have.
        return [
            RoomRow(
                r.room_index,
                r.room_type_id or 0,
                None,
                r.check_in,
                r.check_out,
                0,
                0,
                Decimal("0"),
                record.currency or "EUR",
                "cancelled",
            )
            for r in stored.values()
        ], None
    rows: list[RoomRow] = []
    for index, room in enumerate(record.rooms):
        room_type_id = room_map.get(room.partner_room_type_code)
        if room_type_id is None:
            return [], f"unmapped room type {room.partner_room_type_code!r}"
        rate_plan_id = rate_map.get(
            (room.partner_room_type_code, room.partner_rate_plan_code or "")
        )
        check_in = (
            room.check_in
            or record.check_in
            or (stored[index].check_in if index in stored else None)
        )
        check_out = (
            room.check_out
            or record.check_out
            or (stored[index].check_out if index in stored else None)
        )
        if check_in is None or check_out is None or check_out <= check_in:
            return [], f"invalid stay dates {check_in}..{check_out}"
        amount = room.amount
        if amount is None:
            amount = (record.total_amount or Decimal("0")) / max(1, len(record.rooms))
        rows.append(
            RoomRow(
                index,
                room_type_id,
                rate_plan_id,
                check_in,
                check_out,
                room.adults,
                room.children,
                amount.quantize(Decimal("0.01")),
                room.currency or record.currency or "EUR",
                status,
                requests_note(record, index),
            )
        )
    if not rows:
        return [], "booking has no rooms"
    return rows, None


def plan_page(
    records: list[BookingRecord],
    existing: dict[str, ExistingBooking],
    room_map: dict[str, int],
    rate_map: dict[tuple[str, str], int],
) -> PagePlan:
    """Decide, per booking, what to store and how inventory moves."""
    delta: Counter[tuple[int, date]] = Counter()
    added: dict[str, set[tuple[int, date]]] = {}
    plans: list[BookingPlan] = []
    for record in records:
        prev = existing.get(record.external_id)
        if prev is not None and prev.revision is not None and record.revision <= prev.revision:
            action = "duplicate" if record.revision == prev.revision else "stale"
            plans.append(BookingPlan(record, action, existing=prev))
            continue
        rooms, error = _wanted_rooms(record, prev, room_map, rate_map)
        if error is not None:
            plans.append(BookingPlan(record, "unmapped", error=error, existing=prev))
            continue
        plan = BookingPlan(record, "update" if prev else "new", rooms=rooms, existing=prev)
        old_nights: Counter[tuple[int, date]] = Counter()
        if prev is not None:
            wanted_idx = {r.room_index for r in rooms}
            for old in prev.rooms:
                if old.status in ACTIVE_STATUSES and old.room_type_id is not None:
                    for night in nights(old.check_in, old.check_out):
                        old_nights[(old.room_type_id, night)] += 1
                if old.room_index not in wanted_idx and old.status != "cancelled":
                    plan.cancel_room_ids.append(old.reservation_id)
        new_nights: Counter[tuple[int, date]] = Counter()
        for row in rooms:
            if row.status in ACTIVE_STATUSES:
                for night in nights(row.check_in, row.check_out):
                    new_nights[(row.room_type_id, night)] += 1
        delta.update(new_nights)
        delta.subtract(old_nights)
        gained = {k for k, v in new_nights.items() if v > old_nights.get(k, 0)}
        if gained:
            added[record.external_id] = gained
        plans.append(plan)
    return PagePlan(plans, Counter({k: v for k, v in delta.items() if v}), added)
