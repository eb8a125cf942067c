"""Expedia QuickConnect simulator: AR, BR (125 per response, in-order transactions), BC, PARR.

Application errors answer HTTP 200 with an `<Error code>` body (1001 bad credentials, 1002
hotel not authorized, 3203/3204 unknown room types / rate plans, 3102 nothing to confirm);
these codes beyond 3203/3204 are *unverified* simulator choices.
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
    MAX_BOOKINGS_PER_RESPONSE,
    NS_AR,
    NS_BC,
    NS_BR,
    NS_PAR,
    WEEKDAY_ATTRS,
    utc_stamp,
)
from channels.simulators.catalog import CATALOG
from channels.simulators.common import FaultSettings, QueuedMessage, SimBooking, SimState, make_app
from channels.xmlsafe import parse_xml

CHANNEL = ChannelName.EXPEDIA
_TYPE = {"new": "Book", "modified": "Modify", "cancelled": "Cancel"}
INACTIVE_ROOM = "200199"


def split_rooms(messages: Iterable[SimBooking]) -> list[SimBooking]:
    """Expedia books one room per booking id: a multi-room booking becomes several."""
    out = []
    for b in messages:
        for i, room in enumerate(b.rooms):
            booking_id = b.booking_id if i == 0 else str(int(b.booking_id) * 10 + i)
            out.append(replace(b, booking_id=booking_id, rooms=(room,)))
    return out


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
    counts = _el(stay, NS_BR, "GuestCount", adult=str(room.adults), child=str(len(room.child_ages)))
    for age in room.child_ages:
        _el(counts, NS_BR, "Child", age=str(age))
    rates = _el(stay, NS_BR, "PerDayRates", currency=b.currency)
    for day, amount in room.nightly:
        _el(rates, NS_BR, "PerDayRate", stayDate=day.isoformat(), baseRate="0.00" if cancel else f"{amount:.2f}")
    total = Decimal("0.00") if cancel else room.total
    _el(stay, NS_BR, "Total", amountAfterTaxes=f"{total:.2f}", amountOfTaxes="0.00", currency=b.currency)
    card = _el(stay, NS_BR, "PaymentCard", cardCode=b.card.brand, cardNumber=b.card.number,
               expireDate=b.card.expiry, seriesCode=b.card.cvv)
    _el(card, NS_BR, "CardHolder", name=b.card.holder, country=b.guest.country)
    guest = _el(el, NS_BR, "PrimaryGuest")
    _el(guest, NS_BR, "Name", givenName=b.guest.first_name, surname=b.guest.last_name)
    cc, _, rest = b.guest.phone.lstrip("+").partition(" ")
    area, _, number = rest.partition(" ")
    _el(guest, NS_BR, "Phone", countryCode=cc, cityAreaCode=area, number=number)
    _el(guest, NS_BR, "Email", b.guest.email)
    if b.comments:
        _el(el, NS_BR, "SpecialRequest", b.comments, code="5")


def render_booking_retrieval(messages: Iterable[SimBooking], hotel_id: str | None = None) -> bytes:
    """A BookingRetrievalRS holding these messages (multi-room ones split), as Expedia sends it."""
    root = etree.Element(f"{{{NS_BR}}}BookingRetrievalRS", nsmap={None: NS_BR})
    holder = _el(root, NS_BR, "Bookings")
    for b in split_rooms(messages):
        render_booking(holder, QueuedMessage(b), hotel_id or CATALOG[CHANNEL]["hotel_id"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _rs(tag: str, ns: str, *, errors: Iterable[tuple[str, str]] = (), warnings: Iterable[tuple[str, str]] = (),
        success: bool = True) -> Response:
    root = etree.Element(f"{{{ns}}}{tag}", nsmap={None: ns})
    errors = list(errors)
    if errors:
        for code, text in errors:
            _el(root, ns, "Error", text, code=code)
    elif success:
        _el(root, ns, "Success")
    for code, text in warnings:
        _el(root, ns, "Warning", text, code=code)
    return Response(etree.tostring(root, xml_declaration=True, encoding="UTF-8"), media_type="text/xml")


def create_app(*, bookings: int = 50, seed: int = 42, faults: FaultSettings | None = None,
               hotel_id: str | None = None, credentials: dict[str, str] | None = None) -> FastAPI:
    """The EQC simulator; `credentials` (username -> password) default to accept-any."""
    cat = CATALOG[CHANNEL]
    state = SimState(CHANNEL.value, hotel_id or cat["hotel_id"], faults=faults or FaultSettings(), seed=seed)
    state.generator.next_id = 70_000_001  # type: ignore[union-attr]
    state.queue.add(split_rooms(state.generator.generate(bookings)))  # type: ignore[union-attr]
    state.extra["split_rooms"] = split_rooms
    app = make_app(state, "Expedia QuickConnect simulator")
    rooms, plans = set(cat["room_types"].values()), set(cat["rate_plans"].values())

    async def read(request: Request, ns: str, tag: str) -> etree._Element | Response:
        """The parsed body, or the error answer (bad XML, bad credentials, foreign hotel)."""
        try:
            root = parse_xml(await request.body(), "expedia simulator")
        except MalformedPayloadError as exc:
            return _rs(tag, ns, errors=[("2000", f"Invalid XML: {exc.message}")])
        auth = root.find(f"{{{ns}}}Authentication")
        user = auth.get("username", "") if auth is not None else ""
        password = auth.get("password", "") if auth is not None else ""
        if not user or not password or (credentials is not None and credentials.get(user) != password):
            return _rs(tag, ns, errors=[("1001", "Authentication error: invalid username or password")])
        hotel = root.find(f"{{{ns}}}Hotel")
        if hotel is not None and hotel.get("id") != state.hotel_id:
            return _rs(tag, ns, errors=[("1002", f"User is not authorized to update hotel {hotel.get('id')}")])
        return root

    @app.post("/eqc/ar")
    async def ar(request: Request) -> Response:
        root = await read(request, NS_AR, "AvailRateUpdateRS")
        if isinstance(root, Response):
            return root
        q = f"{{{NS_AR}}}"
        bad_rooms: list[str] = []
        bad_plans: list[str] = []
        for room in root.iter(q + "RoomType"):
            if room.get("id") not in rooms and room.get("id") not in bad_rooms:
                bad_rooms.append(room.get("id") or "")
        for plan in root.iter(q + "RatePlan"):
            if plan.get("id") not in plans and plan.get("id") not in bad_plans:
                bad_plans.append(plan.get("id") or "")
        errors = []
        if bad_rooms:
            errors.append(("3203", f"The following RoomTypeIDs do not belong to the given hotel: {', '.join(bad_rooms)}"))
        if bad_plans:
            errors.append(("3204", f"The following RatePlanIDs do not belong to the given hotel: {', '.join(bad_plans)}"))
        if errors:
            return _rs("AvailRateUpdateRS", NS_AR, errors=errors)  # atomic: nothing applied
        warnings = []
        for update in root.iter(q + "AvailRateUpdate"):
            ranges = update.findall(q + "DateRange")
            room = update.find(q + "RoomType")
            assert room is not None
            plan = room.find(q + "RatePlan")
            if plan is not None and state.chance(state.faults.partial_failure_rate):
                first = ranges[0].get("from") if ranges else ""
                warnings.append(("7013", f"[Room Type ID: {room.get('id')}; Rate Plan ID: {plan.get('id')}; "
                                         f"Stay Date: {first}] The rate change is out of threshold and was not applied."))
                continue
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
                if per_day is not None:
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
            for rng in ranges:
                weekdays = None
                if any(rng.get(name) is not None for name in WEEKDAY_ATTRS):
                    weekdays = frozenset(i for i, name in enumerate(WEEKDAY_ATTRS) if rng.get(name) == "true")
                state.ari.apply(room.get("id") or "", plan.get("id") if plan is not None else None,
                                date.fromisoformat(rng.get("from") or ""), date.fromisoformat(rng.get("to") or ""),
                                weekdays, values)
        return _rs("AvailRateUpdateRS", NS_AR, warnings=warnings)

    def transactions(params: etree._Element | None) -> list[QueuedMessage]:
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
            found = [m for m in state.queue.messages if m.booking.booking_id == booking and (m.deliveries or not m.acked)]
            return found[-1:]
        if status == "confirmed":
            since = datetime.now(UTC) - timedelta(days=days or 1)
            return [m for m in state.queue.messages if m.acked and m.booking.modified_at >= since]
        out = state.queue.pending_messages(duplicate_rate=state.faults.duplicate_rate, rng=state.rng)
        if status == "pending":
            out = [m for m in out if not m.deliveries and not m.acked]
        elif status == "retrieved":
            out = [m for m in out if m.deliveries and not m.acked]
        return out

    @app.post("/eqc/br")
    async def br(request: Request) -> Response:
        root = await read(request, NS_BR, "BookingRetrievalRS")
        if isinstance(root, Response):
            return root
        chosen = transactions(root.find(f"{{{NS_BR}}}ParamSet"))[:MAX_BOOKINGS_PER_RESPONSE]
        rs = etree.Element(f"{{{NS_BR}}}BookingRetrievalRS", nsmap={None: NS_BR})
        holder = _el(rs, NS_BR, "Bookings")
        for msg in chosen:
            msg.deliveries += 1
            render_booking(holder, msg, state.hotel_id)
        return Response(etree.tostring(rs, xml_declaration=True, encoding="UTF-8"), media_type="text/xml")

    @app.post("/eqc/bc")
    async def bc(request: Request) -> Response:
        root = await read(request, NS_BC, "BookingConfirmRS")
        if isinstance(root, Response):
            return root
        numbers = list(root.iter(f"{{{NS_BC}}}BookingConfirmNumber"))
        problems: list[tuple[str, str]] = []
        for el in numbers:
            booking_id, kind = el.get("bookingID") or "", el.get("bookingType") or ""
            if not el.get("confirmNumber"):
                problems.append(("3101", f"Booking ID {booking_id}: confirmNumber is required"))
                continue
            open_msgs = [m for m in state.queue.messages if m.booking.booking_id == booking_id and not m.acked]
            if open_msgs and _TYPE[open_msgs[0].booking.event] == kind and open_msgs[0].deliveries:
                open_msgs[0].acked = True
                continue
            if any(m.acked and _TYPE[m.booking.event] == kind for m in state.queue.messages if m.booking.booking_id == booking_id):
                continue  # confirming twice is harmless
            problems.append(("3102", f"Booking ID {booking_id} has no retrieved {kind} transaction to confirm"))
        if problems and len(problems) == len(numbers):
            return _rs("BookingConfirmRS", NS_BC, errors=problems)
        return _rs("BookingConfirmRS", NS_BC, warnings=problems)

    @app.post("/eqc/parr")
    async def parr(request: Request) -> Response:
        root = await read(request, NS_PAR, "ProductAvailRateRetrievalRS")
        if isinstance(root, Response):
            return root
        rs = etree.Element(f"{{{NS_PAR}}}ProductAvailRateRetrievalRS", nsmap={None: NS_PAR})
        products = _el(rs, NS_PAR, "ProductList")
        _el(products, NS_PAR, "Hotel", id=state.hotel_id, name="Simulated Hotel", city="Berlin")
        for code, room_id in [*cat["room_types"].items(), ("OLD", INACTIVE_ROOM)]:
            room = _el(products, NS_PAR, "RoomType", id=room_id, code=code, name=f"{code} room",
                       status="Inactive" if room_id == INACTIVE_ROOM else "Active")
            for plan_code, plan_id in cat["rate_plans"].items():
                _el(room, NS_PAR, "RatePlan", id=plan_id, code=plan_code, name=plan_code, status="Active",
                    type="Standalone", distributionModel="ExpediaCollect", rateAcquisitionType="SellLAR")
        return Response(etree.tostring(rs, xml_declaration=True, encoding="UTF-8"), media_type="text/xml")

    return app
