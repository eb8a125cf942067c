"""Agoda YCS wire format: request builders and response parsers (pure, no I/O).

Shapes follow Agoda's published examples (developer.agoda.com/supply, copies under
tests/fixtures/agoda/, sources in tests/fixtures/README.md). Shared by the adapter
(`channels/agoda.py`) and the simulator (`channels/simulators/agoda.py`):

- every request is `<request timestamp="<unix seconds>" type="N">` posted to `/api?apiKey=KEY`;
- `dow` values 1..7: Agoda's examples list all seven; 1=Monday is *unverified*;
- GetBookingDetail states one room type per booking: `room_id`, `rateplan_id`, `room_count`,
  `adults`, `children`, `extrabeds` are attributes of `<booking>`; `<prices>` covers every
  unit (the adapter splits per unit, cent-exact);
- type 7 "AcknowledgeBooking" is *simulated*: Agoda's public type list has no ack call, its
  GetBookingList only reports the `acknowledge` flag; the simulator clears it on type 7.
"""

from __future__ import annotations

import functools
import re
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
    CancelPenalty,
    ChannelName,
    ExtraService,
    GuestInfo,
    MalformedPayloadError,
    NightlyPrice,
    PaymentInfo,
    PaymentModel,
    SpecialRequest,
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
MAX_LIST_LOOKBACK_DAYS = 90  # "Now - From <= 90 Days" (GetBookingList request example)
MAX_LIST_PROPERTIES = 5
MAX_DETAIL_IDS = 50
MAX_ROOM_COUNT = 100  # units of one detail <room>; more is a garbled or hostile payload

ERR_TOO_FAR = "2219"
ERR_DEFAULT_RATE = "2101"
ERR_LOS = "22210"

#: SetARI error codes Agoda documents (developer.agoda.com/supply "Error Codes", SetARI V2
#: response examples). Every one is a request/validation or authorisation problem the partner
#: will repeat until the request or the property's setup changes: permanent, never retried.
#: Transient failures reach us as HTTP 429/5xx, not as codes in a body.
DOCUMENTED_ERRORS = {
    "1101": "From date cannot be later than To date",
    "1201": "API key is not authorised for Property id",
    "1301": "Invalid Property id",
    "1503": "Authentication failed: The supplied authentication is invalid",
    "1511": "Schema error (blank value, missing attribute, bad value)",
    "1601": "The requested property has incorrect rate model",
    "2101": "Default rate is required but does not exist",
    "2201": "Occupancy rate out of the allowed range",
    "2205": "Room type error",
    "2219": "Date can not be greater than 730 days",
    "22210": "Max LOS cannot be less than Min Los",
}

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
                # Agoda's "Basic Mode": one price for every occupancy (`<normal default>`).
                prices = etree.SubElement(el, "prices", currency=up.currency or "USD")
                etree.SubElement(prices, "normal", default=f"{up.price:.2f}")
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
    status: str | None = None  # "PartialSuccess" on a 207 with per-update errors
    errors: list[tuple[str, str]] = field(default_factory=list)
    update_errors: dict[tuple[str, str, str, str, str], list[tuple[str, str]]] = field(default_factory=dict)


def parse_set_ari_response(body: bytes) -> SetAriOutcome:
    """Parse a `<result>` of SetARI (200, 207 or 400/401)."""
    root = parse(body)
    if root.tag != "result":
        raise MalformedPayloadError(CHANNEL, f"SetARI answer has root <{root.tag}>, expected <result>")
    out = SetAriOutcome(tuid=root.get("TUID"), status=root.get("status"))
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
    """GetARI V2 (type 11) body: `<criteria from to><property id/></criteria>`.

    Agoda's example also names `room_id` and `rateplan_id` on `<property>`; without them we
    ask for every room and rate plan (*unverified* that Agoda accepts this).
    """
    root = request_root(TYPE_GET_ARI_V2, timestamp)
    criteria = etree.SubElement(root, "criteria", {"from": start.isoformat(), "to": end.isoformat()})
    etree.SubElement(criteria, "property", id=property_id)
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


def parse_get_ari_response(body: bytes, occupancy: int = 1) -> list[AriDay]:
    """Parse GetARI V2: one `<property id date>` per date holding `<rates rateplan_id
    currency><room .../>` (price of `occupancy` persons, else the first one listed) and
    `<inventories><room allotment .../>` (room level, no rate plan)."""
    root = parse(body)
    days: list[AriDay] = []
    try:
        for prop in root.iter("property"):
            day = date.fromisoformat(prop.get("date", ""))
            for rates in prop.findall("rates"):
                plan, currency = rates.get("rateplan_id"), rates.get("currency")
                for room in rates.findall("room"):
                    prices = room.findall("prices/occupancy")
                    chosen = next((o for o in prices if o.get("person") == str(occupancy)), prices[0] if prices else None)
                    price = chosen.get("price") if chosen is not None else None
                    days.append(AriDay(
                        room.get("room_id", ""), plan, day, closed=_opt_bool(room.get("closed")),
                        cta=_opt_bool(room.get("cta")), ctd=_opt_bool(room.get("ctd")),
                        price=parse_amount(price) if price else None, currency=currency,
                        min_los=_opt_int(room.get("min_los")), max_los=_opt_int(room.get("max_los"))))
            for room in prop.findall("inventories/room"):
                days.append(AriDay(
                    room.get("room_id", ""), None, day, _opt_int(room.get("allotment")),
                    _opt_bool(room.get("closed")), _opt_bool(room.get("cta")), _opt_bool(room.get("ctd"))))
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


@dataclass(frozen=True)
class HintRow:
    """One booking named by a BookingHint push (Agoda calls the channel manager)."""

    property_id: str
    booking_id: str
    last_action: str
    status: str


MAX_HINT_ROWS = 500  # a push naming more is garbled or hostile


def parse_booking_hint(body: bytes) -> list[HintRow]:
    """The documented BookingHint push: `<request timestamp><property id><bookings><booking
    booking_id booking_date last_action arrival departure status/>..`."""
    root = parse(body)
    if root.tag != "request":
        raise MalformedPayloadError(CHANNEL, f"BookingHint has root <{root.tag}>, expected <request>")
    rows: list[HintRow] = []
    for prop in root.iter("property"):
        pid = prop.get("id") or ""
        for b in prop.iter("booking"):
            bid = b.get("booking_id")
            if not pid or not bid:
                raise MalformedPayloadError(CHANNEL, "BookingHint row without property id or booking_id")
            rows.append(HintRow(pid, bid, b.get("last_action", ""), b.get("status", "")))
    if not rows or len(rows) > MAX_HINT_ROWS:
        raise MalformedPayloadError(CHANNEL, f"BookingHint names {len(rows)} bookings")
    return rows


def build_hint_answer(error: tuple[str, str] | None = None, timestamp_ms: int | None = None) -> bytes:
    """Our answer to a BookingHint: `<result timestamp><success/></result>` or `<errors>`."""
    ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    root = etree.Element("result", timestamp=ts)
    if error is None:
        etree.SubElement(root, "success")
    else:
        etree.SubElement(etree.SubElement(root, "errors"), "error", code=error[0], description=error[1])
    return to_bytes(root)


def build_booking_detail(property_id: str, booking_ids: Sequence[str], timestamp: int | None = None) -> bytes:
    """GetBookingDetail (type 4) body: one property, at most 50 ids."""
    if len(booking_ids) > MAX_DETAIL_IDS:
        raise ValueError(f"GetBookingDetail takes at most {MAX_DETAIL_IDS} ids, got {len(booking_ids)}")
    root = request_root(TYPE_BOOKING_DETAIL, timestamp)
    criteria = etree.SubElement(root, "criteria", language="EN")
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
    # Per-unit shares that add up to the stated amount exactly (the last unit takes the cents).
    if parts <= 1:
        return [amount]
    share = (amount / parts).quantize(Decimal("0.01"))
    return [share] * (parts - 1) + [amount - share * (parts - 1)]


def _split_int(total: int, parts: int) -> list[int]:
    # 5 adults in 2 rooms -> [3, 2]: every unit gets the floor, the first ones the remainder.
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _count(a: dict[str, str], name: str, default: int, low: int = 0, high: int = 1000) -> int:
    text = a.get(name)
    value = int(text) if text not in (None, "") else default
    if not low <= value <= high:
        raise ValueError(f"{name}={value} out of range")
    return value


#: The `<price>`/`<prices>` attribute that states what the guest pays, best first: the
#: standard answer's `sell_inclusive_amt`, Japanese properties' `refsell_amt`; a message with
#: only the hotel's net (`net_inclusive_amt`, e.g. a cancellation) reports that.
_GUEST_AMOUNT = ("sell_inclusive_amt", "refsell_amt", "net_inclusive_amt")

#: cxl_code segments: "<days>D<charge>" before arrival, a last bare "<charge>" for no-shows;
#: charge "<n>N" nights or "<p>P" percent (e.g. "1D1N_1N", "126D100P_100P").
_CXL_SEGMENT = re.compile(r"^(?:(\d{1,4})D)?(\d{1,4})([NP])$")
_DIGIT_RUN = re.compile(r"(?:\d[ .-]?){12}")


def _amount(attrs: dict[str, str]) -> Decimal | None:
    for name in _GUEST_AMOUNT:
        text = attrs.get(name)
        if text:
            return parse_amount(text)
    return None


@functools.lru_cache(maxsize=256)
def _cxl_segments(code: str) -> tuple[tuple[str, int | None, int, str], ...]:
    """(segment, days or None for no-show, value, unit) per segment; () off-grammar."""
    out = []
    segments = code.split("_")
    for i, seg in enumerate(segments):
        m = _CXL_SEGMENT.match(seg)
        if m is None:
            return ()
        days, value, unit = m.groups()
        if days is None and i != len(segments) - 1:
            return ()  # only the last segment (no-show) has no day count
        out.append((seg, int(days) if days is not None else None, int(value), unit))
    return tuple(out)


def cancel_penalties(code: str | None) -> list[CancelPenalty]:
    """CancelPenalty rows of an Agoda `cxl_code` ([] when it does not follow the grammar).

    The grammar is Agoda's policy-code convention as commonly used by channel managers, not
    a retrieved Agoda document (see channels/README.md): deadlines stay None because the
    code counts days before arrival without a time of day; the description says it.
    """
    if not code:
        return []
    return [trusted(CancelPenalty, {
        "deadline": None, "amount": None,
        "percent": Decimal(value) if unit == "P" else None, "nights": value if unit == "N" else None,
        "currency": None, "non_refundable": None,
        "description": f"{seg}: " + ("no-show" if days is None else f"cancelled {days} day(s) or less before arrival"),
    }) for seg, days, value, unit in _cxl_segments(code)]


def _scrub(text: str) -> str:
    # pci.scrub_text costs ~50 µs; only text with a card-length digit run can hold a number.
    return scrub_text(text) if _DIGIT_RUN.search(text) else text


def _requests(el: etree._Element) -> list[SpecialRequest]:
    """`<request request_name=".."/>` items: a named code (NonSmoke, HighFloor...) or the
    guest's free text as `AdditionalNotes:"..."`; card numbers typed into text are masked."""
    out: list[SpecialRequest] = []
    for r in el:
        if r.tag != "request":
            continue
        name = (r.get("request_name") or r.text or "").strip()
        if not name:
            continue
        head, sep, rest = name.partition(":")
        if sep and head == "AdditionalNotes":
            out.append(trusted(SpecialRequest, {"code": head, "text": _scrub(rest.strip().strip('"').strip())}))
        else:
            out.append(trusted(SpecialRequest, {"code": name if name.isalnum() else None, "text": _scrub(name)}))
    return out


def _units(a: dict[str, str], check_in: date | None, check_out: date | None, currency: str | None,
           amount: Decimal | None, nights: list[tuple[date, Decimal]]) -> list[BookedRoom]:
    """The booking's `room_count` identical units (one BookedRoom each).

    Agoda states one room type per booking: `room_id`, `rateplan_id`, `room_count`, `adults`,
    `children` and `extrabeds` are attributes of `<booking>`, and `<prices>` covers every
    unit. Counts and amounts are split per unit (cent-exact, the last unit takes the rest).
    """
    count = _count(a, "room_count", 1, 1, MAX_ROOM_COUNT)
    adults = _split_int(_count(a, "adults", 1), count)
    children = _split_int(_count(a, "children", 0), count)
    beds = _split_int(_count(a, "extrabeds", 0), count)
    shares: list[Decimal | None] = list(_split(amount, count)) if amount is not None else [None] * count
    per_night = [(night, _split(value, count)) for night, value in nights]
    promotion = a.get("promotion_name") or a.get("promotion_id") or None
    rooms = []
    for i in range(count):
        prices = [trusted(NightlyPrice, {
            "night": night, "amount": parts[i], "amount_before_tax": None, "amount_after_tax": parts[i],
            "base": None, "extra_person_fees": None, "service_fees": None, "currency": currency,
            "promotion": promotion,
        }) for night, parts in per_night]
        rooms.append(trusted(BookedRoom, {
            "partner_room_type_code": a.get("room_id", ""), "partner_rate_plan_code": a.get("rateplan_id") or None,
            "check_in": check_in, "check_out": check_out, "adults": adults[i], "children": children[i],
            "child_ages": [], "amount": shares[i], "currency": currency,
            "nightly_rates": {p.night: p.amount for p in prices}, "external_room_id": None,
            "room_name": a.get("room_type") or None, "rate_plan_name": a.get("rateplan_name") or None,
            "meal_plan": None, "extra_beds": beds[i], "nightly_prices": prices, "amount_before_tax": None,
            "taxes": None, "commission": None, "guest": None, "extras": [], "special_requests": [],
            "smoking": None,
        }))
    return rooms


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
    raw: dict[str, Any] = {"booking": a}
    guest: GuestInfo | None = None
    total: Decimal | None = None
    net: Decimal | None = None
    currency: str | None = None
    nights: list[tuple[date, Decimal]] = []
    card_last4: str | None = None
    requests: list[SpecialRequest] = []
    extras: list[ExtraService] = []
    payment_model: str | None = None
    payment_raw: dict[str, str | None] = {}
    for child in el:
        tag = child.tag
        if tag == "customer":
            c = dict(child.items())
            guest = trusted(GuestInfo, {
                "first_name": c.get("first_name", ""), "last_name": c.get("last_name", ""),
                "email": c.get("email") or None, "phone": c.get("phone") or None,
                # Agoda's nationality is a country name ("Thailand"), never an ISO code.
                "country": None, "country_name": c.get("nationality") or None, "language": None,
                "city": None, "postal_code": None, "address": None})
            raw["customer"] = c
        elif tag == "requests":
            requests = _requests(child)
            raw["requests"] = [r.text if r.code == "AdditionalNotes" else r.code or r.text for r in requests]
        elif tag == "prices":
            p = dict(child.items())
            currency = p.get("currency") or None
            total = _amount(p)
            net_text = p.get("net_inclusive_amt")
            net = parse_amount(net_text) if net_text else None
            raw_prices = []
            for price in child:
                if price.tag != "price":
                    continue
                pa = dict(price.items())
                raw_prices.append(pa)
                value = _amount(pa)
                # Nightly room prices only; a cancellation's `type="Confirmation"` line has no date.
                if pa.get("type", "Room") == "Room" and pa.get("date"):
                    if value is None:
                        raise ValueError(f"nightly price of {pa['date']} without an amount")
                    nights.append((date.fromisoformat(pa["date"]), value))
            raw["prices"] = {"attrs": p, "price": raw_prices}
        elif tag == "benefits":
            for b in child:
                if b.tag == "benefit":
                    extras.append(trusted(ExtraService, {
                        "code": b.get("benefit_id"), "name": b.get("benefit_name"), "quantity": None,
                        "nights": None, "amount": None, "currency": None, "included": True}))
            raw["benefits"] = [dict(b.items()) for b in child if b.tag == "benefit"]
        elif tag == "paymentmodel":
            payment_model = (child.text or "").strip() or None
            raw["paymentmodel"] = payment_model
        elif tag == "occupancy":  # Japanese properties: headcount per child age bucket
            raw["occupancy"] = [{"tag": o.tag, **dict(o.items())} for o in child if isinstance(o.tag, str)]
        elif tag == "payment":
            # Not in Agoda's published examples; if card data ever arrives it is masked here.
            payment_raw = {k: v for k, v in child.items() if k.lower() not in _SECURITY_ATTRS}
            number = payment_raw.get("card_number")
            if number:
                payment_raw["card_number"], card_last4 = _mask(number)
            raw["payment"] = payment_raw
    booked = a.get("booking_date")
    texts = [r.text for r in requests]
    payment = trusted(PaymentInfo, {
        "model": PaymentModel.UNKNOWN, "card_type": payment_raw.get("card_type") or None,
        "card_last4": card_last4, "card_expiry": payment_raw.get("expiry") or None,
        "activation_date": None, "deactivation_date": None, "card_amount": None, "currency": None,
        # The meaning of paymentmodel's values is not published: kept as given.
        "remarks": f"paymentmodel {payment_model}" if payment_model else None,
    })
    return trusted(BookingRecord, {
        "channel": CHANNEL, "external_id": bid, "event": EVENTS.get(status, BookingEvent.MODIFIED),
        "status": status, "revision": _utc_revision(last_action) if last_action else "",
        "booked_at": datetime.fromisoformat(booked) if booked else None,
        "hotel_code": a.get("property_id"), "check_in": check_in, "check_out": check_out,
        "guest": guest or trusted(GuestInfo, {
            "first_name": "", "last_name": "", "email": None, "phone": None, "country": None,
            "country_name": None, "language": None, "city": None, "postal_code": None, "address": None}),
        "rooms": _units(a, check_in, check_out, currency, total, nights) if a.get("room_id") else [],
        "total_amount": total, "currency": currency, "card_last4": card_last4,
        "comments": "; ".join(texts) if texts else None,
        "ack_token": f"{a.get('property_id', '')}|{bid}|{last_action}",
        "raw_payload": raw, "amount_before_tax": None, "taxes": None, "commission": None,
        "payment": payment, "extras": extras, "special_requests": requests,
        "cancel_penalties": cancel_penalties(a.get("cxl_code")), "cancel_policy": a.get("cxl_code") or None,
        "loyalty": [], "group_id": None, "source": a.get("channel_name") or None, "language": None,
        "net_amount": net,
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
