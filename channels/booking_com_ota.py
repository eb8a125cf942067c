"""Booking.com OTA XML (2003/05, Version 2.001): reservation parsing and ARI/ack builders.

Pure functions shared by the adapter and the simulator. The reservation shape follows
Booking.com's own field tables (developers.booking.com/connectivity/docs/api-reference/...,
see channels/README.md "Booking.com conformance"):
- one `RoomRate[@EffectiveDate @RatePlanCode]` per room and night, its price in
  `Rates/Rate/Total`; no TimeSpan: check-in = first EffectiveDate, check-out = last + 1 day;
- amounts are integers scaled by `@DecimalPlaces` ("13350" with DecimalPlaces="2" = 133.50);
- the reservation id is `ResGlobalInfo/HotelReservationIDs/HotelReservationID/@ResID_Value`,
  `@ResID_Date` its creation time; the booker is `ResGlobalInfo/Profiles`, the staying guests
  `ResGuests/ResGuest` (linked to rooms through `RoomStay/ResGuestRPHs`);
- the revision is the message's root `@TimeStamp` (the only per-message time Booking.com
  documents; `HotelReservationID/@ResID_Date` is the creation time and does not move).
*Unverified* (not in the field tables): how a cancellation is told apart from a modification
(`@ResStatus` when sent, else a HotelResModify without RoomStay = cancelled); ARI answers
naming the update they refuse with `@RecordID` (else the ShortText is searched for the ids).
"""

from __future__ import annotations

import re
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
from channels.pci import scrub_card_element, scrub_text
from channels.xmlsafe import parse_xml

CHANNEL = ChannelName.BOOKING_COM
NS = "http://www.opentravel.org/OTA/2003/05"
_N = "{" + NS + "}"
VERSION = "2.001"
TARGET = "Production"
RES_NOTIF = "OTA_HotelResNotif"
RES_MODIFY_NOTIF = "OTA_HotelResModifyNotif"
WEEKDAY_ATTRS = ("Mon", "Tue", "Weds", "Thur", "Fri", "Sat", "Sun")

EVENTS = {
    "Book": BookingEvent.NEW,
    "Commit": BookingEvent.NEW,
    "Modify": BookingEvent.MODIFIED,
    "Cancel": BookingEvent.CANCELLED,
    "Cancelled": BookingEvent.CANCELLED,
}
#: Suffix Booking.com appends to RoomRate/@RatePlanCode when a virtual card pays the stay
#: (feature "VCC with rate plan ID").
VCC_SUFFIX = "VCC"

# Tags, pre-qualified once: lxml's find() with a plain Clark name skips path compilation.
T_RES = _N + "HotelReservation"
T_MOD = _N + "HotelResModify"
T_UNIQUE = _N + "UniqueID"
T_ROOMSTAYS = _N + "RoomStays"
T_ROOMTYPES = _N + "RoomTypes"
T_RATEPLANS = _N + "RatePlans"
T_ROOMRATES = _N + "RoomRates"
T_ROOMRATE = _N + "RoomRate"
T_GUESTCOUNTS = _N + "GuestCounts"
T_COMMENTS = _N + "Comments"
T_SPECIALS = _N + "SpecialRequests"
T_RESGUESTS = _N + "ResGuests"
T_RESGUEST = _N + "ResGuest"
T_RESGUESTRPHS = _N + "ResGuestRPHs"
T_SERVICERPHS = _N + "ServiceRPHs"
T_SERVICES = _N + "Services"
T_PERSON = _N + "PersonName"
T_ADDRESS = _N + "Address"
T_RESIDS = _N + "HotelReservationIDs"
T_GUARANTEE = _N + "Guarantee"
T_TOTAL = _N + "Total"
T_PROPERTY = _N + "BasicPropertyInfo"
T_TEXT = _N + "Text"
T_CUSTOMER = _N + "Customer"
T_GIVEN = _N + "GivenName"
T_SURNAME = _N + "Surname"
T_PHONE = _N + "Telephone"
T_EMAIL = _N + "Email"
T_COUNTRY = _N + "CountryName"
T_CITY = _N + "CityName"
T_POSTAL = _N + "PostalCode"
T_LINE = _N + "AddressLine"
T_GLOBAL = _N + "ResGlobalInfo"
T_CARD = _N + "PaymentCard"
T_PROFILES = _N + "Profiles"
T_TOTALCOMM = _N + "TotalCommissions"
T_COMMPAY = _N + "CommissionPayableAmount"
T_TPA = _N + "TPA_Extensions"
T_FLAG = _N + "flag"
T_PENALTIES = _N + "CancelPenalties"
T_PENALTY = _N + "CancelPenalty"
T_AMOUNTPERCENT = _N + "AmountPercent"
T_PRICEDETAILS = _N + "PriceDetails"
T_GUESTVIEW = _N + "GuestView"
T_TAX = _N + "Tax"
T_DESCRIPTION = _N + "RoomDescription"
T_MEALPLAN = _N + "MealPlan"
T_CONDITION = _N + "BookingCondition"
T_FEE = _N + "Fee"
T_PRICE = _N + "Price"
T_TIMESPAN = _N + "TimeSpan"


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _dt(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _revision(value: str | None) -> str:
    """UTC ISO-8601 with a Z, so revisions from different offsets compare as strings.

    Booking.com writes both "…+00:00" and "…-00:00" (and ResID_Date without any offset,
    read as UTC)."""
    if value and len(value) == 25 and value[19:] in ("+00:00", "-00:00"):
        return value[:19] + "Z"
    moment = _dt(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


_DAY = timedelta(days=1)
_ZERO = Decimal("0")
_SCALED: dict[tuple[str, str], Decimal] = {}


def amount(el: etree._Element, attr: str) -> Decimal | None:
    """`el/@attr` as a Decimal with `el/@DecimalPlaces` applied ("13350", 2 -> 133.50).

    A value already holding a decimal point is taken as written (DecimalPlaces then only
    states its precision). Raises ValueError/InvalidOperation on junk or non-finite values.
    """
    value = el.get(attr)
    if value is None:
        return None
    places = el.get("DecimalPlaces")
    if not places or "." in value:
        return parse_amount(value)
    key = (value, places)
    scaled = _SCALED.get(key)
    if scaled is None:
        digits = int(places)
        if not 0 <= digits <= 6:
            raise ValueError(f"DecimalPlaces {places!r} out of range")
        scaled = parse_amount(value).scaleb(-digits)
        if len(_SCALED) >= 4096:
            _SCALED.clear()
        _SCALED[key] = scaled
    return scaled


def _texts(holder: etree._Element) -> list[str]:
    """Card-scrubbed, stripped texts of every Text under `holder` (in place: guests type card
    numbers into free text; mask before anything is kept)."""
    out = []
    for text in holder.iter(T_TEXT):
        if text.text:
            text.text = scrub_text(text.text)
            stripped = text.text.strip()
            if stripped:
                out.append(stripped)
    return out


@dataclass
class _Stay:
    """What one RoomStay carries besides the BookedRoom (resolved against the reservation)."""

    hotel: str | None
    notes: list[str]
    guest_rphs: list[str]
    service_rphs: list[str]
    penalties: list[CancelPenalty]
    policy: str | None
    vcc: bool  # the rate plan code carried the VCC suffix: a virtual card pays the stay


def _room(stay: etree._Element) -> tuple[dict[str, object], _Stay]:
    """One RoomStay -> (BookedRoom values, the rest); children visited once.

    Values are converted and checked here (dates, finite Decimals, ints), so the room is
    built with `trusted` instead of a second validation pass.
    """
    room_type = rate_plan = currency = hotel = room_name = meal_plan = policy = None
    total = before = commission = taxes = None
    prices: list[NightlyPrice] = []
    nightly: dict[date, Decimal] = {}
    adults = children = 0
    ages: list[int] = []
    notes: list[str] = []
    requests: list[SpecialRequest] = []
    guest_rphs: list[str] = []
    service_rphs: list[str] = []
    penalties: list[CancelPenalty] = []
    smoking: bool | None = None
    fromiso = date.fromisoformat
    for child in stay:
        tag = child.tag
        if tag == T_ROOMRATES:
            for rr in child:
                if rr.tag == T_TPA:
                    for cond in rr.iter(T_CONDITION):
                        policy = policy or (cond.text or "").strip() or None
                    continue
                if rr.tag != T_ROOMRATE:
                    continue
                code = rr.get("RatePlanCode")
                if code and not rate_plan:
                    rate_plan = code
                night_text = rr.get("EffectiveDate")
                for rates in rr:
                    for rate in rates:
                        for tot in rate:
                            if tot.tag != T_TOTAL:
                                continue
                            after = amount(tot, "AmountAfterTax")
                            pre = amount(tot, "AmountBeforeTax")
                            price = after if after is not None else pre
                            if price is None or not (rate.get("EffectiveDate") or night_text):
                                continue
                            night = fromiso(rate.get("EffectiveDate") or night_text or "")
                            cur = tot.get("CurrencyCode")
                            currency = currency or cur
                            nightly[night] = nightly.get(night, _ZERO) + price
                            prices.append(trusted(NightlyPrice, {
                                "night": night, "amount": price, "amount_before_tax": pre,
                                "amount_after_tax": after, "base": None, "extra_person_fees": None,
                                "service_fees": None, "currency": cur, "promotion": None,
                            }))
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
        elif tag == T_TOTAL:
            after = amount(child, "AmountAfterTax")
            before = amount(child, "AmountBeforeTax")
            total = after if after is not None else before
            if after is not None and before is not None:
                taxes = after - before
            currency = child.get("CurrencyCode") or currency
        elif tag == T_PROPERTY:
            hotel = child.get("HotelCode")
        elif tag == T_ROOMTYPES:
            for rt in child:
                room_type = room_type or rt.get("RoomTypeCode")
                for desc in rt.iter(T_DESCRIPTION):
                    room_name = room_name or desc.get("Name")
                    for meal in desc.iter(T_MEALPLAN):
                        meal_plan = meal_plan or (meal.text or "").strip() or None
        elif tag == T_RATEPLANS:
            for pay in child.iter(T_COMMPAY):
                value = amount(pay, "Amount")
                if value is not None:
                    commission = (commission or _ZERO) + value
            for rp in child:
                rate_plan = rate_plan or rp.get("RatePlanCode")
        elif tag == T_COMMENTS:
            notes.extend(_texts(child))
        elif tag == T_SPECIALS:
            for req in child:
                texts = _texts(req)
                name = req.get("Name")
                if name == "smoking preference" and texts:
                    smoking = texts[0].lower().replace("-", "") != "nonsmoking"
                requests.append(trusted(SpecialRequest, {
                    "code": name, "text": " ".join(texts)}))
        elif tag == T_RESGUESTRPHS:
            guest_rphs.extend(r.get("RPH") or "" for r in child)
        elif tag == T_SERVICERPHS:
            service_rphs.extend(r.get("RPH") or "" for r in child)
        elif tag == T_PENALTIES:
            for pen in child.iter(T_PENALTY):
                policy = pen.get("PolicyCode") or policy
                part = pen.find(T_AMOUNTPERCENT)
                pct = part.get("Percent") if part is not None else None
                nights = part.get("NmbrOfNights") if part is not None else None
                penalties.append(trusted(CancelPenalty, {
                    "deadline": _dt(pen.get("From")),
                    "amount": amount(part, "Amount") if part is not None else None,
                    "percent": parse_amount(pct) if pct else None,
                    "nights": int(nights) if nights else None,
                    "currency": part.get("CurrencyCode") if part is not None else None,
                    # BCCP code 1: "charged the total price if they cancel at any time".
                    "non_refundable": True if pen.get("PolicyCode") == "1" else None,
                    "description": None,
                }))
        elif tag == T_PRICEDETAILS:
            view = child.find(T_GUESTVIEW)
            if view is not None:
                found = [amount(t, "Amount") for t in view.iter(T_TAX)]
                if found:
                    taxes = sum((t for t in found if t is not None), _ZERO)
    if not room_type:
        raise ValueError("RoomStay without RoomTypeCode")
    vcc = bool(rate_plan and rate_plan.endswith(VCC_SUFFIX))
    if vcc:
        rate_plan = rate_plan[: -len(VCC_SUFFIX)]  # type: ignore[index]
    nights = sorted(nightly)
    room = {
        "partner_room_type_code": room_type, "partner_rate_plan_code": rate_plan or None,
        "check_in": nights[0] if nights else None,
        "check_out": nights[-1] + _DAY if nights else None,
        "adults": adults or 1, "children": children, "child_ages": ages, "amount": total,
        "currency": currency, "nightly_rates": nightly,
        "external_room_id": stay.get("IndexNumber"), "room_name": room_name,
        "rate_plan_name": None, "meal_plan": meal_plan, "extra_beds": None,
        "nightly_prices": prices, "amount_before_tax": before, "taxes": taxes,
        "commission": commission, "guest": None, "extras": [], "special_requests": requests,
        "smoking": smoking,
    }
    return room, _Stay(hotel, notes, guest_rphs, service_rphs, penalties, policy, vcc)


def _customer(customer: etree._Element) -> GuestInfo:
    first = last = ""
    email = phone = country = city = postal = address = None
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
            email = email or (child.text or "").strip() or None
        elif tag == T_ADDRESS:
            for part in child:
                ptag = part.tag
                if ptag == T_COUNTRY:
                    code = (part.get("Code") or "").strip().upper()
                    country = code if len(code) == 2 and code.isalpha() else None
                elif ptag == T_CITY:
                    city = (part.text or "").strip() or None
                elif ptag == T_POSTAL:
                    postal = (part.text or "").strip() or None
                elif ptag == T_LINE:
                    address = (part.text or "").strip() or None
    return trusted(GuestInfo, {"first_name": first, "last_name": last, "email": email,
                               "phone": phone, "country": country, "country_name": None,
                               "language": None, "city": city, "postal_code": postal,
                               "address": address})


def _first_customer(holder: etree._Element) -> GuestInfo | None:
    for customer in holder.iter(T_CUSTOMER):
        return _customer(customer)
    return None


_NO_GUEST = {"first_name": "", "last_name": "", "email": None, "phone": None, "country": None,
             "country_name": None, "language": None, "city": None, "postal_code": None,
             "address": None}


def _payment(card: etree._Element, vcc: bool) -> PaymentInfo:
    """A PaymentCard already scrubbed (number masked, SeriesCode removed) -> PaymentInfo.

    `@EffectiveDate` (the day the card may be charged from) is only sent for virtual cards.
    """
    number = card.get("CardNumber") or ""
    activation = card.get("EffectiveDate")
    expiry = card.get("VCCExpirationDate")
    virtual = vcc or activation is not None
    remarks = [t for t in _texts(card)]
    return trusted(PaymentInfo, {
        "model": PaymentModel.VIRTUAL_CARD if virtual else PaymentModel.HOTEL_COLLECT,
        "card_type": card.get("CardCode"),
        "card_last4": number[-4:] if number[-4:].isdigit() else None,
        "card_expiry": card.get("ExpireDate"),
        "activation_date": date.fromisoformat(activation) if activation else None,
        "deactivation_date": date.fromisoformat(expiry[:10]) if expiry else None,
        "card_amount": amount(card, "CurrentBalance"),
        "currency": card.get("CurrencyCode"),
        "remarks": "; ".join(remarks) or None,
    })


def _extra(service: etree._Element, currency: str | None) -> ExtraService:
    """Services/Service[@ServiceRPH @ServiceInventoryCode]/ServiceDetails/(TimeSpan@Duration,
    Fees/Fee@Amount) (Fee: "int", the property's default currency, no DecimalPlaces); with
    the feature res_new_services_format, Service/Price/Total@AmountAfterTax @CurrencyCode
    ("up to two decimals", no DecimalPlaces)."""
    nights = fee = None
    for span in service.iter(T_TIMESPAN):
        duration = span.get("Duration")
        nights = int(duration) if duration and duration.isdigit() else None
        break
    for item in service.iter(T_FEE):
        value = amount(item, "Amount")
        if value is not None:
            fee = (fee or _ZERO) + value
        currency = item.get("CurrencyCode") or currency
    for price in service.iter(T_PRICE):
        for tot in price:
            if tot.tag != T_TOTAL:
                continue
            after = amount(tot, "AmountAfterTax")
            value = after if after is not None else amount(tot, "AmountBeforeTax")
            if value is not None:
                fee = (fee or _ZERO) + value
            currency = tot.get("CurrencyCode") or currency
    return trusted(ExtraService, {
        "code": service.get("ServiceInventoryCode"), "name": None, "quantity": None,
        "nights": nights, "amount": fee, "currency": currency, "included": None,
    })


def parse_reservation(res: etree._Element, source: str, stamp: str | None = None) -> BookingRecord:
    """One HotelReservation / HotelResModify element -> BookingRecord (masks the card in place).

    `stamp` is the message root's TimeStamp: the revision. Without one (a lone element), the
    reservation's own LastModifyDateTime / ResID_Date stands in.
    """
    get = res.get
    external_id = res_date = hotel_code = None
    total_amount = before = currency = card_last4 = commission = None
    rooms: list[dict[str, object]] = []
    stays: list[_Stay] = []
    comments: list[str] = []
    guests: dict[str, GuestInfo] = {}
    guest_order: list[GuestInfo] = []
    services: dict[str, ExtraService] = {}
    service_nodes: list[etree._Element] = []
    loyalty: list[str] = []
    booker = None
    card = None
    has_stays = False
    for child in res:
        tag = child.tag
        if tag == T_UNIQUE:
            external_id = external_id or child.get("ID")
        elif tag == T_ROOMSTAYS:
            for stay in child:
                has_stays = True
                room, extra = _room(stay)
                rooms.append(room)
                stays.append(extra)
                hotel_code = hotel_code or extra.hotel
                comments.extend(extra.notes)
        elif tag == T_SERVICES:
            service_nodes.extend(child)
        elif tag == T_RESGUESTS:
            for rg in child:
                found = _first_customer(rg)
                if found is not None:
                    guest_order.append(found)
                    if rg.get("ResGuestRPH"):
                        guests[rg.get("ResGuestRPH") or ""] = found
        elif tag == T_TPA:
            loyalty.extend(f.get("name") or "" for f in child.iter(T_FLAG) if f.get("name"))
        elif tag == T_GLOBAL:
            for part in child:
                ptag = part.tag
                if ptag == T_TOTAL:
                    after = amount(part, "AmountAfterTax")
                    before = amount(part, "AmountBeforeTax")
                    total_amount = after if after is not None else before
                    currency = part.get("CurrencyCode")
                elif ptag == T_RESIDS:
                    for rid in part:
                        external_id = external_id or rid.get("ResID_Value")
                        res_date = res_date or rid.get("ResID_Date")
                elif ptag == T_GUARANTEE:
                    for found_card in part.iter(T_CARD):
                        card_last4 = scrub_card_element(found_card) or card_last4
                        card = card if card is not None else found_card
                elif ptag == T_COMMENTS:
                    comments.extend(_texts(part))
                elif ptag == T_PROFILES:
                    booker = booker or _first_customer(part)
                elif ptag == T_TOTALCOMM:
                    for pay in part.iter(T_COMMPAY):
                        commission = amount(pay, "Amount")
    if not external_id:
        raise ValueError("reservation without HotelReservationID/@ResID_Value")
    status = get("ResStatus")
    if status is None:
        if source == RES_NOTIF:
            status = "Book"
        else:
            status = "Modify" if has_stays else "Cancel"
    event = EVENTS.get(status)
    if event is None:
        raise ValueError(f"unknown ResStatus {status!r}")
    if currency is None and rooms:
        first_currency = rooms[0]["currency"]
        currency = first_currency if isinstance(first_currency, str) else None
    for node in service_nodes:
        services[node.get("ServiceRPH") or str(len(services))] = _extra(node, currency)
    penalties: list[CancelPenalty] = []
    policy = None
    vcc = False
    built: list[BookedRoom] = []
    requests: list[SpecialRequest] = []
    for i, (room, extra) in enumerate(zip(rooms, stays, strict=True)):
        staying = next((guests[r] for r in extra.guest_rphs if r in guests), None)
        if staying is None and len(guest_order) == len(rooms):
            staying = guest_order[i]  # RPHs that do not match: the i-th guest of the i-th room
        room["guest"] = staying
        room["extras"] = [services[r] for r in extra.service_rphs if r in services]
        requests.extend(room["special_requests"])  # type: ignore[arg-type]
        penalties.extend(extra.penalties)
        policy = policy or extra.policy
        vcc = vcc or extra.vcc
        built.append(trusted(BookedRoom, room))
    check_in = check_out = None
    for r in built:
        d = r.__dict__
        if d["check_in"] and (check_in is None or d["check_in"] < check_in):
            check_in = d["check_in"]
        if d["check_out"] and (check_out is None or d["check_out"] > check_out):
            check_out = d["check_out"]
    if total_amount is None and built:
        total_amount = sum((r.amount or _ZERO for r in built), _ZERO)
    if card is not None:
        payment = _payment(card, vcc)
    else:
        payment = trusted(PaymentInfo, {
            "model": PaymentModel.VIRTUAL_CARD if vcc else PaymentModel.UNKNOWN, "card_type": None,
            "card_last4": None, "card_expiry": None, "activation_date": None,
            "deactivation_date": None, "card_amount": None, "currency": None, "remarks": None})
    taxes = None
    if total_amount is not None and before is not None and total_amount != before:
        taxes = total_amount - before
    elif any(r.taxes is not None for r in built):
        taxes = sum((r.taxes or _ZERO for r in built), _ZERO)
    created = get("CreateDateTime") or res_date
    revision = _revision(stamp or get("LastModifyDateTime") or created)
    return trusted(BookingRecord, {
        "channel": CHANNEL, "external_id": external_id, "event": event, "status": status,
        "revision": revision, "booked_at": _dt(created), "hotel_code": hotel_code,
        "check_in": check_in, "check_out": check_out,
        "guest": booker or (guest_order[0] if guest_order else trusted(GuestInfo, dict(_NO_GUEST))),
        "rooms": built, "total_amount": total_amount, "currency": currency,
        "card_last4": card_last4, "comments": "\n".join(comments) or None, "ack_token": source,
        # The element after scrubbing: card masked to the last 4 digits, SeriesCode removed.
        "raw_payload": {"format": "ota-xml", "message": source,
                        "xml": etree.tostring(res, encoding="unicode")},
        "amount_before_tax": before, "taxes": taxes, "commission": commission,
        "payment": payment, "extras": list(services.values()), "special_requests": requests,
        "cancel_penalties": penalties, "cancel_policy": policy, "loyalty": loyalty,
        "group_id": None, "source": None, "language": None,
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
    stamp = root.get("TimeStamp")
    out = []
    for res in items:
        try:
            out.append(parse_reservation(res, source, stamp))
        except (ValueError, InvalidOperation, TypeError) as exc:
            problem = f"reservation {_res_id(res)}: {exc}"
            if errors is None:
                raise MalformedPayloadError(CHANNEL, problem) from None
            errors.append(problem)
    return out


def _res_id(res: etree._Element) -> str:
    for rid in res.iter(_N + "HotelReservationID"):
        return rid.get("ResID_Value") or "?"
    uid = res.find(T_UNIQUE)
    return (uid.get("ID") or "?") if uid is not None else "?"


def parse_bookings(body: bytes, errors: list[str] | None = None) -> list[BookingRecord]:
    """Reservations from an OTA_HotelResNotifRQ / OTA_HotelResModifyNotifRQ body, PCI-masked.

    A broken reservation raises MalformedPayloadError, or is reported in `errors` when given.
    """
    return parse_root(parse_xml(body, CHANNEL), errors)


# ---------------------------------------------------------------- builders


def _root(tag: str) -> etree._Element:
    return etree.Element(_N + tag, nsmap={None: NS}, Version=VERSION, TimeStamp=timestamp())


def build_ack(source: str, reservation_ids: Iterable[str]) -> bytes:
    """OTA_HotelResNotifRS / OTA_HotelResModifyNotifRS acknowledging reservations.

    Booking.com's "Acknowledging new/modified reservations" tables call required: the root
    with `TimeStamp` and `Target`, then HotelReservations/HotelReservation (HotelResModifies/
    HotelResModify) / ResGlobalInfo / HotelReservationIDs / HotelReservationID[@ResID_Value].
    `Version` and `Success` are as in the documented OTA_Hotel*NotifRS examples.
    """
    modify = source == RES_MODIFY_NOTIF
    root = etree.Element(_N + f"{source}RS", nsmap={None: NS}, TimeStamp=timestamp(),
                         Target=TARGET, Version=VERSION)
    etree.SubElement(root, _N + "Success")
    holder = etree.SubElement(root, _N + ("HotelResModifies" if modify else "HotelReservations"))
    for res_id in reservation_ids:
        res = etree.SubElement(holder, _N + ("HotelResModify" if modify else "HotelReservation"))
        ids = etree.SubElement(etree.SubElement(res, T_GLOBAL), T_RESIDS)
        etree.SubElement(ids, _N + "HotelReservationID", ResID_Value=res_id)
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
        rate = etree.SubElement(etree.SubElement(msg, _N + "Rates"), _N + "Rate")
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
    type: str | None = None  # OTA @Type (EWT code list)


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
            type=el.get("Type"),
        ))
    return success, out


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")
_HOTEL_RE = re.compile(r"hotel[ :]*\d+", re.IGNORECASE)


def attribute(outcome: Outcome, updates: Sequence[tuple[int, ARIUpdate]]) -> list[int] | None:
    """Locators of the updates an Error/Warning names, or None when it names none of them.

    `@RecordID` (our LocatorID) when the answer carries one; otherwise the ShortText is read
    for the room type / rate plan ids it names (Booking.com's texts read e.g. "Room ID '%s'
    is not valid"), narrowed by any ISO date it names. A text naming the hotel ("You do not
    have access to hotel:123456") concerns the whole request: None.
    """
    if outcome.record_id:
        wanted = [loc for loc, _ in updates if str(loc) == outcome.record_id]
        return wanted or None
    text = outcome.text
    if not text or _HOTEL_RE.search(text):
        return None
    tokens = set(_TOKEN_RE.findall(text))
    named = [(loc, u) for loc, u in updates
             if u.partner_room_type_code in tokens
             or (u.partner_rate_plan_code is not None and u.partner_rate_plan_code in tokens)]
    if not named:
        return None
    days = []
    for found in _DATE_RE.findall(text):
        try:
            days.append(date.fromisoformat(found))
        except ValueError:
            continue
    if days:
        dated = [(loc, u) for loc, u in named if any(u.start <= d <= u.end for d in days)]
        named = dated or named
    return [loc for loc, _ in named]
