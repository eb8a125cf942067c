"""Expedia QuickConnect (EQC) wire format: AR, BR, BC and PARR builders/parsers (pure).

Conventions (*unverified* details are simulator choices, kept in one place):
- credentials travel in the body: `<Authentication username password/>`, `<Hotel id/>`;
- error codes 1000-1999 are authentication/authorization problems (the whole call failed);
- an AR answer with Errors applied nothing (the message is atomic); Warning 7013 names
  `[Room Type ID: ..; Rate Plan ID: ..; Stay Date: ..]` whose rate was not applied;
- cancels carry roomTypeID/ratePlanID 0 and zero amounts: the record has no rooms or dates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from lxml import etree
from pydantic import BaseModel, Field

from channels.base import (
    ARIUpdate,
    BookedRoom,
    BookingEvent,
    BookingRecord,
    ChannelName,
    GuestInfo,
    MalformedPayloadError,
    parse_amount,
    trusted,
)
from channels.pci import scrub_card_element, scrub_text
from channels.xmlsafe import parse_xml

CHANNEL = ChannelName.EXPEDIA
NS_AR = "http://www.expediaconnect.com/EQC/AR/2011/06"
NS_BR = "http://www.expediaconnect.com/EQC/BR/2014/01"
NS_BC = "http://www.expediaconnect.com/EQC/BC/2007/09"
NS_PAR = "http://www.expediaconnect.com/EQC/PAR/2013/07"
MAX_BOOKINGS_PER_RESPONSE = 125
WEEKDAY_ATTRS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
EVENTS = {"Book": BookingEvent.NEW, "Modify": BookingEvent.MODIFIED, "Cancel": BookingEvent.CANCELLED}

_B = "{" + NS_BR + "}"
T_BOOKING = _B + "Booking"
T_HOTEL = _B + "Hotel"
T_ROOMSTAY = _B + "RoomStay"
T_STAYDATE = _B + "StayDate"
T_GUESTCOUNT = _B + "GuestCount"
T_CHILD = _B + "Child"
T_PERDAYRATES = _B + "PerDayRates"
T_TOTAL = _B + "Total"
T_CARD = _B + "PaymentCard"
T_PRIMARY = _B + "PrimaryGuest"
T_NAME = _B + "Name"
T_PHONE = _B + "Phone"
T_EMAIL = _B + "Email"
T_SPECIAL = _B + "SpecialRequest"
T_ERROR = _B + "Error"
_DAY = timedelta(days=1)
_STAY_REF = re.compile(r"Room Type ID:\s*([^;\]]+);\s*Rate Plan ID:\s*([^;\]]+);\s*Stay Date:\s*([\d-]+)")


def utc_stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(value: str | None) -> tuple[datetime | None, str]:
    """(UTC datetime, revision string) of a createDateTime; Expedia's own UTC form kept as is."""
    if not value:
        return None, ""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if len(value) == 20 and value[-1] == "Z":
        return moment, value
    return moment, utc_stamp(moment)


def _auth_root(tag: str, ns: str, username: str, password: str, hotel_id: str | None) -> etree._Element:
    root = etree.Element(f"{{{ns}}}{tag}", nsmap={None: ns})
    etree.SubElement(root, f"{{{ns}}}Authentication", username=username, password=password)
    if hotel_id is not None:
        etree.SubElement(root, f"{{{ns}}}Hotel", id=hotel_id)
    return root


def _bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# ---------------------------------------------------------------- AR


def _bool(flag: bool) -> str:
    return "true" if flag else "false"


def build_ar(username: str, password: str, hotel_id: str, updates: Sequence[ARIUpdate]) -> bytes:
    """AvailRateUpdateRQ with one AvailRateUpdate per update."""
    q = f"{{{NS_AR}}}"
    root = _auth_root("AvailRateUpdateRQ", NS_AR, username, password, hotel_id)
    for u in updates:
        aru = etree.SubElement(root, q + "AvailRateUpdate")
        attrs = {"from": u.start.isoformat(), "to": u.end.isoformat()}
        if u.weekdays is not None:
            attrs.update({name: _bool(i in u.weekdays) for i, name in enumerate(WEEKDAY_ATTRS)})
        etree.SubElement(aru, q + "DateRange", attrs)
        room = etree.SubElement(aru, q + "RoomType", id=u.partner_room_type_code)
        if u.stop_sell is not None and not u.partner_rate_plan_code:
            room.set("closed", _bool(u.stop_sell))
        if u.available is not None:
            etree.SubElement(room, q + "Inventory", totalInventoryAvailable=str(u.available))
        if u.partner_rate_plan_code:
            plan = etree.SubElement(room, q + "RatePlan", id=u.partner_rate_plan_code)
            if u.stop_sell is not None:
                plan.set("closed", _bool(u.stop_sell))
            if u.rate is not None:
                rate = etree.SubElement(plan, q + "Rate", currency=u.currency or "EUR")
                etree.SubElement(rate, q + "PerDay", rate=f"{u.rate:.2f}")
            restrictions = {}
            if u.min_los is not None:
                restrictions["minLOS"] = str(u.min_los)
            if u.max_los is not None:
                restrictions["maxLOS"] = str(u.max_los)
            if u.closed_to_arrival is not None:
                restrictions["closedToArrival"] = _bool(u.closed_to_arrival)
            if u.closed_to_departure is not None:
                restrictions["closedToDeparture"] = _bool(u.closed_to_departure)
            if restrictions:
                etree.SubElement(plan, q + "Restrictions", restrictions)
    return _bytes(root)


@dataclass
class Issue:
    """One Error or Warning of an EQC answer."""

    code: str
    text: str
    error: bool


def parse_issues(root: etree._Element) -> tuple[bool, list[Issue]]:
    """(Success present?, errors and warnings) of any EQC *RS root."""
    success = False
    issues = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        name = etree.QName(el).localname
        if name == "Success":
            success = True
        elif name in ("Error", "Warning"):
            issues.append(Issue(el.get("code") or "", (el.text or "").strip(), name == "Error"))
    return success, issues


def ids_in(text: str) -> set[str]:
    """The ids listed after the colon of a 3203/3204 message."""
    tail = text.split(":", 1)[1] if ":" in text else text
    return {token for token in re.split(r"[\s,;]+", tail) if token}


def stay_refs(text: str) -> list[tuple[str, str, date]]:
    """(room type, rate plan, stay date) triples named in a 7013-style warning."""
    return [(r.strip(), p.strip(), date.fromisoformat(d)) for r, p, d in _STAY_REF.findall(text)]


# ---------------------------------------------------------------- BR


def build_br(username: str, password: str, hotel_id: str | None, *, booking_id: str | None = None,
             status: str | None = None, days_in_past: int | None = None) -> bytes:
    """BookingRetrievalRQ; without parameters Expedia returns the unconfirmed bookings."""
    q = f"{{{NS_BR}}}"
    root = _auth_root("BookingRetrievalRQ", NS_BR, username, password, hotel_id)
    if booking_id or status or days_in_past:
        params = etree.SubElement(root, q + "ParamSet")
        if booking_id:
            etree.SubElement(params, q + "Booking", id=booking_id)
        if status:
            etree.SubElement(params, q + "Status", value=status)
        if days_in_past:
            etree.SubElement(params, q + "NbDaysInPast").text = str(days_in_past)
    return _bytes(root)


def _room(stay: etree._Element) -> tuple[BookedRoom, str | None]:
    """One RoomStay -> (BookedRoom, card last 4); masks its PaymentCard in place.

    Values are converted and checked here, so the room is built with `trusted`.
    """
    card_last4 = None
    check_in = check_out = None
    adults, children, ages = 1, 0, []
    nightly: dict[date, Decimal] = {}
    amount = currency = None
    fromiso = date.fromisoformat
    for child in stay:
        tag = child.tag
        if tag == T_STAYDATE:
            check_in = fromiso(child.get("arrival") or "")
            check_out = fromiso(child.get("departure") or "")
        elif tag == T_GUESTCOUNT:
            adults = int(child.get("adult") or 1)
            children = int(child.get("child") or 0)
            if adults < 0 or children < 0:
                raise ValueError("negative guest count")
            if len(child):
                ages = [int(c.get("age") or 0) for c in child if c.tag == T_CHILD]
        elif tag == T_PERDAYRATES:
            currency = child.get("currency") or currency
            for rate in child:
                nightly[fromiso(rate.get("stayDate") or "")] = parse_amount(rate.get("baseRate") or "0")
        elif tag == T_TOTAL:
            total = child.get("amountAfterTaxes")
            amount = parse_amount(total) if total else None
            currency = child.get("currency") or currency
        elif tag == T_CARD:
            card_last4 = scrub_card_element(child) or card_last4
    return trusted(BookedRoom, {
        "partner_room_type_code": stay.get("roomTypeID") or "",
        "partner_rate_plan_code": stay.get("ratePlanID"),
        "check_in": check_in, "check_out": check_out, "adults": adults, "children": children,
        "child_ages": ages, "amount": amount, "currency": currency, "nightly_rates": nightly,
    }), card_last4


def parse_booking(el: etree._Element) -> BookingRecord:
    """One BR Booking element -> BookingRecord (masks the card in place)."""
    kind = el.get("type") or "Book"
    event = EVENTS.get(kind)
    external_id = el.get("id")
    if event is None or not external_id:
        raise ValueError(f"booking without id or with unknown type {kind!r}")
    rooms: list[BookedRoom] = []
    guest = None
    hotel = card_last4 = None
    notes: list[str] = []
    for child in el:
        tag = child.tag
        if tag == T_ROOMSTAY:
            # Cancels carry room type / rate plan 0 and zero amounts: the stored stay stays.
            if event is not BookingEvent.CANCELLED and child.get("roomTypeID") not in (None, "", "0"):
                room, last = _room(child)  # also masks the stay's card
                rooms.append(room)
                card_last4 = last or card_last4
            else:
                for part in child:
                    if part.tag == T_CARD:
                        card_last4 = scrub_card_element(part) or card_last4
        elif tag == T_HOTEL:
            hotel = child.get("id")
        elif tag == T_PRIMARY:
            guest = _guest(child)
        elif tag == T_SPECIAL and child.text:
            child.text = scrub_text(child.text)
            notes.append(child.text.strip())
        elif tag == T_CARD:
            card_last4 = scrub_card_element(child) or card_last4
    booked_at, revision = _when(el.get("createDateTime"))
    check_in = check_out = total = None
    for r in rooms:
        # Trusted models: read their dict rather than through pydantic's attribute access.
        d = r.__dict__
        if d["check_in"] and (check_in is None or d["check_in"] < check_in):
            check_in = d["check_in"]
        if d["check_out"] and (check_out is None or d["check_out"] > check_out):
            check_out = d["check_out"]
        if d["amount"] is not None:
            total = d["amount"] if total is None else total + d["amount"]
    return trusted(BookingRecord, {
        "channel": CHANNEL, "external_id": external_id, "event": event, "status": kind,
        "revision": revision, "booked_at": booked_at, "hotel_code": hotel,
        "check_in": check_in, "check_out": check_out,
        "guest": guest or trusted(GuestInfo, {"first_name": "", "last_name": "", "email": None,
                                              "phone": None, "country": None}),
        "rooms": rooms, "total_amount": total, "currency": rooms[0].currency if rooms else None,
        "card_last4": card_last4, "comments": "\n".join(notes) or None, "ack_token": kind,
        # The element after scrubbing: card masked to the last 4 digits, seriesCode removed.
        "raw_payload": {"format": "eqc-br", "xml": etree.tostring(el, encoding="unicode")},
    })


def _guest(primary: etree._Element) -> GuestInfo:
    first = last = ""
    phone = email = None
    for child in primary:
        tag = child.tag
        if tag == T_NAME:
            first, last = child.get("givenName") or "", child.get("surname") or ""
        elif tag == T_PHONE:
            country = child.get("countryCode")
            parts = [country, child.get("cityAreaCode"), child.get("number")]
            phone = " ".join(p for p in parts if p) or None
            if phone and country:
                phone = "+" + phone
        elif tag == T_EMAIL:
            email = child.text
    return trusted(GuestInfo, {"first_name": first, "last_name": last, "email": email,
                               "phone": phone, "country": None})


def parse_root(root: etree._Element, errors: list[str] | None = None) -> list[BookingRecord]:
    """Bookings of a BookingRetrievalRS root element."""
    if root.tag != _B + "BookingRetrievalRS":
        raise MalformedPayloadError(CHANNEL, f"unexpected root element {etree.QName(root).localname}")
    out = []
    for el in root.iter(T_BOOKING):
        try:
            out.append(parse_booking(el))
        except (ValueError, InvalidOperation, TypeError) as exc:
            problem = f"booking {el.get('id') or '?'}: {exc}"
            if errors is None:
                raise MalformedPayloadError(CHANNEL, problem) from None
            errors.append(problem)
    return out


def parse_bookings(body: bytes, errors: list[str] | None = None) -> list[BookingRecord]:
    """Bookings from a BookingRetrievalRS body, PCI-masked (broken ones raise or go to `errors`)."""
    return parse_root(parse_xml(body, CHANNEL), errors)


# ---------------------------------------------------------------- BC


def build_bc(username: str, password: str, hotel_id: str,
             confirmations: Iterable[tuple[str, str, str]]) -> bytes:
    """BookingConfirmRQ for (booking id, booking type, confirm number) triples."""
    q = f"{{{NS_BC}}}"
    root = _auth_root("BookingConfirmRQ", NS_BC, username, password, hotel_id)
    numbers = etree.SubElement(root, q + "BookingConfirmNumbers")
    stamp = utc_stamp()
    for booking_id, kind, number in confirmations:
        etree.SubElement(numbers, q + "BookingConfirmNumber", bookingID=booking_id, bookingType=kind,
                         confirmNumber=number, confirmTime=stamp)
    return _bytes(root)


# ---------------------------------------------------------------- PARR


def build_parr(username: str, password: str, hotel_id: str) -> bytes:
    q = f"{{{NS_PAR}}}"
    root = _auth_root("ProductAvailRateRetrievalRQ", NS_PAR, username, password, hotel_id)
    etree.SubElement(etree.SubElement(root, q + "ParamSet"), q + "ProductRetrieval")
    return _bytes(root)


class MappingValidation(BaseModel):
    """Which mapped partner codes Expedia does not know (or has deactivated)."""

    ok: bool
    unknown_room_types: list[str] = Field(default_factory=list)
    unknown_rate_plans: list[str] = Field(default_factory=list)
    inactive_room_types: list[str] = Field(default_factory=list)
    inactive_rate_plans: list[str] = Field(default_factory=list)
    room_types: dict[str, str] = Field(default_factory=dict)  # id -> status
    rate_plans: dict[str, str] = Field(default_factory=dict)  # id -> status


def parse_parr(root: etree._Element) -> tuple[dict[str, str], dict[str, str]]:
    """(room type id -> status, rate plan id -> status) of a ProductAvailRateRetrievalRS."""
    q = f"{{{NS_PAR}}}"
    rooms: dict[str, str] = {}
    plans: dict[str, str] = {}
    for room in root.iter(q + "RoomType"):
        rooms[room.get("id") or ""] = room.get("status") or "Active"
        for plan in room.iter(q + "RatePlan"):
            plans[plan.get("id") or ""] = plan.get("status") or "Active"
    return rooms, plans
