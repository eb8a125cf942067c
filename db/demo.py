"""Demo data: one hotel ("DEMO", Europe/Lisbon, EUR) with room types, rate plans, a year of
inventory and rates, N guests and reservations, the four channels (encrypted configs aimed
at the local simulators), their mappings and channel bookings. A hotel group
(`properties=N`) adds hotels "DEMO-0002".. with the same structure, each connected to its own
hotel of the simulators' partner accounts (`channels.simulators.catalog.hotel_catalog`).

Fast by construction: batches are generated as numpy columns (db/demo_data.py), formatted
once as COPY text and streamed with psycopg COPY; ids come from the sequences as one
contiguous block per table (the tables are locked against concurrent inserts meanwhile).

Inventory `sold` = nights of reservations in ACTIVE_STATUSES (pending, confirmed,
checked_in) per room type and date; `total` covers the busiest night with 10% to spare.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import psycopg
from psycopg.copy import QueuedLibpqWriter
from psycopg.types.json import Jsonb
from sqlalchemy import Engine

from channels.base import ChannelConfig, ChannelName
from channels.simulators.catalog import hotel_catalog
from db import demo_data as d
from db.demo_copy import channel_booking_lines, guest_lines, reservation_lines
from db.repositories.channels import seal_config

DEMO_CODE = "DEMO"
DEMO_NAME = "Hotel Demo Alfama"
DEMO_TZ = "Europe/Lisbon"
CURRENCY = "EUR"
BATCH_SIZE = 25_000
EXTERNAL_ID_BASE = 9_000_000_000  # far from the simulators' ids (4_000_000_001 and up)


class DemoExistsError(RuntimeError):
    """The demo property is already there (seed with reset=True to replace it)."""


def demo_code(index: int) -> str:
    """Property code of the demo group's hotel `index` (0: the demo hotel, "DEMO")."""
    return DEMO_CODE if index == 0 else f"{DEMO_CODE}-{index + 1:04d}"


@dataclass(frozen=True)
class DemoSummary:
    property_id: int  # the first (the demo hotel)
    room_types: int
    rooms: int
    rate_plans: int
    inventory_days: int
    rate_days: int
    guests: int
    reservations: int
    channel_bookings: int
    seconds: float
    properties: int = 1


def simulator_endpoints(host: str = "127.0.0.1") -> dict[ChannelName, str]:
    """Base URL of each partner simulator as `innsync simulate --channel all` serves them
    (consecutive ports from 8100 in channels.simulators.server.ORDER)."""
    from channels.simulators.server import ORDER

    first_port = 8100  # the default --port of `innsync simulate`
    return {channel: f"http://{host}:{first_port + i}" for i, channel in enumerate(ORDER)}


@contextmanager
def _connect(target: Engine | str | psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A psycopg connection: the caller's (caller commits) or a new one committed here."""
    if isinstance(target, psycopg.Connection):
        yield target
        return
    from db.engine import to_libpq_url

    url = target.url.render_as_string(hide_password=False) if isinstance(target, Engine) else target
    with psycopg.connect(to_libpq_url(url)) as conn:  # commits on success, rolls back on error
        yield conn


def seed_demo(
    target: Engine | str | psycopg.Connection,
    *,
    reservations: int = 1000,
    seed: int = 42,
    reset: bool = False,
    today: date | None = None,
    batch_size: int = BATCH_SIZE,
    properties: int = 1,
) -> DemoSummary:
    """Create the demo hotel, or a group of `properties` demo hotels, each with
    `reservations` reservations (and as many guests); all in one transaction. Refuses when
    a demo hotel exists unless `reset` (which deletes every demo hotel first)."""
    if reservations < 0:
        raise ValueError("reservations must be >= 0")
    if properties < 1:
        raise ValueError("properties must be >= 1")
    started = time.perf_counter()
    today = today or date.today()
    first: _Ids | None = None
    rooms = channel_bookings = 0
    with _connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, code FROM properties WHERE code = %s OR code LIKE %s "
                    "ORDER BY id FOR UPDATE", (DEMO_CODE, f"{DEMO_CODE}-%"))
        existing = cur.fetchall()
        if existing and not reset:
            raise DemoExistsError(
                f"the demo property {existing[0][1]!r} already exists (id {existing[0][0]}); "
                "use --reset to replace it"
            )
        for property_id, _ in existing:
            delete_demo(cur, int(property_id))  # type: ignore[call-overload]
        if reservations:
            cur.execute("LOCK TABLE guests, reservations, channel_bookings "
                        "IN SHARE ROW EXCLUSIVE MODE")
        # The foreign keys are dropped and re-added once for the whole group (per hotel, a
        # 1,000-hotel group ran the embedded server out of shared memory: lock table).
        with (_foreign_keys_checked_at_end(cur, ("reservations", "channel_bookings"))
              if reservations else contextlib.nullcontext()):
            for index in range(properties):
                ids = _structure(cur, today, index)
                first = first or ids
                counts = _reservations(cur, ids, reservations, seed + index, today, batch_size)
                units = [max(base, math.ceil(peak * 1.1)) for base, peak in
                         zip((r[3] for r in d.ROOM_TYPES), counts.sold.max(axis=1), strict=True)]
                rooms += _calendars(cur, ids, units, counts.sold, today)
                channel_bookings += counts.channel_bookings
    assert first is not None
    return DemoSummary(
        property_id=first.property_id, room_types=len(d.ROOM_TYPES) * properties, rooms=rooms,
        rate_plans=len(first.rate_plans) * properties,
        inventory_days=len(d.ROOM_TYPES) * d.DAYS * properties,
        rate_days=len(first.rate_plans) * d.DAYS * properties,
        guests=reservations * properties, reservations=reservations * properties,
        channel_bookings=channel_bookings, seconds=round(time.perf_counter() - started, 2),
        properties=properties,
    )


def delete_demo(cur: psycopg.Cursor[tuple[object, ...]], property_id: int) -> None:
    """Delete the demo property and everything seeded with it (its guests included)."""
    p = {"p": property_id}
    cur.execute(
        "DELETE FROM channel_bookings WHERE channel_id IN "
        "(SELECT id FROM channels WHERE property_id = %(p)s) OR reservation_id IN "
        "(SELECT id FROM reservations WHERE property_id = %(p)s)", p)
    cur.execute("CREATE TEMP TABLE demo_guests ON COMMIT DROP AS "
                "SELECT DISTINCT guest_id AS id FROM reservations WHERE property_id = %(p)s", p)
    cur.execute("DELETE FROM reservations WHERE property_id = %(p)s", p)
    cur.execute("DELETE FROM guests g USING demo_guests x WHERE g.id = x.id AND NOT EXISTS "
                "(SELECT 1 FROM reservations r WHERE r.guest_id = g.id)")
    cur.execute("DROP TABLE demo_guests")
    cur.execute("DELETE FROM channels WHERE property_id = %(p)s", p)
    cur.execute("DELETE FROM properties WHERE id = %(p)s", p)


@dataclass(frozen=True)
class _Ids:
    property_id: int
    room_types: list[int]  # by index in ROOM_TYPES
    rate_plans: dict[tuple[int, int], int]  # (room type index, plan index) -> id
    channels: dict[ChannelName, int]


def _structure(cur: psycopg.Cursor[tuple[object, ...]], today: date, index: int = 0) -> _Ids:
    """Hotel `index` of the demo group: property, room types, rate plans, its four channels
    (aimed at hotel `index` of each simulated partner account) and their mappings."""
    hotel_name = DEMO_NAME if index == 0 else f"{DEMO_NAME} {index + 1}"
    cur.execute(
        "INSERT INTO properties (code, name, timezone, currency) VALUES (%s, %s, %s, %s) "
        "RETURNING id", (demo_code(index), hotel_name, DEMO_TZ, CURRENCY))
    property_id = _one_id(cur)
    room_types, rate_plans = [], {}
    for rt, (code, name, occ, units, _, _) in enumerate(d.ROOM_TYPES):
        cur.execute(
            "INSERT INTO room_types (property_id, code, name, max_occupancy, total_units) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id", (property_id, code, name, occ, units))
        room_types.append(_one_id(cur))
        for rp, (pcode, pname, _, meal, refundable, _) in enumerate(d.RATE_PLANS):
            cur.execute(
                "INSERT INTO rate_plans (property_id, room_type_id, code, name, currency, "
                "meal_plan, refundable) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (property_id, room_types[rt], pcode, f"{pname} – {name}", CURRENCY, meal,
                 refundable))
            rate_plans[(rt, rp)] = _one_id(cur)
    channels = {}
    accounts = _accounts(cur)
    for channel in ChannelName:
        catalog = hotel_catalog(channel, index)
        # The channel is the account's connection to this hotel: the account's hotel id.
        config = ChannelConfig.model_validate({
            "propertyId": catalog["hotel_id"], "hotelId": catalog["hotel_id"]})
        encrypted, public = seal_config(config)
        cur.execute(
            "INSERT INTO channels (property_id, name, channel_name, enabled, config_encrypted, "
            "config_public, account_id) VALUES (%s, %s, %s, true, %s, %s, %s) RETURNING id",
            (property_id, f"Demo {channel.value}" if index == 0 else f"{hotel_name} {channel.value}",
             channel.value, encrypted, Jsonb(public), accounts[channel]))
        channels[channel] = channel_id = _one_id(cur)
        for rt, (code, *_) in enumerate(d.ROOM_TYPES):
            room_code = catalog["room_types"][code]
            cur.execute(
                "INSERT INTO channel_room_mappings (channel_id, room_type_id, partner_room_code) "
                "VALUES (%s, %s, %s)", (channel_id, room_types[rt], room_code))
            for rp, (pcode, *_) in enumerate(d.RATE_PLANS):
                if pcode in catalog["rate_plans"]:
                    cur.execute(
                        "INSERT INTO channel_rate_mappings (channel_id, rate_plan_id, "
                        "partner_room_code, partner_rate_code) VALUES (%s, %s, %s, %s)",
                        (channel_id, rate_plans[(rt, rp)], room_code,
                         catalog["rate_plans"][pcode]))
    return _Ids(property_id, room_types, rate_plans, channels)


def _accounts(cur: psycopg.Cursor[tuple[object, ...]]) -> dict[ChannelName, int]:
    """The demo's partner accounts, one per partner (made on first use): the group's hotels
    share each, as a channel manager's hotels share its one machine account / EQC user /
    key (one token, one account-wide reservations queue for all of them)."""
    endpoints = simulator_endpoints()
    out = {}
    for channel in ChannelName:
        encrypted, public = seal_config(ChannelConfig.model_validate({
            "apiKey": f"demo-{channel.value}-key",
            "apiSecret": f"demo-secret-{channel.value}-account",
            "endpoint": endpoints[channel]}))
        cur.execute(
            "INSERT INTO partner_accounts (name, channel_name, config_encrypted, config_public) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name "
            "RETURNING id", (f"Demo {channel.value} account", channel.value, encrypted,
                             Jsonb(public)))
        out[channel] = _one_id(cur)
    return out


def _one_id(cur: psycopg.Cursor[tuple[object, ...]]) -> int:
    row = cur.fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def _reserve_ids(cur: psycopg.Cursor[tuple[object, ...]], table: str, count: int) -> int:
    """First id of a contiguous block of `count` ids from the table's sequence. The caller
    holds a lock that keeps concurrent inserts (the other nextval callers) out."""
    cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,))
    seq = cur.fetchone()
    assert seq is not None
    cur.execute("SELECT nextval(%s)", (seq[0],))
    first = _one_id(cur)
    if count > 1:
        cur.execute("SELECT setval(%s, %s)", (seq[0], first + count - 1))
    return first


@dataclass
class _Counts:
    sold: d.IntArray
    channel_bookings: int = 0


def _batches(seed: int, total: int, size: int) -> Iterator[tuple[int, d.Batch]]:
    """(offset of the batch's first row, batch) for a run of `total` reservations."""
    for index, offset in enumerate(range(0, total, size)):
        yield offset, d.generate_batch(seed, index, min(size, total - offset))


def _reservations(cur: psycopg.Cursor[tuple[object, ...]], ids: _Ids, total: int, seed: int,
                  today: date, size: int) -> _Counts:
    """COPY guests, reservations and channel bookings, one table per pass (each pass
    regenerates the same seeded batches, so nothing is held for the whole run). The caller
    holds the tables' lock and has their foreign keys dropped until the end."""
    counts = _Counts(sold=np.zeros((len(d.ROOM_TYPES), d.DAYS), dtype=np.int64))
    if total == 0:
        return counts
    _copy_reservations(cur, ids, total, seed, today, size, counts)
    return counts


@contextmanager
def _foreign_keys_checked_at_end(
    cur: psycopg.Cursor[tuple[object, ...]], tables: tuple[str, ...]
) -> Iterator[None]:
    """Drop the tables' foreign keys for the block and add them back (same names and
    definitions) after it: PostgreSQL then checks each constraint with one join instead of
    one lookup per row, the bulk-load advice of its manual. All inside the transaction."""
    cur.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = ANY(CAST(%s AS regclass[]))", (list(tables),))
    constraints = [(str(t), str(n), str(df)) for t, n, df in cur.fetchall()]
    for table, name, _ in constraints:
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    yield
    for table, name, definition in constraints:
        cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def _copy_reservations(cur: psycopg.Cursor[tuple[object, ...]], ids: _Ids, total: int,
                       seed: int, today: date, size: int, counts: _Counts) -> None:
    first_guest = _reserve_ids(cur, "guests", total)
    first_res = _reserve_ids(cur, "reservations", total)
    prices = d.PriceTable.build(today)
    days = [str(today + timedelta(days=o)) for o in range(-d.PAST_DAYS - 130, d.DAYS + 10)]
    day = days.__getitem__
    base = d.PAST_DAYS + 130  # index of today in `days`

    with cur.copy("COPY guests (id, first_name, last_name, email, phone, country, created_at, "
                  "updated_at) FROM STDIN", writer=QueuedLibpqWriter(cur)) as copy:
        for offset, batch in _batches(seed, total, size):
            copy.write(guest_lines(batch, first_guest + offset, day, base))
    with cur.copy("COPY reservations (id, property_id, guest_id, room_type_id, rate_plan_id, "
                  "confirmation_code, check_in, check_out, adults, children, amount, currency, "
                  "status, source_channel, channel_id, external_ref, created_at, updated_at) "
                  "FROM STDIN", writer=QueuedLibpqWriter(cur)) as copy:
        for offset, batch in _batches(seed, total, size):
            d.add_sold(counts.sold, batch)
            copy.write(reservation_lines(batch, ids, first_res + offset, first_guest + offset,
                                         prices, day, base, EXTERNAL_ID_BASE))
    with cur.copy("COPY channel_bookings (channel_id, reservation_id, external_booking_id, "
                  "revision, status, raw_payload, sync_status, acknowledged_at, last_synced_at, "
                  "created_at, updated_at) FROM STDIN", writer=QueuedLibpqWriter(cur)) as copy:
        for offset, batch in _batches(seed, total, size):
            data, n = channel_booking_lines(batch, ids, first_res + offset, prices, day, base,
                                            EXTERNAL_ID_BASE)
            counts.channel_bookings += n
            copy.write(data)


def _calendars(cur: psycopg.Cursor[tuple[object, ...]], ids: _Ids, units: list[int],
               sold: d.IntArray, today: date) -> int:
    """Rooms, a year of inventory (with sold) and rates; returns the number of rooms."""
    rows: list[tuple[object, ...]] = []
    number = 0
    for rt, count in enumerate(units):
        cur.execute("UPDATE room_types SET total_units = %s WHERE id = %s",
                    (count, ids.room_types[rt]))
        for _ in range(count):
            floor = 1 + number // 40
            rows.append((ids.property_id, ids.room_types[rt], f"{floor}{number % 40 + 1:02d}",
                         floor))
            number += 1
    with cur.copy("COPY rooms (property_id, room_type_id, number, floor) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    with cur.copy("COPY inventory (room_type_id, date, total, sold) FROM STDIN") as copy:
        for rt, count in enumerate(units):
            for offset in range(d.DAYS):
                copy.write_row((ids.room_types[rt], today + timedelta(days=offset), count,
                                int(sold[rt, offset])))
    with cur.copy("COPY rates (rate_plan_id, date, amount, currency) FROM STDIN") as copy:
        for (rt, rp), plan_id in ids.rate_plans.items():
            for offset in range(d.DAYS):
                cents = prices_cents(rt, rp, today, offset)
                copy.write_row((plan_id, today + timedelta(days=offset),
                                f"{cents // 100}.{cents % 100:02d}", CURRENCY))
    return number


def prices_cents(rt: int, rp: int, today: date, offset: int) -> int:
    """Cents of one night (the same prices the reservation amounts were summed from)."""
    return int(d.nightly_price(rt, rp, today + timedelta(days=offset)) * 100)
