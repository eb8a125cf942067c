"""COPY text lines for demo batches (tab-separated, `\\N` for NULL). The name pools hold no
tab, newline or backslash, so no escaping is needed (checked at import)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from channels.simulators.catalog import CATALOG
from db import demo_data as d

if TYPE_CHECKING:
    from db.demo import _Ids

assert not any(ch in name for name in d.FIRST + d.LAST for ch in "\t\n\r\\")

NULL = "\\N"
TIMES = [f"{m // 60:02d}:{m % 60:02d}:00+00" for m in range(24 * 60)]
SOURCE_NAMES = [s.value if s else NULL for s in d.SOURCES]
#: Partner status of a channel booking, by reservation status.
PARTNER_STATUS = {"cancelled": "cancelled", "no_show": "no_show"}
Day = Callable[[int], str]


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def guest_lines(batch: d.Batch, first_id: int, day: Day, base: int) -> bytes:
    """Guests rows: id, first/last name, email, phone, country, created/updated at."""
    out = []
    for i, (f, la, booked, minute) in enumerate(zip(
            batch.first.tolist(), batch.last.tolist(), batch.booked.tolist(),
            batch.minute.tolist(), strict=True)):
        gid = first_id + i
        ts = f"{day(base + booked)} {TIMES[minute]}"
        out.append(
            f"{gid}\t{d.FIRST[f]}\t{d.LAST[la]}\t{d.FIRST_SLUG[f]}.{d.LAST_SLUG[la]}.{gid}"
            f"@example.com\t+351 91{gid % 10_000_000:07d}\t{d.COUNTRY_OF_FIRST[f]}\t{ts}\t{ts}\n"
        )
    return "".join(out).encode()


def reservation_lines(batch: d.Batch, ids: _Ids, first_id: int, first_guest: int,
                      prices: d.PriceTable, day: Day, base: int, ext_base: int) -> bytes:
    """Reservations rows in the column order of db.demo's COPY."""
    cents = prices.stay_cents(batch.room_type, batch.plan, batch.start, batch.nights).tolist()
    room_types = [str(i) for i in ids.room_types]
    plans = {k: str(v) for k, v in ids.rate_plans.items()}
    channel_ids = [str(ids.channels[s]) if s else NULL for s in d.SOURCES]
    prop = str(ids.property_id)
    out = []
    for i, (rt, rp, src, start, nights, st, ad, ch, booked, minute) in enumerate(zip(
            batch.room_type.tolist(), batch.plan.tolist(), batch.source.tolist(),
            batch.start.tolist(), batch.nights.tolist(), batch.status.tolist(),
            batch.adults.tolist(), batch.children.tolist(), batch.booked.tolist(),
            batch.minute.tolist(), strict=True)):
        rid = first_id + i
        ts = f"{day(base + booked)} {TIMES[minute]}"
        ext = NULL if d.SOURCES[src] is None else str(ext_base + rid)
        out.append(
            f"{rid}\t{prop}\t{first_guest + i}\t{room_types[rt]}\t{plans[(rt, rp)]}\tDEMO-{rid}\t"
            f"{day(base + start)}\t{day(base + start + nights)}\t{ad}\t{ch}\t"
            f"{_money(cents[i])}\tEUR\t{d.STATUSES[st]}\t{SOURCE_NAMES[src]}\t"
            f"{channel_ids[src]}\t{ext}\t{ts}\t{ts}\n"
        )
    return "".join(out).encode()


def channel_booking_lines(batch: d.Batch, ids: _Ids, first_id: int, prices: d.PriceTable,
                          day: Day, base: int, ext_base: int) -> tuple[bytes, int]:
    """Channel bookings rows for the batch's channel-sourced reservations, and their count."""
    cents = prices.stay_cents(batch.room_type, batch.plan, batch.start, batch.nights).tolist()
    rt_codes = [r[0] for r in d.ROOM_TYPES]
    rp_codes = [p[0] for p in d.RATE_PLANS]
    out = []
    for i, (rt, rp, src, start, nights, st, booked, minute) in enumerate(zip(
            batch.room_type.tolist(), batch.plan.tolist(), batch.source.tolist(),
            batch.start.tolist(), batch.nights.tolist(), batch.status.tolist(),
            batch.booked.tolist(), batch.minute.tolist(), strict=True)):
        channel = d.SOURCES[src]
        if channel is None:
            continue
        rid = first_id + i
        catalog = CATALOG[channel]
        ts = f"{day(base + booked)} {TIMES[minute]}"
        status = d.STATUSES[st]
        payload = json.dumps({
            "demo": True, "hotelId": catalog["hotel_id"],
            "roomCode": catalog["room_types"][rt_codes[rt]],
            "rateCode": catalog["rate_plans"].get(rp_codes[rp]),
            "checkIn": day(base + start), "checkOut": day(base + start + nights),
            "total": _money(cents[i]), "currency": "EUR",
        }, separators=(",", ":"))
        out.append(
            f"{ids.channels[channel]}\t{rid}\t{ext_base + rid}\t"
            f"{day(base + booked)}T{TIMES[minute][:8]}Z\t"
            f"{PARTNER_STATUS.get(status, 'confirmed')}\t{payload}\tsynced\t{ts}\t{ts}\t{ts}\t"
            f"{ts}\n"
        )
    return "".join(out).encode(), len(out)
