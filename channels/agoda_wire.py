"""Agoda YCS wire format: request builders and response parsers (pure, no I/O).

Conventions shared by the adapter (`channels/agoda.py`) and the simulator
(`channels/simulators/agoda.py`), so both sides speak one dialect:

- every request is `<request timestamp="<unix seconds>" type="N">` posted to `/api?apiKey=KEY`;
- `dow` values are ISO weekdays, 1=Monday..7=Sunday (*unverified* against Agoda's spec);
- a detail `<room>` stands for `room_count` identical units; its per-date prices cover all
  of them (the adapter splits them per unit, cent-exact);
- type 7 "AcknowledgeBooking" is *simulated*: Agoda's public type list has no ack call, its
  GetBookingList only reports the `acknowledge` flag; the simulator clears it on type 7.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from lxml import etree

from channels.base import (
    BookedRoom,
    BookingEvent,
    BookingRecord,
    ChannelName,
    GuestInfo,
    MalformedPayloadError,
    parse_amount,
    trusted,
)
from channels.pci import MASK, last4, mask_card_number, scrub_text
from channels.xmlsafe import parse_xml

CHANNEL = ChannelName.AGODA

TYPE_SET_ARI = 1
TYPE_GET_ARI = 2
TYPE_BOOKING_LIST = 3
TYPE_BOOKING_DETAIL = 4
TYPE_ACK = 7  # simulated, see module docstring
TYPE_BOOKING_LIST_V2 = 9
TYPE_SET_ARI_V2 = 10
TYPE_GET_ARI_V2 = 11

MAX_DAYS_AHEAD = 730
MAX_LIST_WINDOW_DAYS = 90
MAX_DETAIL_IDS = 50
MAX_ROOM_COUNT = 100  # units of one detail <room>; more is a garbled or hostile payload

ERR_TOO_FAR = "2219"
ERR_DEFAULT_RATE = "2101"
ERR_LOS = "22210"

EVENTS = {
    "ConfirmBooking": BookingEvent.NEW,
    "AmendBooking": BookingEvent.MODIFIED,
    "CancelBooking": BookingEvent.CANCELLED,
}
# BookingHint statuses (confirm|amend|cancel) to GetBookingList statuses.
_SECURITY_ATTRS = frozenset({"cvv", "cvc", "cvv2", "security_code"})
HINT_STATUSES = {"confirm": "ConfirmBooking", "amend": "AmendBooking", "cancel": "CancelBooking"}


def parse(body: bytes) -> etree._Element:
    """Parse an Agoda body with the hardened parser (MalformedPayloadError on anything odd)."""
    return parse_xml(body, channel=CHANNEL)


def request_root(type_: int, timestamp: int | None = None) -> etree._Element:
    """A `<request timestamp type>` element."""
    ts = str(timestamp if timestamp is not None else int(time.time()))
    return etree.Element("request", timestamp=ts, type=str(type_))


def to_bytes(root: etree._Element) -> bytes:
    """Serialise with an XML declaration, UTF-8."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _bool(value: bool) -> str:
    return "true" if value else "false"


# ---------------------------------------------------------------- SetARI V2


@dataclass(frozen=True)
class WireUpdate:
    """One `<update>` of a SetARI V2 request: inventory (room) or rate (room + rate plan)."""

    kind: str  # "inventory" | "rate"
    room_id: str
    rateplan_id: str | None
    start: date
    end: date
    dows: tuple[int, ...] = ()
    allotment: int | None = None
    closed: bool | None = None
    cta: bool | None = None
    ctd: bool | None = None
    price: Decimal | None = None
    currency: str | None = None
    occupancy: int = 1
    min_los: int | None = None
    max_los: int | None = None

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """How the partner's error report names this update."""
        return (self.kind, self.room_id, self.rateplan_id or "", self.start.isoformat(), self.end.isoformat())


def _date_range(parent: etree._Element, up: WireUpdate) -> None:
    rng = etree.SubElement(parent, "date_range", {"from": up.start.isoformat(), "to": up.end.isoformat()})
    for dow in up.dows:
        etree.SubElement(rng, "dow").text = str(dow)


def build_set_ari(property_id: str, updates: Sequence[WireUpdate], timestamp: int | None = None) -> bytes:
    """SetARI V2 (type 10) body for one property."""
    root = request_root(TYPE_SET_ARI_V2, timestamp)
    criteria = etree.SubElement(root, "criteria", property_id=property_id)
    inventory = [u for u in updates if u.kind == "inventory"]
    rates = [u for u in updates if u.kind == "rate"]
    if inventory:
        inv_el = etree.SubElement(criteria, "inventory")
        for up in inventory:
            el = etree.SubElement(inv_el, "update", room_id=up.room_id)
            _date_range(el, up)
            if up.allotment is not None:
                etree.SubElement(el, "allotment").text = str(up.allotment)
            if up.closed is not None or up.cta is not None or up.ctd is not None:
                res = etree.SubElement(el, "restrictions")
                for tag, value in (("closed", up.closed), ("cta", up.cta), ("ctd", up.ctd)):
                    if value is not None:
                        etree.SubElement(res, tag).text = _bool(value)
    if rates:
        rate_el = etree.SubElement(criteria, "rate")
        for up in rates:
            el = etree.SubElement(rate_el, "update", room_id=up.room_id, rateplan_id=up.rateplan_id or "")
            _date_range(el, up)
            if up.price is not None:
                prices = etree.SubElement(el, "prices", currency=up.currency or "USD")
                normal = etree.SubElement(prices, "normal")
                etree.SubElement(normal, "occupancy", person=str(up.occupancy), price=f"{up.price:.2f}")
            closures = [(t, v) for t, v in (("closed", up.closed), ("cta", up.cta), ("ctd", up.ctd)) if v is not None]
            if closures or up.min_los is not None or up.max_los is not None:
                res = etree.SubElement(el, "restrictions")
                for tag, value in closures:
                    etree.SubElement(res, tag).text = _bool(value)
                if up.min_los is not None or up.max_los is not None:
                    los = etree.SubElement(res, "los")
                    if up.min_los is not None:
                        etree.SubElement(los, "min").text = str(up.min_los)
                    if up.max_los is not None:
                        etree.SubElement(los, "max").text = str(up.max_los)
    return to_bytes(root)


@dataclass
class SetAriOutcome:
    """A parsed SetARI answer: request-level errors and errors per update key."""

    tuid: str | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)
    update_errors: dict[tuple[str, str, str, str, str], list[tuple[str, str]]] = field(default_factory=dict)


def parse_set_ari_response(body: bytes) -> SetAriOutcome:
    """Parse a `<result>` of SetARI (200, 207 or 400/401)."""
    root = parse(body)
    if root.tag != "result":
        raise MalformedPayloadError(CHANNEL, f"SetARI answer has root <{root.tag}>, expected <result>")
    out = SetAriOutcome(tuid=root.get("TUID"))
    errors = root.find("errors")
    if errors is None:
        return out
    for err in errors.iter("error"):
        parent = err.getparent()
        pair = (err.get("code", ""), err.get("description", ""))
        if parent is not None and parent.tag == "date_range":
            update = parent.getparent()
            section = update.getparent() if update is not None else None
            if update is None or section is None:
                continue
            key = (
                section.tag,
                update.get("room_id", ""),
                update.get("rateplan_id", ""),
                parent.get("from", ""),
                parent.get("to", ""),
            )
            out.update_errors.setdefault(key, []).append(pair)
        else:
            out.errors.append(pair)
    return out


# ---------------------------------------------------------------- GetARI V2


def build_get_ari(property_id: str, start: date, end: date, timestamp: int | None = None) -> bytes:
    """GetARI V2 (type 11) body."""
    root = request_root(TYPE_GET_ARI_V2, timestamp)
    etree.SubElement(root, "criteria", {"property_id": property_id, "from": start.isoformat(), "to": end.isoformat()})
    return to_bytes(root)


@dataclass(frozen=True)
class AriDay:
    """One room (and rate plan) on one date, as GetARI reports it."""

    room_id: str
    rateplan_id: str | None
    day: date
    allotment: int | None = None
    closed: bool | None = None
    cta: bool | None = None
    ctd: bool | None = None
    price: Decimal | None = None
    currency: str | None = None
    min_los: int | None = None
    max_los: int | None = None


def _opt_int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _opt_bool(value: str | None) -> bool | None:
    return None if value in (None, "") else value in ("1", "true")


def parse_get_ari_response(body: bytes) -> list[AriDay]:
    """Parse GetARI V2: room-level days plus one row per rate plan and day."""
    root = parse(body)
    days: list[AriDay] = []
    try:
        for room in root.iter("room"):
            room_id = room.get("id", "")
            for d in room.iter("date"):
                day = date.fromisoformat(d.get("value", ""))
                days.append(
                    AriDay(room_id, None, day, _opt_int(d.get("allotment")), _opt_bool(d.get("closed")),
                           _opt_bool(d.get("cta")), _opt_bool(d.get("ctd")))
                )
                for r in d.iter("rate"):
                    price = r.get("price")
                    days.append(
                        AriDay(room_id, r.get("rateplan_id"), day, closed=_opt_bool(r.get("closed")),
                               cta=_opt_bool(r.get("cta")), ctd=_opt_bool(r.get("ctd")),
                               price=Decimal(price) if price else None, currency=r.get("currency"),
                               min_los=_opt_int(r.get("min_los")), max_los=_opt_int(r.get("max_los")))
                    )
    except (ValueError, ArithmeticError) as exc:
        raise MalformedPayloadError(CHANNEL, f"bad GetARI answer: {exc}") from exc
    return days


# ---------------------------------------------------------------- bookings


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def build_booking_list(
    property_ids: Iterable[str], start: datetime, end: datetime, type_: int = TYPE_BOOKING_LIST_V2,
    status: str | None = None, timestamp: int | None = None,
) -> bytes:
    """GetBookingList (type 3/9) body; `start`/`end` must be aware (the offset is sent)."""
    root = request_root(type_, timestamp)
    attrs = {"from": _stamp(start), "to": _stamp(end)}
    if status:
        attrs["status"] = status
    criteria = etree.SubElement(root, "criteria", attrs)
    for pid in property_ids:
        etree.SubElement(criteria, "property", id=pid)
    return to_bytes(root)


@dataclass(frozen=True)
class ListRow:
    """One `<booking>` row of a GetBookingList answer."""

    property_id: str
    booking_id: str
    last_action: str
    status: str
    acknowledged: bool


def parse_booking_list(body: bytes) -> list[ListRow]:
    """Parse GetBookingList; raises MalformedPayloadError on a non-result root."""
    root = parse(body)
    if root.tag != "result":
        raise MalformedPayloadError(CHANNEL, f"GetBookingList answer has root <{root.tag}>")
    rows: list[ListRow] = []
    for prop in root.iter("property"):
        pid = prop.get("id", "")
        for b in prop.iter("booking"):
            bid = b.get("booking_id")
            if not bid:
                raise MalformedPayloadError(CHANNEL, "GetBookingList row without booking_id")
            rows.append(ListRow(pid, bid, b.get("last_action", ""), b.get("status", ""), b.get("acknowledge") == "1"))
    return rows


def build_booking_detail(property_id: str, booking_ids: Sequence[str], timestamp: int | None = None) -> bytes:
    """GetBookingDetail (type 4) body: one property, at most 50 ids."""
    if len(booking_ids) > MAX_DETAIL_IDS:
        raise ValueError(f"GetBookingDetail takes at most {MAX_DETAIL_IDS} ids, got {len(booking_ids)}")
    root = request_root(TYPE_BOOKING_DETAIL, timestamp)
    criteria = etree.SubElement(root, "criteria", language="en")
    prop = etree.SubElement(criteria, "property", id=property_id)
    for bid in booking_ids:
        etree.SubElement(prop, "booking", id=bid)
    return to_bytes(root)


def build_ack(property_id: str, rows: Sequence[tuple[str, str]], timestamp: int | None = None) -> bytes:
    """Simulated AcknowledgeBooking (type 7): (booking_id, last_action) pairs."""
    root = request_root(TYPE_ACK, timestamp)
    criteria = etree.SubElement(root, "criteria", property_id=property_id)
    for bid, last_action in rows:
        etree.SubElement(criteria, "booking", booking_id=bid, last_action=last_action)
    return to_bytes(root)


def parse_ack_response(body: bytes) -> dict[str, str | None]:
    """booking_id -> None when acknowledged, else the partner's error text."""
    root = parse(body)
    out: dict[str, str | None] = {}
    for b in root.iter("booking"):
        code = b.get("error_code")
        out[b.get("booking_id", "")] = None if not code else f"{code} {b.get('description', '')}".strip()
    return out


def parse_errors(body: bytes) -> list[tuple[str, str]]:
    """Every (code, description) in an error answer; empty if the body is not XML."""
    try:
        root = parse(body)
    except MalformedPayloadError:
        return []
    return [(e.get("code", ""), e.get("description", "")) for e in root.iter("error")]


def _utc_revision(value: str) -> str:
    # Revisions compare as strings, so normalise every offset to one UTC spelling.
    moment = datetime.fromisoformat(value)
    offset = moment.utcoffset()
    if offset:
        moment -= offset
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def _mask(number: str) -> tuple[str | None, str | None]:
    """(masked number, last 4 digits); the plain-digits case skips pci's slower clean-up."""
    if number.isdigit() and len(number) >= 4:
        return MASK + number[-4:], number[-4:]
    return mask_card_number(number), last4(number)


def _split(amount: Decimal, parts: int) -> list[Decimal]:
    # Per-room shares that add up to the booking amount exactly (last room takes the cents).
    if parts <= 1:
        return [amount]
    share = (amount / parts).quantize(Decimal("0.01"))
    return [share] * (parts - 1) + [amount - share * (parts - 1)]


def _rooms(el: etree._Element, check_in: date | None, check_out: date | None,
           raw_rooms: list[dict[str, Any]]) -> tuple[list[BookedRoom], Decimal | None, str | None]:
    """BookedRooms of one `<rooms>` element: `room_count` units each, amounts split per unit.

    Values are converted and checked here (dates, finite Decimals, ints), so the rooms are
    built with `trusted` instead of a second validation pass.
    """
    rooms: list[BookedRoom] = []
    total: Decimal | None = None
    currency: str | None = None
    fromiso = date.fromisoformat
    for room in el:
        ra: dict[str, Any] = dict(room.items())
        raw_rooms.append(ra)
        count = int(ra.get("room_count") or 1)
        adults = int(ra.get("adults") or 1)
        children = int(ra.get("children") or 0)
        if count < 1 or count > MAX_ROOM_COUNT or adults < 0 or children < 0:
            raise ValueError(f"room {ra.get('room_id')!r}: bad room_count/adults/children")
        nightly: dict[date, Decimal] = {}
        amount: Decimal | None = None
        for prices in room:
            if prices.tag != "prices":
                continue
            currency = prices.get("currency") or currency
            # Strings kept as sent for the raw payload; converted once for the record.
            raw_dates = {p.get("date"): p.get("amount") for p in prices}
            nightly = {fromiso(d): parse_amount(a) for d, a in raw_dates.items()}  # type: ignore[arg-type]
            tot = prices.get("total")
            amount = parse_amount(tot) if tot else sum(nightly.values(), Decimal(0))
            total = amount if total is None else total + amount
            ra["prices"] = {"currency": currency, "total": tot, "dates": raw_dates}
        ages_text = ra.get("child_ages")
        ages = [int(x) for x in ages_text.split(",") if x] if ages_text else []
        room_id, plan = ra.get("room_id", ""), ra.get("rateplan_id")
        if count == 1:
            rooms.append(trusted(BookedRoom, {
                "partner_room_type_code": room_id, "partner_rate_plan_code": plan,
                "check_in": check_in, "check_out": check_out, "adults": adults, "children": children,
                "child_ages": ages, "amount": amount, "currency": currency, "nightly_rates": nightly,
            }))
            continue
        shares: list[Decimal | None] = list(_split(amount, count)) if amount is not None else [None] * count
        per_night = {d: _split(v, count) for d, v in nightly.items()}
        for i in range(count):
            rooms.append(trusted(BookedRoom, {
                "partner_room_type_code": room_id, "partner_rate_plan_code": plan,
                "check_in": check_in, "check_out": check_out, "adults": adults, "children": children,
                "child_ages": list(ages), "amount": shares[i], "currency": currency,
                "nightly_rates": {d: v[i] for d, v in per_night.items()},
            }))
    return rooms, total, currency


def _booking(el: etree._Element) -> BookingRecord:
    # One items() call into a plain dict: lxml's attrib proxy resolves each key slowly.
    a = dict(el.items())
    bid = a["booking_id"]
    if not bid:
        raise ValueError("booking without booking_id")
    status = a.get("status", "")
    last_action = a.get("last_action") or a.get("booking_date") or ""
    arrival = a.get("arrival")
    departure = a.get("departure")
    check_in = date.fromisoformat(arrival) if arrival else None
    check_out = date.fromisoformat(departure) if departure else None
    raw_rooms: list[dict[str, Any]] = []
    raw: dict[str, Any] = {"booking": a, "rooms": raw_rooms}
    guest: GuestInfo | None = None
    rooms: list[BookedRoom] = []
    total: Decimal | None = None
    currency: str | None = None
    card_last4: str | None = None
    comments: str | None = None
    for child in el:
        tag = child.tag
        if tag == "rooms":
            rooms, total, currency = _rooms(child, check_in, check_out, raw_rooms)
        elif tag == "customer":
            c = dict(child.items())
            guest = trusted(GuestInfo, {
                "first_name": c.get("first_name", ""), "last_name": c.get("last_name", ""),
                "email": c.get("email"), "phone": c.get("phone"), "country": c.get("nationality")})
            raw["customer"] = c
        elif tag == "requests":
            # Guests sometimes type card numbers into free text.
            comments = scrub_text(child.text) if child.text else None
            raw["requests"] = comments
        elif tag == "payment":
            pay = {k: v for k, v in child.items() if k not in _SECURITY_ATTRS}  # never keep the CVV
            number = pay.get("card_number")
            if number:
                pay["card_number"], card_last4 = _mask(number)
            raw["payment"] = pay
    booked = a.get("booking_date")
    return trusted(BookingRecord, {
        "channel": CHANNEL, "external_id": bid, "event": EVENTS.get(status, BookingEvent.MODIFIED),
        "status": status, "revision": _utc_revision(last_action) if last_action else "",
        "booked_at": datetime.fromisoformat(booked) if booked else None,
        "hotel_code": a.get("property_id"), "check_in": check_in, "check_out": check_out,
        "guest": guest or trusted(GuestInfo, {"first_name": "", "last_name": "", "email": None,
                                              "phone": None, "country": None}),
        "rooms": rooms, "total_amount": total, "currency": currency, "card_last4": card_last4,
        "comments": comments, "ack_token": f"{a.get('property_id', '')}|{bid}|{last_action}",
        "raw_payload": raw,
    })


def parse_bookings(body: bytes) -> list[BookingRecord]:
    """BookingRecords from a GetBookingDetail answer, PCI-masked (last 4 digits, no CVV)."""
    root = parse(body)
    if root.tag != "result":
        raise MalformedPayloadError(CHANNEL, f"GetBookingDetail answer has root <{root.tag}>")
    try:
        return [_booking(el) for el in root.iter("booking")]
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise MalformedPayloadError(CHANNEL, f"bad GetBookingDetail booking: {exc!r}") from exc
