"""Agoda YCS simulator: `POST /api?apiKey=KEY` with `<request type="N">` XML bodies.

Answers in the shapes of Agoda's published examples (tests/fixtures/agoda/, checked by
tests/channels/test_agoda_conformance.py). Types served: 10 SetARI V2 (200 / 207
PartialSuccess / 400 / 401), 11 GetARI V2, 3 and 9 GetBookingList (90-day window, from at
most 90 days back, 5 properties), 4 GetBookingDetail (1 property, 50 ids), 7
AcknowledgeBooking (simulated, see `channels/agoda_wire.py`). Bookings stay
`acknowledge="0"` (re-delivered) until their latest action is acknowledged.
A generated booking with several rooms is sold as Agoda sells it: one room type (its first
room's) with `room_count` units, adults/children summed, nightly prices summed.
`booking_hint(app, booking_id)` builds the BookingHint push Agoda would send.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request, Response
from lxml import etree

from channels import agoda_wire as wire
from channels.base import ChannelName, MalformedPayloadError
from channels.simulators.catalog import CATALOG
from channels.simulators.common import (
    BookingQueue,
    FaultSettings,
    SimBooking,
    SimState,
    make_app,
    open_hotels,
)

CHANNEL = ChannelName.AGODA
HOTEL_TZ = timezone(timedelta(hours=7))  # the simulated property sits in Bangkok time
STATUS = {"new": "ConfirmBooking", "modified": "AmendBooking", "cancelled": "CancelBooking"}
HINT = {"new": "confirm", "modified": "amend", "cancelled": "cancel"}


#: Agoda states nationality as a country name; the generator's guests carry ISO codes.
COUNTRY_NAMES = {
    "DE": "Germany", "PL": "Poland", "JP": "Japan", "GB": "United Kingdom", "ES": "Spain",
    "DK": "Denmark", "FR": "France", "TR": "Turkey", "IE": "Ireland", "NG": "Nigeria",
    "SE": "Sweden", "CZ": "Czech Republic", "TH": "Thailand",
}


def _xml(root: etree._Element, status: int = 200) -> Response:
    return Response(wire.to_bytes(root), status_code=status, media_type="text/xml")


def _result(**attrs: str) -> etree._Element:
    # Agoda's answers carry epoch milliseconds (e.g. timestamp="1501647925927").
    return etree.Element("result", timestamp=str(int(datetime.now(UTC).timestamp() * 1000)), **attrs)


def error_response(status: int, code: str, description: str, property_id: str | None = None) -> Response:
    """`<result><errors>[<property id>]<error code description/>..` (SetARI's documented form)."""
    root = _result(TUID=str(uuid.uuid4()))
    parent = etree.SubElement(root, "errors")
    if property_id is not None:
        parent = etree.SubElement(parent, "property", id=property_id)
    etree.SubElement(parent, "error", code=code, description=description)
    return _xml(root, status)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(HOTEL_TZ).isoformat(timespec="seconds")


# ---------------------------------------------------------------- rendering


def render_booking(parent: etree._Element, b: SimBooking, hotel_id: str, acknowledged: bool = False) -> None:
    """One GetBookingDetail `<booking>` in the documented shape (no card data: Agoda's
    examples carry none)."""
    cat = CATALOG[CHANNEL]
    first = b.rooms[0]
    nightly: dict[date, Decimal] = {}
    for room in b.rooms:
        for day, amount in room.nightly:
            nightly[day] = nightly.get(day, Decimal("0.00")) + amount
    cancelled = b.event == "cancelled"
    el = etree.SubElement(parent, "booking", {
        "property_id": hotel_id, "property_name": "Innsync Simulated Hotel", "booking_id": b.booking_id,
        "booking_date": _stamp(b.created_at), "last_action": _stamp(b.modified_at),
        "arrival": b.check_in.isoformat(), "departure": b.check_out.isoformat(), "status": STATUS[b.event],
        "acknowledge": "1" if acknowledged else "0", "room_id": cat["room_types"][first.room_type],
        "room_type": first.room_type, "channel_id": "1", "channel_name": "Retail",
        "rateplan_id": cat["rate_plans"][first.rate_plan], "rateplan_name": first.rate_plan,
        "room_count": str(len(b.rooms)), "adults": str(sum(r.adults for r in b.rooms)),
        "children": str(sum(len(r.child_ages) for r in b.rooms)), "extrabeds": "0",
        "cxl_code": "365D100P_100P" if first.rate_plan == "NRF" else "1D1N_1N",
    })
    if first.rate_plan == "NRF":  # the simulated promotion: a non-refundable saver
        el.set("promotion_id", "9001")
        el.set("promotion_name", "Non-refundable saver. Price includes 10% discount!")
    g = b.guest
    etree.SubElement(el, "customer", first_name=g.first_name, last_name=g.last_name,
                     nationality=COUNTRY_NAMES.get(g.country, g.country))
    requests = etree.SubElement(el, "requests")
    etree.SubElement(requests, "request", request_name="NonSmoke")
    if b.comments:
        etree.SubElement(requests, "request", request_name=f'AdditionalNotes:"{b.comments}"')
    if cancelled:  # Agoda zeroes a cancelled booking's prices
        prices = etree.SubElement(el, "prices", currency=b.currency, sell_inclusive_amt="0.0")
        etree.SubElement(prices, "price", date="", sell_inclusive_amt="0.0", type="Confirmation")
    else:
        prices = etree.SubElement(el, "prices", currency=b.currency,
                                  sell_inclusive_amt=f"{sum(nightly.values(), Decimal('0.00')):.2f}")
        for day in sorted(nightly):
            etree.SubElement(prices, "price", date=day.isoformat(), sell_inclusive_amt=f"{nightly[day]:.2f}",
                             type="Room")
    etree.SubElement(el, "paymentmodel").text = "2"


def render_booking_detail(bookings: list[SimBooking], hotel_id: str | None = None) -> bytes:
    """A GetBookingDetail answer body for these messages (also used by bench/parse.py)."""
    hotel = hotel_id or CATALOG[CHANNEL]["hotel_id"]
    root = _result()
    parent = etree.SubElement(root, "bookings", count=str(len(bookings)), iataid="96637800")
    for b in bookings:
        render_booking(parent, b, hotel)
    return wire.to_bytes(root)


def booking_hint(app: FastAPI, booking_id: str) -> dict[str, str]:
    """A JSON form of the BookingHint (our own, kept for relays that convert Agoda's XML
    push); `booking_hint_xml` is the documented form."""
    state = _holder(app, booking_id)
    b = _latest(state.queue, booking_id)
    if b is None:
        raise KeyError(booking_id)
    return {"property_id": state.hotel_id, "booking_id": b.booking_id, "last_action": _stamp(b.modified_at),
            "checkin": b.check_in.isoformat(), "checkout": b.check_out.isoformat(), "status": HINT[b.event]}


def booking_hint_xml(app: FastAPI, booking_ids: list[str]) -> bytes:
    """The documented XML BookingHint push for the bookings' latest messages (all of one
    property: the first booking's)."""
    state = _holder(app, booking_ids[0]) if booking_ids else app.state.sim
    root = etree.Element("request", timestamp=str(int(datetime.now(UTC).timestamp() * 1000)))
    bookings = etree.SubElement(etree.SubElement(root, "property", id=state.hotel_id), "bookings")
    for booking_id in booking_ids:
        b = _latest(state.queue, booking_id)
        if b is None:
            raise KeyError(booking_id)
        etree.SubElement(bookings, "booking", {
            "booking_id": b.booking_id, "booking_date": _stamp(b.created_at), "last_action": _stamp(b.modified_at),
            "arrival": b.check_in.isoformat(), "departure": b.check_out.isoformat(), "status": STATUS[b.event],
        })
    return wire.to_bytes(root)


def _holder(app: FastAPI, booking_id: str) -> SimState:
    """The account's property whose queue holds this booking (the first when none does)."""
    first: SimState = app.state.sim
    return next((h for h in first.hotels.values() if h.queue.find(booking_id)), first)


def _latest_all(queue: BookingQueue) -> list[SimBooking]:
    """The latest message of every booking in the queue."""
    latest: dict[str, SimBooking] = {}
    for m in queue.messages:
        b = m.booking
        if b.booking_id not in latest or b.revision > latest[b.booking_id].revision:
            latest[b.booking_id] = b
    return list(latest.values())


def _latest(queue: BookingQueue, booking_id: str) -> SimBooking | None:
    found = queue.find(booking_id)
    return max(found, key=lambda m: m.revision) if found else None


# ---------------------------------------------------------------- handlers


class AgodaSim:
    """The request handlers over one SimState."""

    def __init__(self, state: SimState, api_key: str | None, today: Callable[[], date]) -> None:
        self.state = state
        self.api_key = api_key
        self.today = today

    async def handle(self, request: Request) -> Response:
        key = request.query_params.get("apiKey", "")
        if not key or (self.api_key is not None and key != self.api_key):
            return error_response(401, "1503", "Authentication failed: The supplied authentication is invalid")
        try:
            root = wire.parse(await request.body())
        except MalformedPayloadError as exc:
            return error_response(400, "1001", f"Malformed XML: {exc.message}")
        if root.tag != "request":
            return error_response(400, "1002", "Root element must be <request>")
        handler = {
            wire.TYPE_SET_ARI_V2: self.set_ari, wire.TYPE_GET_ARI_V2: self.get_ari,
            wire.TYPE_BOOKING_LIST: self.booking_list, wire.TYPE_BOOKING_LIST_V2: self.booking_list,
            wire.TYPE_BOOKING_DETAIL: self.booking_detail, wire.TYPE_ACK: self.ack,
        }.get(int(type_) if (type_ := root.get("type", "")).isdigit() else -1)
        if handler is None:
            return error_response(400, "1003", f"Unsupported request type {root.get('type')}")
        criteria = root.find("criteria")
        if criteria is None:
            return error_response(400, "1004", "Missing <criteria>")
        try:
            return handler(criteria)
        except (ValueError, KeyError) as exc:
            return error_response(400, "1005", f"Invalid request: {exc}")

    # ------------------------------------------------------------ ARI

    def _check_update(self, kind: str, upd: etree._Element, rng: etree._Element) -> tuple[str, str] | None:
        cat = CATALOG[CHANNEL]
        if upd.get("room_id") not in cat["room_types"].values():
            return "2102", f"Room id {upd.get('room_id')} not found"
        if kind == "rate" and upd.get("rateplan_id") not in cat["rate_plans"].values():
            return "2103", f"Rateplan id {upd.get('rateplan_id')} not found"
        start, end = date.fromisoformat(rng.get("from", "")), date.fromisoformat(rng.get("to", ""))
        if start > end:
            return "1101", f"From date: {start} cannot be later than To date: {end}"
        if end > self.today() + timedelta(days=wire.MAX_DAYS_AHEAD):
            return wire.ERR_TOO_FAR, "Date can not be greater than 730 days"
        if end < self.today() - timedelta(days=1):
            return "2220", "Date can not be in the past"
        if self.state.chance(self.state.faults.partial_failure_rate):
            self.state.injected["partial"] += 1
            return wire.ERR_DEFAULT_RATE, "Default rate is required for the date range (simulated rejection)"
        return None

    def _apply(self, hotel: SimState, kind: str, upd: etree._Element, rng: etree._Element) -> None:
        dows = [int(d.text or 0) for d in rng.findall("dow")]
        weekdays = frozenset(d - 1 for d in dows) if dows else None
        flags = {t: upd.findtext(f"restrictions/{t}") for t in ("closed", "cta", "ctd")}
        values: dict[str, Any] = {
            "stop_sell": _flag(flags["closed"]), "closed_to_arrival": _flag(flags["cta"]),
            "closed_to_departure": _flag(flags["ctd"]),
        }
        if kind == "inventory":
            allotment = upd.findtext("allotment")
            values["available"] = int(allotment) if allotment else None
        else:
            occ = upd.find("prices/normal/occupancy")
            normal = upd.find("prices/normal")
            # Agoda's examples price per occupancy or with one `<normal default>` for all.
            price = occ.get("price") if occ is not None else normal.get("default") if normal is not None else None
            if price is not None:
                values["price"] = price
                values["currency"] = upd.find("prices").get("currency")  # type: ignore[union-attr]
            lo, hi = upd.findtext("restrictions/los/min"), upd.findtext("restrictions/los/max")
            values["min_los"] = int(lo) if lo else None
            values["max_los"] = int(hi) if hi else None
        hotel.ari.apply(upd.get("room_id", ""), upd.get("rateplan_id") if kind == "rate" else None,
                             date.fromisoformat(rng.get("from", "")), date.fromisoformat(rng.get("to", "")),
                             weekdays, values)

    def set_ari(self, criteria: etree._Element) -> Response:
        pid = criteria.get("property_id", "")
        hotel = self.state.hotel(pid)
        if hotel is None:
            return error_response(400, "1201", f"API key is not authorised for Property id: {pid}", pid)
        for upd in criteria.findall("rate/update"):
            # Request-level validation: Agoda's documented total failure (400, nothing applied).
            lo, hi = upd.findtext("restrictions/los/min"), upd.findtext("restrictions/los/max")
            if lo and hi and int(hi) < int(lo):
                return error_response(400, wire.ERR_LOS, "Max LOS cannot be less than Min Los", pid)
        failed_root = _result(TUID=str(uuid.uuid4()))
        errors = etree.Element("errors")
        prop_err = etree.SubElement(errors, "property", id=hotel.hotel_id)
        total = failed = 0
        for kind in ("inventory", "rate"):
            section = criteria.find(kind)
            if section is None:
                continue
            err_section: etree._Element | None = None
            for upd in section.findall("update"):
                for rng in upd.findall("date_range"):
                    total += 1
                    problem = self._check_update(kind, upd, rng)
                    if problem is None:
                        self._apply(hotel, kind, upd, rng)
                        continue
                    failed += 1
                    if err_section is None:
                        err_section = etree.SubElement(prop_err, kind)
                    attrs = {"room_id": upd.get("room_id", "")}
                    if kind == "rate":
                        attrs["rateplan_id"] = upd.get("rateplan_id", "")
                    e_upd = etree.SubElement(err_section, "update", attrs)
                    e_rng = etree.SubElement(e_upd, "date_range", {"from": rng.get("from", ""), "to": rng.get("to", "")})
                    etree.SubElement(e_rng, "error", code=problem[0], description=problem[1])
        if total == 0:
            return error_response(400, "1511", "[Line:1 Column:1] no <update> in request", pid)
        if not failed:
            return _xml(failed_root)
        # Per-update rejections: the documented 207 PartialSuccess form (also when every
        # update was rejected: each one is named, nothing else was applied).
        failed_root.set("status", "PartialSuccess")
        failed_root.append(errors)
        return _xml(failed_root, 207)

    def get_ari(self, criteria: etree._Element) -> Response:
        """GetARI V2 in the documented shape: one `<property id date>` per date with
        `<rates rateplan_id currency><room ...><prices><occupancy person price/>` and
        `<inventories><room allotment .../>`."""
        start = date.fromisoformat(criteria.get("from", ""))
        end = date.fromisoformat(criteria.get("to", ""))
        prop_q = criteria.find("property")
        hotel = self.state.hotel(prop_q.get("id", "")) if prop_q is not None else None
        if hotel is None:
            pid = prop_q.get("id", "") if prop_q is not None else ""
            return error_response(400, "1201", f"API key is not authorised for Property id: {pid}", pid)
        per_day: dict[str, dict[str, dict[str, Any]]] = {}
        for key, calendar in hotel.ari.calendar.items():
            for day, v in calendar.items():
                if start.isoformat() <= day <= end.isoformat():
                    per_day.setdefault(day, {})[key] = v
        root = _result()
        props = etree.SubElement(root, "properties", item_count=str(len(per_day)))
        for day in sorted(per_day):
            prop = etree.SubElement(props, "property", id=hotel.hotel_id, date=day)
            by_plan: dict[str, list[tuple[str, dict[str, Any]]]] = {}
            rooms: list[tuple[str, dict[str, Any]]] = []
            for key, v in sorted(per_day[day].items()):
                room_id, _, plan = key.partition("/")
                if plan == "*":
                    rooms.append((room_id, v))
                else:
                    by_plan.setdefault(plan, []).append((room_id, v))
            for plan, entries in by_plan.items():
                currency = next((str(v["currency"]) for _, v in entries if v.get("currency")), None)
                rates = etree.SubElement(prop, "rates", rateplan_id=plan)
                if currency:
                    rates.set("currency", currency)
                for room_id, v in entries:
                    room = etree.SubElement(rates, "room", room_id=room_id)
                    _render_values(room, v, ("stop_sell", "closed_to_arrival", "closed_to_departure",
                                             "min_los", "max_los"))
                    if v.get("price") is not None:
                        etree.SubElement(etree.SubElement(room, "prices"), "occupancy", person="1",
                                         price=f"{Decimal(str(v['price'])):.2f}")
            if rooms:
                inventories = etree.SubElement(prop, "inventories")
                for room_id, v in rooms:
                    room = etree.SubElement(inventories, "room", room_id=room_id)
                    _render_values(room, v, ("available", "stop_sell", "closed_to_arrival", "closed_to_departure"))
        return _xml(root)

    # ------------------------------------------------------------ bookings

    def booking_list(self, criteria: etree._Element) -> Response:
        props = [p.get("id", "") for p in criteria.findall("property")]
        if len(props) > wire.MAX_LIST_PROPERTIES:
            return error_response(400, "2403", "At most 5 properties per request")
        lo = datetime.fromisoformat(criteria.get("from", ""))
        hi = datetime.fromisoformat(criteria.get("to", ""))
        if lo.tzinfo is None or hi.tzinfo is None:
            return error_response(400, "2404", "from/to need a time-zone offset")
        if hi - lo > timedelta(days=wire.MAX_LIST_WINDOW_DAYS):
            return error_response(400, "2401", "Date range can not be more than 90 days")
        if lo < datetime.now(UTC) - timedelta(days=wire.MAX_LIST_LOOKBACK_DAYS):
            return error_response(400, "2402", "From date can not be older than 90 days")
        wanted = criteria.get("status")
        root = _result()
        wanted_props = props or [self.state.hotel_id]
        props_el = etree.SubElement(root, "properties", count=str(len(wanted_props)))
        for pid in wanted_props:
            prop_el = etree.SubElement(etree.SubElement(props_el, "property", id=pid), "bookings")
            hotel = self.state.hotel(pid)
            if hotel is None:
                continue
            pending = {(m.booking_id, m.revision) for m in hotel.queue.pending(
                duplicate_rate=self.state.faults.duplicate_rate, rng=self.state.rng)}
            for b in _latest_all(hotel.queue):
                if not lo <= b.modified_at <= hi or (wanted and STATUS[b.event] != wanted):
                    continue
                ack = "0" if (b.booking_id, b.revision) in pending else "1"
                etree.SubElement(prop_el, "booking", {
                    "booking_id": b.booking_id, "booking_date": _stamp(b.created_at),
                    "last_action": _stamp(b.modified_at), "arrival": b.check_in.isoformat(),
                    "departure": b.check_out.isoformat(), "status": STATUS[b.event], "acknowledge": ack,
                })
                if ack == "0" and self.state.chance(self.state.faults.duplicate_rate):
                    prop_el.append(etree.fromstring(etree.tostring(prop_el[-1])))  # same row twice
        return _xml(root)

    def booking_detail(self, criteria: etree._Element) -> Response:
        props = criteria.findall("property")
        if len(props) != 1:
            return error_response(400, "2501", "GetBookingDetail takes exactly 1 property")
        ids = [b.get("id", "") for b in props[0].findall("booking")]
        if len(ids) > wire.MAX_DETAIL_IDS:
            return error_response(400, "2502", "At most 50 bookings per request")
        hotel = self.state.hotel(props[0].get("id", ""))
        if hotel is None:
            return error_response(400, "1010", f"Property {props[0].get('id')} not authorized")
        root = _result()
        parent = etree.SubElement(root, "bookings")
        errors: etree._Element | None = None
        for bid in ids:
            b = _latest(hotel.queue, bid)
            if b is None:
                if errors is None:
                    errors = etree.SubElement(root, "errors")
                etree.SubElement(errors, "error", code="2504", booking_id=bid, description="Booking not found")
                continue
            render_booking(parent, b, hotel.hotel_id)
        return _xml(root)

    def ack(self, criteria: etree._Element) -> Response:
        pid = criteria.get("property_id")
        hotel = self.state.hotel(pid) if pid is not None else self.state
        if hotel is None:
            return error_response(400, "1201", f"API key is not authorised for Property id: {pid}", pid)
        root = _result()
        parent = etree.SubElement(root, "bookings")
        for row in criteria.findall("booking"):
            bid, last_action = row.get("booking_id", ""), row.get("last_action", "")
            messages = hotel.queue.find(bid)
            matching = [m for m in messages if _stamp(m.modified_at) == last_action]
            if not messages or not matching:
                code, text = ("2504", "Booking not found") if not messages else ("2505", "Unknown last_action")
                etree.SubElement(parent, "booking", booking_id=bid, error_code=code, description=text)
                continue
            upto = matching[0].revision
            for m in messages:
                if m.revision <= upto:
                    hotel.queue.ack(bid, revision=m.revision)
            etree.SubElement(parent, "booking", booking_id=bid, status="acknowledged")
        return _xml(root)


def _flag(text: str | None) -> bool | None:
    return None if text is None else text.strip().lower() in ("true", "1")


_ATTR = {"available": "allotment", "stop_sell": "closed", "closed_to_arrival": "cta",
         "closed_to_departure": "ctd", "min_los": "min_los", "max_los": "max_los"}


def _render_values(el: etree._Element, v: dict[str, Any], fields: tuple[str, ...]) -> None:
    for name in fields:
        value = v.get(name)
        if value is not None:
            el.set(_ATTR[name], ("true" if value else "false") if isinstance(value, bool) else str(value))


def create_app(*, bookings: int = 50, seed: int = 42, faults: FaultSettings | None = None,
               api_key: str | None = None, today: Callable[[], date] | None = None,
               hotels: int = 1) -> FastAPI:
    """The Agoda simulator of one API key authorised for `hotels` properties (the catalog's,
    then `hotel_catalog(CHANNEL, i)`), each with its own `bookings` generated bookings and
    ARI; every request names its property. `api_key=None` accepts any non-empty key."""
    cat = CATALOG[CHANNEL]
    state = SimState(channel=CHANNEL, hotel_id=cat["hotel_id"], faults=faults or FaultSettings(), seed=seed,
                     queue=BookingQueue(in_order=False))
    for hotel in open_hotels(state, hotels, in_order=False):
        if bookings:
            hotel.add_bookings(bookings)
    sim = AgodaSim(state, api_key, today or (lambda: datetime.now(HOTEL_TZ).date()))
    app = make_app(state, "Agoda YCS simulator")
    app.state.agoda = sim
    app.add_api_route("/api", sim.handle, methods=["POST"])
    return app
