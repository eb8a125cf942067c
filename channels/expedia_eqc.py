"""Expedia QuickConnect (EQC) wire format: AR, BR, BC and PARR builders/parsers (pure).

Read from Expedia's published EQC pages and XSDs (see channels/README.md, Expedia):
- credentials travel in the body: `<Authentication username password/>`, `<Hotel id/>`;
- request and answer namespaces differ: AR RQ 2011/06 -> RS 2007/02, BC RQ 2007/09 -> RS 2007/08;
- an AR answer with Errors applied nothing; a Success with Warnings applied all but what the
  warnings name ("[Room Type ID 32241; Rate Plan ID 23123; Stay Date 2012-08-01] ...");
- a BC Success may hold Warnings (code 10000-11000, @bookingID): those confirmations failed;
- cancels carry roomTypeID/ratePlanID 0 and zero amounts: the record has no rooms or dates.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
    NightlyPrice,
    PaymentInfo,
    PaymentModel,
    SpecialRequest,
    parse_amount,
    trusted,
)
from channels.pci import scrub_card_element, scrub_text
from channels.xmlsafe import parse_xml

CHANNEL = ChannelName.EXPEDIA
NS_AR = "http://www.expediaconnect.com/EQC/AR/2011/06"
NS_AR_RS = "http://www.expediaconnect.com/EQC/AR/2007/02"  # AvailRateUpdateRS.xsd
NS_BR = "http://www.expediaconnect.com/EQC/BR/2014/01"
NS_BC = "http://www.expediaconnect.com/EQC/BC/2007/09"
NS_BC_RS = "http://www.expediaconnect.com/EQC/BC/2007/08"  # BookingConfirmRS.xsd
NS_PAR = "http://www.expediaconnect.com/EQC/PAR/2013/07"
MAX_BOOKINGS_PER_RESPONSE = 125
MAX_CONFIRMATIONS_PER_REQUEST = 10  # BC error 3301 beyond
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
T_PERDAYRATE = _B + "PerDayRate"
T_BASERATETYPE = _B + "BaseRateType"
T_PAYMETHOD = _B + "PaymentMethod"
T_PAYMENT = _B + "Payment"
T_CARDHOLDER = _B + "CardHolder"
T_REWARD = _B + "RewardProgram"
T_TOTAL = _B + "Total"
T_CARD = _B + "PaymentCard"
T_PRIMARY = _B + "PrimaryGuest"
T_NAME = _B + "Name"
T_PHONE = _B + "Phone"
T_EMAIL = _B + "Email"
T_SPECIAL = _B + "SpecialRequest"
T_ERROR = _B + "Error"
_DAY = timedelta(days=1)
_STAY_REF = re.compile(r"Room Type ID:?\s*([^;\]\s]+)\s*;\s*(?:Rate Plan ID:?\s*([^;\]\s]+)\s*;\s*)?"
                       r"Stay Date:?\s*(\d{4}-\d{2}-\d{2})")


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
    """One Error or Warning of an EQC answer (BC warnings name their booking in attributes)."""

    code: str
    text: str
    error: bool
    booking_id: str | None = None
    booking_type: str | None = None


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
            issues.append(Issue(el.get("code") or "", " ".join((el.text or "").split()), name == "Error",
                                el.get("bookingID"), el.get("bookingType")))
    return success, issues


# Error codes of the EQC guides ("Troubleshooting", BR "Error Codes", BC "Error & Warning Codes").
#: Retry later: system errors, "interface temporarily closed", one connection at a time.
TRANSIENT_ERRORS = frozenset({"3210", "4000", "4001", "4004", "4007", "4206", "5000"})
#: The whole call failed and retrying cannot help: access, parsing, namespace, schema, hotel id,
#: ">10 confirmations", "Internal System Error. Do not retry".
WHOLE_CALL_ERRORS = frozenset({"1000", "1001", "1003", "2002", "2010", "3010", "3202", "3206", "3207",
                               "3301", "4100", "4101"})
#: AR warnings after which the update *was* processed (7018 adjusted to 4999, 7022 inactive plan).
AR_APPLIED_WARNINGS = frozenset({"7018", "7022"})
#: "Maximum number of occurrences per warning code: 20" (AR RS reference).
AR_WARNINGS_PER_CODE = 20
#: BC 10105 "Internal system error, please try again in a few minutes for this booking".
BC_TRANSIENT_WARNINGS = frozenset({"10105"})


def is_transient_error(code: str) -> bool:
    """EQC: codes >= 4000 are system errors to retry, except 4100/4101 ("Do not retry")."""
    if code in TRANSIENT_ERRORS:
        return True
    return code.isdigit() and 4000 <= int(code) < 10000 and code not in WHOLE_CALL_ERRORS


def ids_in(text: str) -> set[str]:
    """The ids listed after the colon of a 3203/3204 message ("...hotel: 432432." -> {"432432"})."""
    tail = text.split(":", 1)[1] if ":" in text else text
    return {token.strip(".") for token in re.split(r"[\s,;]+", tail) if token.strip(".")}


def stay_refs(text: str) -> list[tuple[str, str | None, date]]:
    """(room type, rate plan or None, stay date) named in a 7xxx warning.

    Published form: "[Room Type ID 32241; Rate Plan ID 23123; Stay Date 2012-08-01] ..." (no
    colons); the colon form is accepted too.
    """
    return [(r, p or None, date.fromisoformat(d)) for r, p, d in _STAY_REF.findall(text)]


@dataclass
class Verdict:
    """What an AR answer says about one update: refusals (code, text, transient) and notes."""

    errors: list[tuple[str, str, bool]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _names(update: ARIUpdate, refs: Sequence[tuple[str, str | None, date]]) -> bool:
    for room, plan, day in refs:
        if room != update.partner_room_type_code:
            continue
        if plan is not None and plan != (update.partner_rate_plan_code or ""):
            continue
        if update.start <= day <= update.end and (update.weekdays is None or day.weekday() in update.weekdays):
            return True
    return False


def interpret_ar(updates: Sequence[ARIUpdate], issues: Sequence[Issue]) -> list[Verdict]:
    """Map the Errors/Warnings of one AvailRateUpdateRS to the updates its request carried.

    Errors: nothing of the request was applied. 3203/3204 refuse the updates whose room type /
    rate plan they list (permanent); the other updates were not applied and may be re-sent
    (transient NOT_APPLIED). An error naming no update of ours refuses them all, transient only
    for the documented retry codes. Warnings: the stays they name were not applied (except
    7018/7022); a code listed 20 times may hide more refusals, so the unnamed updates are
    reported UNCONFIRMED (transient: re-sent, each round names up to 20 more).
    """
    verdicts = [Verdict() for _ in updates]
    errors = [i for i in issues if i.error]
    if errors:
        for issue in errors:
            if issue.code in ("3203", "3204"):
                bad = ids_in(issue.text)
                hits = [k for k, u in enumerate(updates)
                        if (u.partner_room_type_code if issue.code == "3203" else u.partner_rate_plan_code) in bad]
                for k in hits:
                    verdicts[k].errors.append((issue.code, issue.text, False))
                if hits:
                    continue
            for verdict in verdicts:
                verdict.errors.append((issue.code, issue.text, is_transient_error(issue.code)))
        for verdict in verdicts:
            if not verdict.errors:
                verdict.errors.append(("NOT_APPLIED", "another update of the request was rejected", True))
        return verdicts
    counts: dict[str, int] = {}
    for issue in issues:
        counts[issue.code] = counts.get(issue.code, 0) + 1
        refs = stay_refs(issue.text)
        named = [k for k, u in enumerate(updates) if refs and _names(u, refs)]
        for k in named:
            if issue.code in AR_APPLIED_WARNINGS:
                verdicts[k].warnings.append(f"{issue.code}: {issue.text}")
            else:
                verdicts[k].errors.append((issue.code, issue.text, False))
        if not named:
            for verdict in verdicts:
                verdict.warnings.append(f"{issue.code}: {issue.text}")
    capped = sorted(c for c, n in counts.items() if n >= AR_WARNINGS_PER_CODE and c not in AR_APPLIED_WARNINGS)
    if capped:
        for verdict in verdicts:
            if not verdict.errors:
                verdict.errors.append(("UNCONFIRMED", f"EQC lists at most {AR_WARNINGS_PER_CODE} warnings per code "
                                       f"({', '.join(capped)}): this update may have been refused", True))
    return verdicts


def interpret_bc(booking_ids: Sequence[str], success: bool, issues: Sequence[Issue]) -> dict[str, tuple[str, bool]]:
    """Refused confirmations of one BookingConfirmRS: booking id -> (reason, transient).

    A Warning inside Success means "the update could not be made" for the booking it names
    (@bookingID, else the id in its text); a warning naming none of ours, or an Error, refuses
    every confirmation of the request. Ids absent from the result were confirmed.
    """
    refused: dict[str, tuple[str, bool]] = {}
    general: tuple[str, bool] | None = None
    for issue in issues:
        reason = f"{issue.code}: {issue.text}"
        if issue.error:
            general = general or (reason, is_transient_error(issue.code))
            continue
        transient = issue.code in BC_TRANSIENT_WARNINGS
        named = [b for b in booking_ids if b == issue.booking_id] or (
            [] if issue.booking_id else [b for b in booking_ids if re.search(rf"(?<!\d){re.escape(b)}(?!\d)", issue.text)])
        for booking_id in named:
            refused.setdefault(booking_id, (reason, transient))
        if not named:
            general = general or (reason, transient)
    if general is None and not success:
        general = ("confirmation refused (no Success in the answer)", False)
    if general is not None:
        for booking_id in booking_ids:
            refused.setdefault(booking_id, general)
    return refused


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


@dataclass
class _StayPay:
    """What one RoomStay says about payment (read before its card is masked)."""

    method: str | None = None  # PaymentMethod: VirtualCard, BankTransfer, CustomerCreditCard, Cash, None
    base_rate_type: str | None = None  # BaseRateType: Net / Sell (absent = Net)
    amount: Decimal | None = None  # Payment@amount: what the virtual card may be charged
    currency: str | None = None  # Payment@currencyCode
    model: str | None = None  # Payment@model: Net / Gross
    card: bool = False
    card_type: str | None = None
    card_last4: str | None = None
    card_expiry: str | None = None
    activation: date | None = None  # PaymentCard@cardActivation (UTC date)
    evc_holder: bool = False  # CardHolder@name is Expedia's virtual card holder


def _stay_card(card: etree._Element, pay: _StayPay) -> None:
    """Read a PaymentCard's non-secret facts into `pay`, then mask it in place."""
    pay.card = True
    pay.card_type = card.get("cardCode")
    pay.card_expiry = card.get("expireDate")
    activation = card.get("cardActivation")
    if activation:
        moment = datetime.fromisoformat(activation)
        pay.activation = (moment.astimezone(UTC) if moment.tzinfo else moment).date()
    for holder in card:
        if holder.tag == T_CARDHOLDER:
            pay.evc_holder = (holder.get("name") or "").replace(" ", "").lower() == "expediavirtualcard"
    pay.card_last4 = scrub_card_element(card) or pay.card_last4


def _night(rate: etree._Element, currency: str | None) -> NightlyPrice:
    """One PerDayRate: the night costs baseRate + extraPersonFees + hotelServiceFees."""
    base = parse_amount(rate.get("baseRate") or "0")
    extra_text, service_text = rate.get("extraPersonFees"), rate.get("hotelServiceFees")
    extra = parse_amount(extra_text) if extra_text else None
    service = parse_amount(service_text) if service_text else None
    amount = base
    if extra is not None:
        amount += extra
    if service is not None:
        amount += service
    return trusted(NightlyPrice, {
        "night": date.fromisoformat(rate.get("stayDate") or ""), "amount": amount,
        "amount_before_tax": None, "amount_after_tax": None, "base": base,
        "extra_person_fees": extra, "service_fees": service, "currency": currency,
        "promotion": rate.get("promoName"),
    })


def _room(stay: etree._Element) -> tuple[BookedRoom, _StayPay]:
    """One RoomStay -> (BookedRoom, its payment facts); masks its PaymentCard in place.

    Values are converted and checked here, so the room is built with `trusted`.
    """
    pay = _StayPay()
    check_in = check_out = None
    adults, children, ages = 1, 0, []
    nights: list[NightlyPrice] = []
    amount = taxes = currency = None
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
            nights = [_night(rate, currency) for rate in child if rate.tag == T_PERDAYRATE]
        elif tag == T_TOTAL:
            total, tax = child.get("amountAfterTaxes"), child.get("amountOfTaxes")
            amount = parse_amount(total) if total else None
            taxes = parse_amount(tax) if tax else None
            currency = child.get("currency") or currency
        elif tag == T_CARD:
            _stay_card(child, pay)
        elif tag == T_BASERATETYPE:
            pay.base_rate_type = (child.text or "").strip() or None
        elif tag == T_PAYMETHOD:
            pay.method = (child.text or "").strip() or None
        elif tag == T_PAYMENT:
            paid = child.get("amount")
            pay.amount = parse_amount(paid) if paid else None
            pay.currency, pay.model = child.get("currencyCode"), child.get("model")
            for card in child:  # "What Is New" shows the card inside Payment once
                if card.tag == T_CARD:
                    _stay_card(card, pay)
    for night in nights:
        if night.__dict__["currency"] is None:
            night.__dict__["currency"] = currency
    before = amount - taxes if amount is not None and taxes is not None else None
    return trusted(BookedRoom, {
        "partner_room_type_code": stay.get("roomTypeID") or "",
        "partner_rate_plan_code": stay.get("ratePlanID"),
        "check_in": check_in, "check_out": check_out, "adults": adults, "children": children,
        "child_ages": ages, "amount": amount, "currency": currency,
        "nightly_rates": {n.__dict__["night"]: n.__dict__["amount"] for n in nights},
        "external_room_id": None, "room_name": None, "rate_plan_name": None, "meal_plan": None,
        "extra_beds": None, "nightly_prices": nights, "amount_before_tax": before, "taxes": taxes,
        "commission": None, "guest": None, "extras": [], "special_requests": [], "smoking": None,
    }), pay


#: Special request codes (BR "Special Request Codes"): 1.x bedding, 2.1 non-smoking, 2.2
#: smoking, 3 multi-room / mixed-rate booking, 4 free text, 5 payment instruction, 6 value add.
SMOKING_CODES = {"2.1": False, "2.2": True}
_MULTI_ROOM = re.compile(r"Multi[- ]room booking\.\s*Primary traveler:\s*(.*?)\.\s*(\d+)\s+of\s+(\d+)\s+rooms",
                         re.IGNORECASE)
#: Expedia VirtualCard "expires within 30 days of the guest check out" (BR guides).
EVC_VALID_AFTER_CHECKOUT = timedelta(days=30)


def group_id_of(hotel: str | None, room: BookedRoom | None, requests: Sequence[SpecialRequest]) -> str | None:
    """A shared id for the bookings of one multi-room order (one Expedia booking per room).

    EQC has no order id: each room's booking carries SpecialRequest code 3 "Multi-room booking.
    Primary traveler:Smith, John. 1 of 2 rooms." The id hashes what the rooms of one order
    share (hotel, stay, primary traveler, room count); it holds no personal data.
    """
    for request in requests:
        match = _MULTI_ROOM.search(request.text) if request.code == "3" else None
        if match:
            traveler, _, rooms = match.groups()
            stay = f"{room.check_in}|{room.check_out}" if room is not None else ""
            key = f"{hotel}|{stay}|{' '.join(traveler.lower().split())}|{rooms}"
            return "eqc-multi-" + hashlib.sha256(key.encode()).hexdigest()[:20]
    return None


def _payment(pay: _StayPay | None, rate_plan: str | None, source: str | None, cancel: bool,
             room: BookedRoom | None, remarks: str | None) -> PaymentInfo:
    """Payment model per BR "Hotel Collect and Expedia Collect" and "Learn more about EVC".

    Hotel collect: rate plan id ends in "A", source starts with "A-", or the customer's card /
    cash is the method. Expedia collect: no card, or the Expedia VirtualCard (PaymentMethod
    VirtualCard, CardHolder "ExpediaVirtualCard"); cancels carry no payment details.
    """
    pay = pay or _StayPay()
    hotel_collect = (pay.method in ("CustomerCreditCard", "Cash") or (rate_plan or "").endswith("A")
                     or (source or "").startswith("A-"))
    if cancel and not pay.card:
        model = PaymentModel.UNKNOWN
    elif pay.method == "VirtualCard" or pay.evc_holder or (pay.card and not hotel_collect):
        model = PaymentModel.VIRTUAL_CARD
    elif hotel_collect:
        model = PaymentModel.HOTEL_COLLECT
    else:
        model = PaymentModel.OTA_COLLECT
    activation = deactivation = None
    if model is PaymentModel.VIRTUAL_CARD:
        # Without cardActivation the card may be charged from arrival ("Cards cannot be
        # charged prior to guest arrival").
        activation = pay.activation or (room.check_in if room is not None else None)
        deactivation = room.check_out + EVC_VALID_AFTER_CHECKOUT if room is not None and room.check_out else None
    return trusted(PaymentInfo, {
        "model": model, "card_type": pay.card_type, "card_last4": pay.card_last4,
        "card_expiry": pay.card_expiry, "activation_date": activation, "deactivation_date": deactivation,
        "card_amount": pay.amount, "currency": pay.currency, "remarks": remarks,
    })


def parse_booking(el: etree._Element) -> BookingRecord:
    """One BR Booking element -> BookingRecord (masks the card in place)."""
    kind = el.get("type") or "Book"
    event = EVENTS.get(kind)
    external_id = el.get("id")
    if event is None or not external_id:
        raise ValueError(f"booking without id or with unknown type {kind!r}")
    cancel = event is BookingEvent.CANCELLED
    rooms: list[BookedRoom] = []
    pay: _StayPay | None = None
    rate_plan: str | None = None
    guest = None
    hotel = None
    requests: list[SpecialRequest] = []
    loyalty: list[str] = []
    for child in el:
        tag = child.tag
        if tag == T_ROOMSTAY:
            rate_plan = child.get("ratePlanID")
            # Cancels carry room type / rate plan 0 and zero amounts: the stored stay stays.
            if not cancel and child.get("roomTypeID") not in (None, "", "0"):
                room, pay = _room(child)  # also masks the stay's card
                rooms.append(room)
            else:
                pay = pay or _StayPay()
                for part in child:
                    if part.tag == T_CARD:
                        _stay_card(part, pay)
        elif tag == T_HOTEL:
            hotel = child.get("id")
        elif tag == T_PRIMARY:
            guest = _guest(child)
        elif tag == T_SPECIAL and child.text and child.text.strip():
            child.text = scrub_text(child.text)
            requests.append(trusted(SpecialRequest, {"code": child.get("code"), "text": child.text.strip()}))
        elif tag == T_REWARD:
            loyalty.append(f"reward_program:{child.get('code') or ''}:{child.get('number') or ''}")
        elif tag == T_CARD:
            pay = pay or _StayPay()
            _stay_card(child, pay)
    first = rooms[0] if rooms else None
    if first is not None:
        for request in requests:
            smoking = SMOKING_CODES.get(request.code or "")
            if smoking is not None:
                first.__dict__["smoking"] = smoking
    booked_at, revision = _when(el.get("createDateTime"))
    check_in = check_out = total = taxes = before = None
    for r in rooms:
        # Trusted models: read their dict rather than through pydantic's attribute access.
        d = r.__dict__
        if d["check_in"] and (check_in is None or d["check_in"] < check_in):
            check_in = d["check_in"]
        if d["check_out"] and (check_out is None or d["check_out"] > check_out):
            check_out = d["check_out"]
        if d["amount"] is not None:
            total = d["amount"] if total is None else total + d["amount"]
        if d["taxes"] is not None:
            taxes = d["taxes"] if taxes is None else taxes + d["taxes"]
        if d["amount_before_tax"] is not None:
            before = d["amount_before_tax"] if before is None else before + d["amount_before_tax"]
    source = el.get("source")
    remarks = "\n".join(r.text for r in requests if r.code == "5") or None
    payment = _payment(pay, rate_plan, source, cancel, first, remarks)
    return trusted(BookingRecord, {
        "channel": CHANNEL, "external_id": external_id, "event": event, "status": kind,
        "revision": revision, "booked_at": booked_at, "hotel_code": hotel,
        "check_in": check_in, "check_out": check_out,
        "guest": guest or _empty_guest(),
        "rooms": rooms, "total_amount": total, "currency": rooms[0].currency if rooms else None,
        "card_last4": payment.card_last4, "comments": "\n".join(r.text for r in requests) or None,
        "ack_token": kind,
        # The element after scrubbing: card masked to the last 4 digits, seriesCode removed.
        "raw_payload": {"format": "eqc-br", "xml": etree.tostring(el, encoding="unicode")},
        "amount_before_tax": before, "taxes": taxes, "commission": None, "payment": payment,
        "extras": [], "special_requests": requests, "cancel_penalties": [], "cancel_policy": None,
        "loyalty": loyalty, "group_id": group_id_of(hotel, first, requests), "source": source,
        "language": None,
    })


def _empty_guest() -> GuestInfo:
    return trusted(GuestInfo, {"first_name": "", "last_name": "", "email": None, "phone": None,
                               "country": None, "country_name": None, "language": None, "city": None,
                               "postal_code": None, "address": None})


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
            if phone and child.get("extension"):
                phone += " ext " + (child.get("extension") or "")
        elif tag == T_EMAIL:
            email = (child.text or "").strip() or None
    return trusted(GuestInfo, {"first_name": first, "last_name": last, "email": email,
                               "phone": phone, "country": None, "country_name": None, "language": None,
                               "city": None, "postal_code": None, "address": None})


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
    # Without productStatus="All" EQC returns active products only: inactive ones must show.
    etree.SubElement(etree.SubElement(root, q + "ParamSet"), q + "ProductRetrieval", productStatus="All")
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
        rooms[(room.get("id") or "").strip()] = (room.get("status") or "Active").strip()
        for plan in room.iter(q + "RatePlan"):
            plans[(plan.get("id") or "").strip()] = (plan.get("status") or "Active").strip()
    return rooms, plans
