"""Expedia QuickConnect simulator: AR, BR (125 per response, in-order transactions), BC, PARR.

Answers follow Expedia's published EQC examples and XSDs (contract-tested against them):
application errors answer HTTP 200 with an `<Error code>` body (1001 bad credentials, 2002
parsing error, 3202 hotel not linked to the account, 3203/3204 unknown room types / rate plans,
3301 more than 10 confirmations); AR refusals are `Success` + Warning 7013 per stay date (at
most 20 per code); refused confirmations are `Success` + Warning 10080 (unknown booking) or
10100 (booking type mismatch) naming the booking.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request, Response
from lxml import etree

from channels.base import ChannelName, MalformedPayloadError
from channels.expedia_eqc import (
    AR_WARNINGS_PER_CODE,
    MAX_BOOKINGS_PER_RESPONSE,
    MAX_CONFIRMATIONS_PER_REQUEST,
    NS_AR,
    NS_AR_RS,
    NS_BC,
    NS_BC_RS,
    NS_BR,
    NS_PAR,
    WEEKDAY_ATTRS,
    utc_stamp,
)
from channels.simulators.catalog import CATALOG
from channels.simulators.common import (
    FaultSettings,
    QueuedMessage,
    SimBooking,
    SimState,
    make_app,
    open_hotels,
)
from channels.xmlsafe import parse_xml

CHANNEL = ChannelName.EXPEDIA
_TYPE = {"new": "Book", "modified": "Modify", "cancelled": "Cancel"}
INACTIVE_ROOM = "200199"
MAX_AR_UPDATES = 5000  # 3107 beyond (EQC AR guides)


def split_rooms(messages: Iterable[SimBooking]) -> list[SimBooking]:
    """Expedia books one room per booking id: a multi-room booking becomes several, each
    marked with the documented SpecialRequest code 3 ("Multi-room booking. ... 1 of 2 rooms.")."""
    out = []
    for b in messages:
        for i, room in enumerate(b.rooms):
            booking_id = b.booking_id if i == 0 else str(int(b.booking_id) * 10 + i)
            extra = {**b.extra, "multi_room": f"{i + 1} of {len(b.rooms)}"} if len(b.rooms) > 1 else b.extra
            out.append(replace(b, booking_id=booking_id, rooms=(room,), extra=extra))
    return out


#: Expedia VirtualCard holder as the published examples show it (Expedia's head office).
EVC_HOLDER = {"name": "ExpediaVirtualCard", "address": "1111 Expedia Group Way W", "city": "Seattle",
              "stateProv": "WA", "country": "US", "postalCode": "98119"}
EXTRA_PERSON_FEE = Decimal("15.00")  # per night and adult beyond two


def _el(parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def render_booking(parent: etree._Element, msg: QueuedMessage, hotel_id: str) -> None:
    b, cat = msg.booking, CATALOG[CHANNEL]
    status = "confirmed" if msg.acked else ("retrieved" if msg.deliveries > 1 else "pending")
    el = _el(parent, NS_BR, "Booking", id=b.booking_id, type=_TYPE[b.event], createDateTime=utc_stamp(b.modified_at),
             source="Expedia", status=status)
    _el(el, NS_BR, "Hotel", id=hotel_id)
    room = b.rooms[0]
    cancel = b.event == "cancelled"
    stay = _el(el, NS_BR, "RoomStay", roomTypeID="0" if cancel else cat["room_types"][room.room_type],
               ratePlanID="0" if cancel else cat["rate_plans"][room.rate_plan])
    _el(stay, NS_BR, "StayDate", arrival=room.check_in.isoformat(), departure=room.check_out.isoformat())
    counts = _el(stay, NS_BR, "GuestCount", adult=str(room.adults))
    if room.child_ages:  # "If no children, element does not appear"
        counts.set("child", str(len(room.child_ages)))
    for age in room.child_ages:
        _el(counts, NS_BR, "Child", age=str(age))
    rates = _el(stay, NS_BR, "PerDayRates") if cancel else _el(stay, NS_BR, "PerDayRates", currency=b.currency)
    fee = EXTRA_PERSON_FEE * max(0, room.adults - 2)
    for day, amount in room.nightly:
        attrs = {"stayDate": day.isoformat(), "baseRate": "0.00"}
        if not cancel:
            # The night's price = baseRate + extraPersonFees, as Expedia splits it.
            split = fee if Decimal("0") < fee < amount else Decimal("0")
            attrs["baseRate"] = f"{amount - split:.2f}"
            if split:
                attrs["extraPersonFees"] = f"{split:.2f}"
        _el(rates, NS_BR, "PerDayRate", **attrs)
    if cancel:  # zero amounts, no currency, no card: as the documented cancels
        _el(stay, NS_BR, "Total", amountAfterTaxes="0.00", amountOfTaxes="0.00")
    else:
        _el(stay, NS_BR, "Total", amountAfterTaxes=f"{room.total:.2f}", amountOfTaxes="0.00", currency=b.currency)
        card = _el(stay, NS_BR, "PaymentCard", cardCode=b.card.brand, cardNumber=b.card.number,
                   expireDate=b.card.expiry, seriesCode=b.card.cvv)
        _el(card, NS_BR, "CardHolder", **EVC_HOLDER)
    guest = _el(el, NS_BR, "PrimaryGuest")
    _el(guest, NS_BR, "Name", givenName=b.guest.first_name, surname=b.guest.last_name)
    if not cancel:
        cc, _, rest = b.guest.phone.lstrip("+").partition(" ")
        area, _, number = rest.partition(" ")
        _el(guest, NS_BR, "Phone", countryCode=cc, cityAreaCode=area, number=number)
        _el(guest, NS_BR, "Email", b.guest.email)
        if b.extra.get("multi_room"):
            _el(el, NS_BR, "SpecialRequest", f"Multi-room booking. Primary traveler:{b.guest.last_name}, "
                f"{b.guest.first_name}. {b.extra['multi_room']} rooms.", code="3")
        if b.comments:
            _el(el, NS_BR, "SpecialRequest", b.comments, code="4")
        _el(el, NS_BR, "SpecialRequest", "Bill only nghts bkd by Expedia to cc# @ ck-in  gst pays incid", code="5")


def render_booking_retrieval(messages: Iterable[SimBooking], hotel_id: str | None = None) -> bytes:
    """A BookingRetrievalRS holding these messages (multi-room ones split), as Expedia sends it."""
    root = etree.Element(f"{{{NS_BR}}}BookingRetrievalRS", nsmap={None: NS_BR})
    holder = _el(root, NS_BR, "Bookings")
    for b in split_rooms(messages):
        render_booking(holder, QueuedMessage(b), hotel_id or CATALOG[CHANNEL]["hotel_id"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _rs(tag: str, ns: str, *, errors: Iterable[tuple[str, str]] = (),
        warnings: Iterable[tuple[str, str, dict[str, str]]] = ()) -> Response:
    """An EQC answer: Error elements alone, or Success holding the Warnings (as the XSDs say)."""
    root = etree.Element(f"{{{ns}}}{tag}", nsmap={None: ns})
    errors = list(errors)
    if errors:
        for code, text in errors:
            _el(root, ns, "Error", text, code=code)
    else:
        success = _el(root, ns, "Success")
        for code, text, attrs in warnings:
            _el(success, ns, "Warning", text, code=code, **attrs)
    return Response(etree.tostring(root, xml_declaration=True, encoding="UTF-8"), media_type="text/xml")


def _days(ranges: Iterable[etree._Element]) -> list[date]:
    """The stay dates of DateRange elements (weekday attributes honoured)."""
    out = []
    for rng in ranges:
        day, last = date.fromisoformat(rng.get("from") or ""), date.fromisoformat(rng.get("to") or "")
        flags = [rng.get(name) for name in WEEKDAY_ATTRS]
        while day <= last:
            if all(f is None for f in flags) or flags[day.weekday()] == "true":
                out.append(day)
            day += timedelta(days=1)
    return out


def _cap(warnings: list[tuple[str, str, dict[str, str]]]) -> list[tuple[str, str, dict[str, str]]]:
    """At most 20 warnings per code ("Maximum number of occurrences per warning code: 20")."""
    seen: dict[str, int] = {}
    out = []
    for warning in warnings:
        seen[warning[0]] = seen.get(warning[0], 0) + 1
        if seen[warning[0]] <= AR_WARNINGS_PER_CODE:
            out.append(warning)
    return out


FIRST_ID = 70_000_001


def create_app(*, bookings: int = 50, seed: int = 42, faults: FaultSettings | None = None,
               hotel_id: str | None = None, credentials: dict[str, str] | None = None,
               hotels: int = 1) -> FastAPI:
    """The EQC simulator of one EQC user linked to `hotels` hotels (the first `hotel_id`,
    default the catalog's; hotel i > 0 `hotel_catalog(CHANNEL, i)`), each with its own
    `bookings` generated bookings and ARI. A request names its hotel (`Hotel/@id`); a
    booking retrieval without one returns the bookings of every linked hotel, as EQC does.
    `credentials` (username -> password) default to accept-any."""
    cat = CATALOG[CHANNEL]
    state = SimState(CHANNEL.value, hotel_id or cat["hotel_id"], faults=faults or FaultSettings(), seed=seed)
    state.generator.next_id = FIRST_ID  # type: ignore[union-attr]
    for hotel in open_hotels(state, hotels):
        hotel.queue.add(split_rooms(hotel.generator.generate(bookings)))  # type: ignore[union-attr]
    app = make_app(state, "Expedia QuickConnect simulator")
    rooms, plans = set(cat["room_types"].values()), set(cat["rate_plans"].values())

    async def read(request: Request, ns: str, tag: str,
                   rs_ns: str | None = None) -> tuple[etree._Element, list[SimState]] | Response:
        """The parsed body and the hotels it is about (the one named, else every linked
        hotel), or the error answer (bad XML, bad credentials, a hotel not linked)."""
        answer_ns = rs_ns or ns
        try:
            root = parse_xml(await request.body(), "expedia simulator")
        except MalformedPayloadError as exc:
            return _rs(tag, answer_ns, errors=[("2002", f"Parsing error: {exc.message}")])
        auth = root.find(f"{{{ns}}}Authentication")
        user = auth.get("username", "") if auth is not None else ""
        password = auth.get("password", "") if auth is not None else ""
        if not user or not password or (credentials is not None and credentials.get(user) != password):
            return _rs(tag, answer_ns, errors=[("1001", "Authentication error: invalid username or password")])
        named = root.find(f"{{{ns}}}Hotel")
        if named is None:
            return root, list(state.hotels.values())
        hotel = state.hotel(named.get("id") or "")
        if hotel is None:
            return _rs(tag, answer_ns, errors=[("3202", "Hotel ID not found. You either specified an invalid hotel ID or "
                                            "your account is not linked to this hotel.")])
        return root, [hotel]

    @app.post("/eqc/ar")
    async def ar(request: Request) -> Response:
        read_ = await read(request, NS_AR, "AvailRateUpdateRS", NS_AR_RS)
        if isinstance(read_, Response):
            return read_
        root, (hotel, *_) = read_
        q = f"{{{NS_AR}}}"
        product_days = sum(len(_days(u.findall(q + "DateRange"))) * max(1, len(u.findall(f"{q}RoomType/{q}RatePlan")))
                           for u in root.iter(q + "AvailRateUpdate"))
        if product_days > MAX_AR_UPDATES:
            return _rs("AvailRateUpdateRS", NS_AR_RS, errors=[(
                "3107", "Update exceeds allowable size - Maximum allowable size is 5000 updates.")])
        bad_rooms: list[str] = []
        bad_plans: list[str] = []
        for room in root.iter(q + "RoomType"):
            if room.get("id") not in rooms and room.get("id") not in bad_rooms:
                bad_rooms.append(room.get("id") or "")
        for plan in root.iter(q + "RatePlan"):
            if plan.get("id") not in plans and plan.get("id") not in bad_plans:
                bad_plans.append(plan.get("id") or "")
        errors = []
        # Texts as in the published "AR Response: Errors" example (ids end with a full stop).
        if bad_rooms:
            errors.append(("3203", f"The following RoomTypeIDs do not belong to the given hotel: {', '.join(bad_rooms)}."))
        if bad_plans:
            errors.append(("3204", f"The following RatePlanIDs do not belong to the given hotel: {', '.join(bad_plans)}."))
        if errors:
            return _rs("AvailRateUpdateRS", NS_AR_RS, errors=errors)  # atomic: nothing applied
        warnings: list[tuple[str, str, dict[str, str]]] = []
        for update in root.iter(q + "AvailRateUpdate"):
            ranges = update.findall(q + "DateRange")
            room = update.find(q + "RoomType")
            assert room is not None
            plan = room.find(q + "RatePlan")
            refuse_rate = (plan is not None and plan.find(q + "Rate") is not None
                           and state.chance(state.faults.partial_failure_rate))
            if refuse_rate:
                assert plan is not None
                for day in _days(ranges):
                    # One warning per stay date, worded as the published 7013 example.
                    warnings.append(("7013", f"[Room Type ID {room.get('id')}; Rate Plan ID {plan.get('id')}; "
                                             f"Stay Date {day.isoformat()}] One or more costs provided are out of "
                                             "threshold for an identified room type.", {}))
            values: dict[str, Any] = {}
            inv = room.find(q + "Inventory")
            if inv is not None:
                values["available"] = int(inv.get("totalInventoryAvailable") or 0)
            if room.get("closed") is not None:
                values["stop_sell"] = room.get("closed") == "true"
            if plan is not None:
                if plan.get("closed") is not None:
                    values["stop_sell"] = plan.get("closed") == "true"
                per_day = plan.find(f"{q}Rate/{q}PerDay")
                if per_day is not None and not refuse_rate:
                    values["rate"] = per_day.get("rate")
                    values["currency"] = plan.find(q + "Rate").get("currency")  # type: ignore[union-attr]
                restr = plan.find(q + "Restrictions")
                if restr is not None:
                    for attr, key in (("minLOS", "min_los"), ("maxLOS", "max_los")):
                        if restr.get(attr):
                            values[key] = int(restr.get(attr) or 0)
                    for attr, key in (("closedToArrival", "closed_to_arrival"), ("closedToDeparture", "closed_to_departure")):
                        if restr.get(attr):
                            values[key] = restr.get(attr) == "true"
            for rng in ranges if values else ():  # a refused rate alone leaves nothing to apply
                weekdays = None
                if any(rng.get(name) is not None for name in WEEKDAY_ATTRS):
                    weekdays = frozenset(i for i, name in enumerate(WEEKDAY_ATTRS) if rng.get(name) == "true")
                hotel.ari.apply(room.get("id") or "", plan.get("id") if plan is not None else None,
                                date.fromisoformat(rng.get("from") or ""), date.fromisoformat(rng.get("to") or ""),
                                weekdays, values)
        return _rs("AvailRateUpdateRS", NS_AR_RS, warnings=_cap(warnings))

    def transactions(hotel: SimState, params: etree._Element | None) -> list[QueuedMessage]:
        q = f"{{{NS_BR}}}"
        booking = status = None
        days = 0
        if params is not None:
            el = params.find(q + "Booking")
            booking = el.get("id") if el is not None else None
            el = params.find(q + "Status")
            status = el.get("value") if el is not None else None
            days = int(params.findtext(q + "NbDaysInPast") or 0)
        if booking:
            found = [m for m in hotel.queue.messages if m.booking.booking_id == booking and (m.deliveries or not m.acked)]
            return found[-1:]
        if status == "confirmed":
            since = datetime.now(UTC) - timedelta(days=days or 1)
            return [m for m in hotel.queue.messages if m.acked and m.booking.modified_at >= since]
        out = hotel.queue.pending_messages(duplicate_rate=state.faults.duplicate_rate, rng=state.rng)
        if status == "pending":
            out = [m for m in out if not m.deliveries and not m.acked]
        elif status == "retrieved":
            out = [m for m in out if m.deliveries and not m.acked]
        return out

    @app.post("/eqc/br")
    async def br(request: Request) -> Response:
        read_ = await read(request, NS_BR, "BookingRetrievalRS")
        if isinstance(read_, Response):
            return read_
        root, hotels = read_
        params = root.find(f"{{{NS_BR}}}ParamSet")
        chosen: list[tuple[QueuedMessage, str]] = []
        for hotel in hotels:
            room = MAX_BOOKINGS_PER_RESPONSE - len(chosen)
            if room <= 0:
                break
            chosen += [(m, hotel.hotel_id) for m in transactions(hotel, params)[:room]]
        rs = etree.Element(f"{{{NS_BR}}}BookingRetrievalRS", nsmap={None: NS_BR})
        holder = _el(rs, NS_BR, "Bookings")
        for msg, hotel_id in chosen:
            msg.deliveries += 1
            render_booking(holder, msg, hotel_id)
        return Response(etree.tostring(rs, xml_declaration=True, encoding="UTF-8"), media_type="text/xml")

    @app.post("/eqc/bc")
    async def bc(request: Request) -> Response:
        read_ = await read(request, NS_BC, "BookingConfirmRS", NS_BC_RS)
        if isinstance(read_, Response):
            return read_
        root, hotels = read_
        numbers = list(root.iter(f"{{{NS_BC}}}BookingConfirmNumber"))
        if len(numbers) > MAX_CONFIRMATIONS_PER_REQUEST:
            return _rs("BookingConfirmRS", NS_BC_RS, errors=[(
                "3301", "Update refused. No more than 10 confirmation numbers can be sent in a single message.")])
        if any(not el.get("confirmNumber") for el in numbers):
            return _rs("BookingConfirmRS", NS_BC_RS, errors=[(
                "3010", "Validation against schema failed: confirmNumber must have at least 1 character.")])
        warnings: list[tuple[str, str, dict[str, str]]] = []
        for el in numbers:
            booking_id, kind = el.get("bookingID") or "", el.get("bookingType") or ""
            named = {"bookingID": booking_id, "bookingType": kind, "confirmNumber": el.get("confirmNumber") or ""}
            msgs = [m for h in hotels for m in h.queue.messages if m.booking.booking_id == booking_id]
            open_msgs = [m for m in msgs if not m.acked]
            if open_msgs and _TYPE[open_msgs[0].booking.event] == kind and open_msgs[0].deliveries:
                open_msgs[0].acked = True
                continue
            if any(m.acked and _TYPE[m.booking.event] == kind for m in msgs):
                continue  # confirming twice is harmless
            if not msgs:
                warnings.append(("10080", "Update refused. Booking ID cannot be found.", named))
            else:
                stored = _TYPE[(open_msgs or msgs)[-1].booking.event]
                warnings.append(("10100", "Update refused. The specified booking type does not match the one we "
                                          f"have stored for this booking ID in our system ({stored}).", named))
        return _rs("BookingConfirmRS", NS_BC_RS, warnings=warnings)

    @app.post("/eqc/parr")
    async def parr(request: Request) -> Response:
        read_ = await read(request, NS_PAR, "ProductAvailRateRetrievalRS")
        if isinstance(read_, Response):
            return read_
        root, (hotel, *_) = read_
        wanted = root.find(f"{{{NS_PAR}}}ParamSet/{{{NS_PAR}}}ProductRetrieval")
        everything = wanted is not None and wanted.get("productStatus") == "All"  # default: active only
        rs = etree.Element(f"{{{NS_PAR}}}ProductAvailRateRetrievalRS", nsmap={None: NS_PAR})
        products = _el(rs, NS_PAR, "ProductList")
        _el(products, NS_PAR, "Hotel", id=hotel.hotel_id, name="Simulated Hotel", city="Berlin")
        for code, room_id in [*cat["room_types"].items(), ("OLD", INACTIVE_ROOM)]:
            status = "Inactive" if room_id == INACTIVE_ROOM else "Active"
            if status != "Active" and not everything:
                continue
            room = _el(products, NS_PAR, "RoomType", id=room_id, code=code, name=f"{code} room", status=status)
            for plan_code, plan_id in cat["rate_plans"].items():
                _el(room, NS_PAR, "RatePlan", id=plan_id, code=plan_code, name=plan_code, status="Active",
                    type="Standalone", distributionModel="ExpediaCollect", rateAcquisitionType="NetRate")
        return Response(etree.tostring(rs, xml_declaration=True, encoding="UTF-8"), media_type="text/xml")

    return app
