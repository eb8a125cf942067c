"""Booking.com OTA XML (2003/05, Version 2.001): reservation parsing and ARI/ack builders.

Pure functions shared by the adapter and the simulator. Conventions (*unverified* details):
- `Rate/@ExpireDate` is exclusive (the night of ExpireDate is not included) unless it equals
  `@EffectiveDate`;
- ARI messages carry `@LocatorID` and the answer points at it with `@RecordID` on each
  Error/Warning, so per-update outcomes can be mapped back;
- a partial failure comes as `Success` plus `Warning[@Status="NotProcessed"]` (OTA responses
  hold Success or Errors, never both).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from lxml import etree

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

CHANNEL = ChannelName.BOOKING_COM
NS = "http://www.opentravel.org/OTA/2003/05"
_N = "{" + NS + "}"
VERSION = "2.001"
RES_NOTIF = "OTA_HotelResNotif"
RES_MODIFY_NOTIF = "OTA_HotelResModifyNotif"
WEEKDAY_ATTRS = ("Mon", "Tue", "Weds", "Thur", "Fri", "Sat", "Sun")

EVENTS = {
    "Book": BookingEvent.NEW,
    "Commit": BookingEvent.NEW,
    "Modify": BookingEvent.MODIFIED,
    "Cancel": BookingEvent.CANCELLED,
}

# Tags, pre-qualified once: lxml's find() with a plain Clark name skips path compilation.
T_RES = _N + "HotelReservation"
T_MOD = _N + "HotelResModify"
T_UNIQUE = _N + "UniqueID"
T_ROOMSTAYS = _N + "RoomStays"
T_ROOMTYPES = _N + "RoomTypes"
T_RATEPLANS = _N + "RatePlans"
T_ROOMRATES = _N + "RoomRates"
T_GUESTCOUNTS = _N + "GuestCounts"
T_COMMENTS = _N + "Comments"
T_SPECIALS = _N + "SpecialRequests"
T_RESGUESTS = _N + "ResGuests"
T_PERSON = _N + "PersonName"
T_ADDRESS = _N + "Address"
T_RESIDS = _N + "HotelReservationIDs"
T_GUARANTEE = _N + "Guarantee"
T_ROOMTYPE = _N + "RoomType"
T_RATEPLAN = _N + "RatePlan"
T_ROOMRATE = _N + "RoomRate"
T_RATE = _N + "Rate"
T_BASE = _N + "Base"
T_GUESTCOUNT = _N + "GuestCount"
T_TIMESPAN = _N + "TimeSpan"
T_TOTAL = _N + "Total"
T_PROPERTY = _N + "BasicPropertyInfo"
T_TEXT = _N + "Text"
T_CUSTOMER = _N + "Customer"
T_GIVEN = _N + "GivenName"
T_SURNAME = _N + "Surname"
T_PHONE = _N + "Telephone"
T_EMAIL = _N + "Email"
T_COUNTRY = _N + "CountryName"
T_GLOBAL = _N + "ResGlobalInfo"
T_RESID = _N + "HotelReservationID"
T_CARD = _N + "PaymentCard"
T_COMMENT = _N + "Comment"
T_SPECIAL = _N + "SpecialRequest"


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _dt(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _revision(value: str | None) -> str:
    """UTC ISO-8601 with a Z, so revisions from different offsets compare as strings."""
    if value and len(value) == 25 and value.endswith("+00:00"):
        return value[:19] + "Z"
    moment = _dt(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


_DAY = timedelta(days=1)
_ZERO = Decimal("0")


def _room(stay: etree._Element) -> tuple[BookedRoom, str | None, list[str]]:
    """One RoomStay -> (BookedRoom, hotel code, comment texts); children visited once, no find().

    Values are converted and checked here (dates, finite Decimals, ints), so the room is
    built with `trusted` instead of a second validation pass.
    """
    room_type = rate_plan = currency = hotel = None
    check_in = check_out = None
    amount: Decimal | None = None
    nightly: dict[date, Decimal] = {}
    adults = children = 0
    ages: list[int] = []
    notes: list[str] = []
    fromiso = date.fromisoformat
    for child in stay:
        tag = child.tag
        if tag == T_ROOMRATES:
            for rr in child:
                if not room_type:
                    room_type = rr.get("RoomTypeCode")
                if not rate_plan:
                    rate_plan = rr.get("RatePlanCode")
                for rates in rr:
                    for rate in rates:
                        for base in rate:
                            value = base.get("AmountAfterTax") or base.get("AmountBeforeTax")
                            if value is None or base.tag != T_BASE:
                                continue
                            if currency is None:
                                currency = base.get("CurrencyCode")
                            first = rate.get("EffectiveDate") or ""
                            day = fromiso(first)
                            last = rate.get("ExpireDate")
                            money = parse_amount(value)
                            nightly[day] = money
                            if last and last != first:
                                end = fromiso(last)
                                day += _DAY
                                while day < end:
                                    nightly[day] = money
                                    day += _DAY
        elif tag == T_GUESTCOUNTS:
            for gc in child:
                count = int(gc.get("Count") or 1)
                if count < 0:
                    raise ValueError(f"negative guest count {count}")
                if gc.get("AgeQualifyingCode") == "8":
                    children += count
                    age = gc.get("Age")
                    if age:
                        ages.extend([int(age)] * count)
                else:
                    adults += count
        elif tag == T_TIMESPAN:
            start, end_ = child.get("Start"), child.get("End")
            check_in = fromiso(start) if start else None
            check_out = fromiso(end_) if end_ else None
        elif tag == T_TOTAL:
            total = child.get("AmountAfterTax") or child.get("AmountBeforeTax")
            amount = parse_amount(total) if total else None
            currency = child.get("CurrencyCode") or currency
        elif tag == T_PROPERTY:
            hotel = child.get("HotelCode")
        elif tag == T_ROOMTYPES and not room_type:
            for rt in child:
                room_type = room_type or rt.get("RoomTypeCode")
        elif tag == T_RATEPLANS and not rate_plan:
            for rp in child:
                rate_plan = rate_plan or rp.get("RatePlanCode")
        elif tag == T_COMMENTS or tag == T_SPECIALS:
            for text in child.iter(T_TEXT):
                if text.text:
                    # Guests type card numbers into free text; mask before it is kept.
                    text.text = scrub_text(text.text)
                    notes.append(text.text.strip())
    if not room_type:
        raise ValueError("RoomStay without RoomTypeCode")
    room = trusted(BookedRoom, {
        "partner_room_type_code": room_type, "partner_rate_plan_code": rate_plan or None,
        "check_in": check_in, "check_out": check_out, "adults": adults or 1, "children": children,
        "child_ages": ages, "amount": amount, "currency": currency, "nightly_rates": nightly,
    })
    return room, hotel, notes


def _guest(customer: etree._Element) -> GuestInfo:
    first = last = ""
    email = phone = country = None
    for child in customer:
        tag = child.tag
        if tag == T_PERSON:
            for part in child:
                if part.tag == T_GIVEN:
                    first = (part.text or "").strip()
                elif part.tag == T_SURNAME:
                    last = (part.text or "").strip()
        elif tag == T_PHONE:
            phone = phone or child.get("PhoneNumber")
        elif tag == T_EMAIL:
            email = email or child.text
        elif tag == T_ADDRESS:
            for part in child:
                if part.tag == T_COUNTRY:
                    country = part.get("Code")
    return trusted(GuestInfo, {"first_name": first, "last_name": last, "email": email,
                               "phone": phone, "country": country})


_NO_GUEST = {"first_name": "", "last_name": "", "email": None, "phone": None, "country": None}


def parse_reservation(res: etree._Element, source: str) -> BookingRecord:
    """One HotelReservation / HotelResModify element -> BookingRecord (masks the card in place)."""
    get = res.get
    status = get("ResStatus") or ("Book" if source == RES_NOTIF else "Modify")
    event = EVENTS.get(status)
    if event is None:
        raise ValueError(f"unknown ResStatus {status!r}")
    external_id = hotel_code = total_amount = currency = card_last4 = None
    rooms: list[BookedRoom] = []
    comments: list[str] = []
    guest = None
    for child in res:
        tag = child.tag
        if tag == T_UNIQUE:
            external_id = child.get("ID")
        elif tag == T_ROOMSTAYS:
            for stay in child:
                room, hotel, notes = _room(stay)
                rooms.append(room)
                hotel_code = hotel_code or hotel
                if notes:
                    comments.extend(notes)
        elif tag == T_RESGUESTS:
            if guest is None:
                for customer in child.iter(T_CUSTOMER):
                    guest = _guest(customer)
                    break
        elif tag == T_GLOBAL:
            for part in child:
                ptag = part.tag
                if ptag == T_TOTAL:
                    total = part.get("AmountAfterTax") or part.get("AmountBeforeTax")
                    total_amount = parse_amount(total) if total else None
                    currency = part.get("CurrencyCode")
                elif ptag == T_RESIDS and not external_id:
                    for rid in part:
                        external_id = external_id or rid.get("ResID_Value")
                elif ptag == T_GUARANTEE:
                    for card in part.iter(T_CARD):
                        card_last4 = scrub_card_element(card) or card_last4
                elif ptag == T_COMMENTS or ptag == T_SPECIALS:
                    for text in part.iter(T_TEXT):
                        if text.text:
                            text.text = scrub_text(text.text)
                            comments.append(text.text.strip())
    if not external_id:
        raise ValueError("reservation without UniqueID/HotelReservationID")
    created = get("CreateDateTime")
    check_in = check_out = None
    for r in rooms:
        # Rooms are trusted models: read their dict, not pydantic's attribute machinery.
        d = r.__dict__
        if d["check_in"] and (check_in is None or d["check_in"] < check_in):
            check_in = d["check_in"]
        if d["check_out"] and (check_out is None or d["check_out"] > check_out):
            check_out = d["check_out"]
    if total_amount is None and rooms:
        total_amount = sum((r.amount or _ZERO for r in rooms), _ZERO)
    return trusted(BookingRecord, {
        "channel": CHANNEL, "external_id": external_id, "event": event, "status": status,
        "revision": _revision(get("LastModifyDateTime") or created), "booked_at": _dt(created),
        "hotel_code": hotel_code, "check_in": check_in, "check_out": check_out,
        "guest": guest or trusted(GuestInfo, dict(_NO_GUEST)), "rooms": rooms,
        "total_amount": total_amount, "currency": currency or (rooms[0].currency if rooms else None),
        "card_last4": card_last4, "comments": "\n".join(comments) or None, "ack_token": source,
        # The element after scrubbing: card masked to the last 4 digits, SeriesCode removed.
        "raw_payload": {"format": "ota-xml", "message": source,
                        "xml": etree.tostring(res, encoding="unicode")},
    })


def parse_root(root: etree._Element, errors: list[str] | None = None) -> list[BookingRecord]:
    """Reservations of an OTA_HotelResNotifRQ or OTA_HotelResModifyNotifRQ root element."""
    tag = etree.QName(root).localname
    if tag == "OTA_HotelResNotifRQ":
        source, items = RES_NOTIF, root.iter(T_RES)
    elif tag == "OTA_HotelResModifyNotifRQ":
        source, items = RES_MODIFY_NOTIF, root.iter(T_MOD)
    else:
        raise MalformedPayloadError(CHANNEL, f"unexpected root element {tag}")
    out = []
    for res in items:
        try:
            out.append(parse_reservation(res, source))
        except (ValueError, InvalidOperation, TypeError) as exc:
            uid = res.find(T_UNIQUE)
            problem = f"reservation {uid.get('ID') if uid is not None else '?'}: {exc}"
            if errors is None:
                raise MalformedPayloadError(CHANNEL, problem) from None
            errors.append(problem)
    return out


def parse_bookings(body: bytes, errors: list[str] | None = None) -> list[BookingRecord]:
    """Reservations from an OTA_HotelResNotifRQ / OTA_HotelResModifyNotifRQ body, PCI-masked.

    A broken reservation raises MalformedPayloadError, or is reported in `errors` when given.
    """
    return parse_root(parse_xml(body, CHANNEL), errors)


# ---------------------------------------------------------------- builders


def _root(tag: str) -> etree._Element:
    return etree.Element(_N + tag, nsmap={None: NS}, Version=VERSION, TimeStamp=timestamp())


def build_ack(source: str, reservation_ids: Iterable[str]) -> bytes:
    """OTA_HotelResNotifRS / OTA_HotelResModifyNotifRS acknowledging reservations."""
    modify = source == RES_MODIFY_NOTIF
    root = _root(f"{source}RS")
    etree.SubElement(root, _N + "Success")
    holder = etree.SubElement(root, _N + ("HotelResModifies" if modify else "HotelReservations"))
    for res_id in reservation_ids:
        res = etree.SubElement(holder, _N + ("HotelResModify" if modify else "HotelReservation"))
        etree.SubElement(res, T_UNIQUE, Type="14", ID=res_id)
        ids = etree.SubElement(etree.SubElement(res, T_GLOBAL), _N + "HotelReservationIDs")
        etree.SubElement(ids, T_RESID, ResID_Type="14", ResID_Value=res_id)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _control(parent: etree._Element, update: ARIUpdate) -> None:
    attrs = {"Start": update.start.isoformat(), "End": update.end.isoformat(),
             "InvTypeCode": update.partner_room_type_code}
    if update.partner_rate_plan_code:
        attrs["RatePlanCode"] = update.partner_rate_plan_code
    if update.weekdays is not None:
        for i, name in enumerate(WEEKDAY_ATTRS):
            attrs[name] = "true" if i in update.weekdays else "false"
    etree.SubElement(parent, _N + "StatusApplicationControl", attrs)


def has_availability(update: ARIUpdate) -> bool:
    return any(v is not None for v in (update.available, update.min_los, update.max_los,
                                       update.closed_to_arrival, update.closed_to_departure,
                                       update.stop_sell))


def _avail_message(msgs: etree._Element, locator: int, u: ARIUpdate, **attrs: str) -> etree._Element:
    el = etree.SubElement(msgs, _N + "AvailStatusMessage", LocatorID=str(locator), **attrs)
    _control(el, u)
    return el


def build_avail_notif(hotel_id: str, parts: Sequence[tuple[int, ARIUpdate]]) -> bytes:
    """OTA_HotelAvailNotifRQ; each (locator, update) becomes one or more AvailStatusMessages."""
    root = _root("OTA_HotelAvailNotifRQ")
    msgs = etree.SubElement(root, _N + "AvailStatusMessages", HotelCode=hotel_id)
    for locator, u in parts:
        if u.available is not None:
            _avail_message(msgs, locator, u, BookingLimit=str(u.available))
        if u.min_los is not None or u.max_los is not None:
            los = etree.SubElement(_avail_message(msgs, locator, u), _N + "LengthsOfStay")
            for kind, value in (("SetMinLOS", u.min_los), ("SetMaxLOS", u.max_los)):
                if value is not None:
                    etree.SubElement(los, _N + "LengthOfStay", MinMaxMessageType=kind, Time=str(value))
        for restriction, flag in (("Master", u.stop_sell), ("Arrival", u.closed_to_arrival),
                                  ("Departure", u.closed_to_departure)):
            if flag is not None:
                etree.SubElement(_avail_message(msgs, locator, u), _N + "RestrictionStatus",
                                 Status="Close" if flag else "Open", Restriction=restriction)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def build_rate_notif(hotel_id: str, parts: Sequence[tuple[int, ARIUpdate]]) -> bytes:
    """OTA_HotelRateAmountNotifRQ with one RateAmountMessage per (locator, update)."""
    root = _root("OTA_HotelRateAmountNotifRQ")
    msgs = etree.SubElement(root, _N + "RateAmountMessages", HotelCode=hotel_id)
    for locator, u in parts:
        msg = etree.SubElement(msgs, _N + "RateAmountMessage", LocatorID=str(locator))
        _control(msg, u)
        rate = etree.SubElement(etree.SubElement(msg, _N + "Rates"), T_RATE)
        amounts = etree.SubElement(rate, _N + "BaseByGuestAmts")
        attrs = {"AmountAfterTax": f"{u.rate:.2f}"}
        if u.currency:
            attrs["CurrencyCode"] = u.currency
        etree.SubElement(amounts, _N + "BaseByGuestAmt", attrs)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@dataclass
class Outcome:
    """One Error/Warning of an OTA response."""

    code: str
    text: str
    record_id: str | None
    failed: bool  # Error, or Warning with Status="NotProcessed"


def parse_outcomes(root: etree._Element) -> tuple[bool, list[Outcome]]:
    """(Success present?, errors and warnings) of an OTA *RS response."""
    success = root.find(_N + "Success") is not None
    out = []
    for el in root.iter(_N + "Error", _N + "Warning"):
        is_error = el.tag == _N + "Error"
        out.append(Outcome(
            code=el.get("Code") or el.get("Type") or "UNKNOWN",
            text=(el.get("ShortText") or el.text or "").strip(),
            record_id=el.get("RecordID"),
            failed=is_error or el.get("Status") == "NotProcessed",
        ))
    return success, out
