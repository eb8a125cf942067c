"""Booking.com simulator: token exchange, OTA reservations (re-delivered until acked), OTA ARI.

Beyond the partner paths, `/_sim/*` (see common.py) exposes received ARI, faults and stats.
Simulated rules: at most 30 token exchanges per hour (429 beyond), 50 reservations per
response (*unverified*), dates more than 1 day in the past -> NOT_A_VALID_DATE, more than
730 days ahead -> DATES_TOO_FAR_OR_INVALID.
"""

from __future__ import annotations

import copy
import secrets
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request, Response
from lxml import etree

from channels.base import ChannelName, MalformedPayloadError
from channels.booking_com_ota import (
    _N,
    NS,
    RES_MODIFY_NOTIF,
    RES_NOTIF,
    TARGET,
    VERSION,
    WEEKDAY_ATTRS,
    timestamp,
)
from channels.simulators.catalog import CATALOG, PartnerCatalog
from channels.simulators.common import (
    BookingQueue,
    FaultSettings,
    QueuedMessage,
    SimBooking,
    SimState,
    TokenSettings,
    make_app,
    open_hotels,
)
from channels.xmlsafe import parse_xml

CHANNEL = ChannelName.BOOKING_COM
#: Booking.com answers a GET with every pending reservation ("a full list of open
#: reservations"); the optional `limit` query parameter caps one answer. A cap set here
#: applies when the request gives none (a test of paging; None: the partner's default).
PAGE_SIZE: int | None = None
TOKEN_TTL = 3600
TOKENS_PER_HOUR = 30
HORIZON_DAYS = 730
_VAT = Decimal("1.1")


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, _N + tag, attrs)
    if text is not None:
        el.text = text
    return el


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _minor(amount: Decimal) -> str:
    """An amount as Booking.com writes it: integer minor units, with DecimalPlaces="2"."""
    return str(int((amount * 100).quantize(Decimal("1"))))


def _total(parent: etree._Element, after: Decimal, currency: str) -> None:
    # The Total field table: AmountAfterTax when taxes are included for the room type,
    # otherwise AmountBeforeTax, never both. The simulated rooms include VAT.
    _sub(parent, "Total", AmountAfterTax=_minor(after), CurrencyCode=currency, DecimalPlaces="2")


class _Clock:
    """Message TimeStamps that never repeat: the adapter orders a booking's messages by the
    root TimeStamp (second precision), and in production Booking.com's 20 s polling and 5 s
    wait after an acknowledgement keep two messages of one booking apart; the simulator
    answers faster, so its clock runs ahead by a second whenever it would repeat itself."""

    def __init__(self) -> None:
        self.last = 0

    def stamp(self) -> str:
        now = max(int(time.time()), self.last + 1)
        self.last = now
        return _iso(datetime.fromtimestamp(now, UTC))


CLOCK = _Clock()


def render_reservation(parent: etree._Element, b: SimBooking, hotel_id: str, tag: str,
                       cat: PartnerCatalog | None = None) -> None:
    """One booking message as a HotelReservation / HotelResModify element, in the shape of
    Booking.com's field tables: one RoomRate per night, integer amounts with DecimalPlaces,
    the id and creation time in HotelReservationID, the booker in ResGlobalInfo/Profiles.
    A cancellation is a HotelResModify holding only ResGlobalInfo (*unverified*). Room and
    rate codes come from `cat`, the hotel's catalog (default: the first hotel's)."""
    cat = cat or CATALOG[CHANNEL]
    res = _sub(parent, tag)
    if b.event != "cancelled":
        stays = _sub(res, "RoomStays")
        guests = _sub(res, "ResGuests")
        for i, room in enumerate(b.rooms, 1):
            rt, rp = cat["room_types"][room.room_type], cat["rate_plans"][room.rate_plan]
            stay = _sub(stays, "RoomStay", IndexNumber=str(i))
            desc = _sub(_sub(_sub(stay, "RoomTypes"), "RoomType", RoomTypeCode=rt), "RoomDescription",
                        Name=f"{room.room_type} room")
            _sub(desc, "Text", f"{room.room_type} room")
            _sub(desc, "MealPlan", "Breakfast is included in the room rate." if room.rate_plan == "BB"
                 else "There is no meal option with this room.")
            commission = (room.total * Decimal("0.15")).quantize(Decimal("0.01"))
            _sub(_sub(_sub(_sub(stay, "RatePlans"), "RatePlan"), "Commission"), "CommissionPayableAmount",
                 Amount=_minor(commission), DecimalPlaces="2", CurrencyCode=b.currency)
            rates = _sub(stay, "RoomRates")
            for day, amount in room.nightly:
                rate = _sub(_sub(_sub(rates, "RoomRate", EffectiveDate=day.isoformat(), RatePlanCode=rp),
                                 "Rates"), "Rate")
                _total(rate, amount, b.currency)
            # The GuestCount field table documents one GuestCount with the room's guest count
            # (children included, no ages), as in the example: Count="2" AgeQualifyingCode="10".
            _sub(_sub(stay, "GuestCounts"), "GuestCount", Count=str(room.adults + len(room.child_ages)),
                 AgeQualifyingCode="10")
            _total(stay, room.total, b.currency)
            _sub(stay, "BasicPropertyInfo", HotelCode=hotel_id)
            _sub(_sub(stay, "ResGuestRPHs"), "ResGuestRPH", RPH=str(i))
            if b.comments and i == 1:
                _sub(_sub(_sub(stay, "Comments"), "Comment"), "Text", b.comments)
            name = _sub(_sub(_sub(_sub(_sub(_sub(guests, "ResGuest", ResGuestRPH=str(i)), "Profiles"),
                                       "ProfileInfo"), "Profile"), "Customer"), "PersonName")
            _sub(name, "GivenName", b.guest.first_name)
            _sub(name, "Surname", b.guest.last_name)
    info = _sub(res, "ResGlobalInfo")
    if b.event != "cancelled":
        card = _sub(_sub(_sub(_sub(info, "Guarantee"), "GuaranteesAccepted"), "GuaranteeAccepted"),
                    "PaymentCard", CardCode=b.card.brand, CardNumber=b.card.number,
                    SeriesCode=b.card.cvv, ExpireDate=b.card.expiry)
        _sub(card, "CardHolderName", b.card.holder)
        _total(info, b.total, b.currency)
    _sub(_sub(info, "HotelReservationIDs"), "HotelReservationID", ResID_Value=b.booking_id,
         ResID_Date=b.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    if b.event != "cancelled":
        customer = _sub(_sub(_sub(_sub(info, "Profiles"), "ProfileInfo"), "Profile"), "Customer")
        name = _sub(customer, "PersonName")
        _sub(name, "GivenName", b.guest.first_name)
        _sub(name, "Surname", b.guest.last_name)
        _sub(customer, "Telephone", PhoneNumber=b.guest.phone)
        _sub(customer, "Email", b.guest.email)
        _sub(_sub(customer, "Address"), "CountryName", Code=b.guest.country)


def render_notif(messages: list[SimBooking], hotel_id: str, source: str) -> bytes:
    """OTA_HotelResNotifRQ (new) or OTA_HotelResModifyNotifRQ (modified/cancelled) of one hotel."""
    cat = CATALOG[CHANNEL]
    return render_account_notif([(b, hotel_id, cat) for b in messages], source)


#: Rendered reservation elements kept per app (a message never changes once made).
RenderCache = dict[tuple[str, int, str, str, str], etree._Element]
RENDER_CACHE_MAX = 200_000


def render_account_notif(items: list[tuple[SimBooking, str, PartnerCatalog]], source: str,
                         cache: RenderCache | None = None) -> bytes:
    """The same for a provider account: each reservation names its own hotel (HotelCode).
    With `cache`, each message is rendered once and copied into later answers (a queue
    re-delivers its messages until they are acknowledged)."""
    root = etree.Element(_N + f"{source}RQ", nsmap={None: NS}, TimeStamp=CLOCK.stamp(),
                         Target=TARGET, Version=VERSION)
    if source == RES_NOTIF:
        holder, tag = _sub(root, "HotelReservations"), "HotelReservation"
    else:
        holder, tag = _sub(root, "HotelResModifies"), "HotelResModify"
    for b, hotel_id, cat in items:
        if cache is None:
            render_reservation(holder, b, hotel_id, tag, cat)
            continue
        key = (b.booking_id, b.revision, str(b.event), hotel_id, tag)
        element = cache.get(key)
        if element is None:
            if len(cache) >= RENDER_CACHE_MAX:
                cache.clear()
            scratch = etree.Element(_N + "scratch", nsmap={None: NS})
            render_reservation(scratch, b, hotel_id, tag, cat)
            element = cache[key] = scratch[0]
        holder.append(copy.deepcopy(element))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


Problem = tuple[str, str, str | None]  # code, text, RecordID


def _rs(tag: str, *, errors: Sequence[Problem] = (), warnings: Sequence[Problem] = ()) -> bytes:
    root = etree.Element(_N + tag, nsmap={None: NS}, TimeStamp=timestamp(), Target=TARGET,
                         Version=VERSION)
    if errors:
        holder = _sub(root, "Errors")
        for code, text, record in errors:
            attrs = {"Type": "3", "Code": code, "ShortText": text}
            if record:
                attrs["RecordID"] = record
            _sub(holder, "Error", **attrs)
    else:
        _sub(root, "Success")
        if warnings:
            holder = _sub(root, "Warnings")
            for code, text, record in warnings:
                attrs = {"Type": "3", "Code": code, "ShortText": text, "Status": "NotProcessed"}
                if record:
                    attrs["RecordID"] = record
                _sub(holder, "Warning", **attrs)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/xml")


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")



class QueueIndex:
    """Per-booking positions and the queue heads, so a page or an ack costs O(page), not O(queue).

    Kept in step by this simulator's ack handler; rebuilt when messages were added. Pages are
    exactly what a full `BookingQueue.pending()` scan would give (duplicate_rate 0).
    """

    def __init__(self, queue: BookingQueue) -> None:
        self.queue = queue
        self.size = -1
        self.by_id: dict[str, list[int]] = {}
        self.new_positions: list[int] = []
        self.new_cursor = 0
        self.ready: set[int] = set()  # modification messages at the head of their booking

    def sync(self) -> None:
        """Rebuild when messages were added since the last call."""
        if len(self.queue.messages) == self.size:
            return
        messages = self.queue.messages
        self.size = len(messages)
        self.by_id = {}
        for i, m in enumerate(messages):
            self.by_id.setdefault(m.booking.booking_id, []).append(i)
        self.new_positions = [i for i, m in enumerate(messages) if m.booking.event == "new"]
        self.new_cursor = 0
        self.ready = set()
        for positions in self.by_id.values():
            head = self._head(positions)
            if head is not None and messages[head].booking.event != "new":
                self.ready.add(head)

    def _head(self, positions: list[int]) -> int | None:
        messages = self.queue.messages
        return next((i for i in positions if not messages[i].acked), None)

    def find(self, booking_id: str) -> list[QueuedMessage]:
        self.sync()
        return [self.queue.messages[i] for i in self.by_id.get(booking_id, ())]

    def page(self, new: bool, limit: int) -> list[QueuedMessage]:
        """The first `limit` head messages of one kind (new, or modified/cancelled), in order."""
        self.sync()
        messages = self.queue.messages
        out: list[QueuedMessage] = []
        if new:
            while self.new_cursor < len(self.new_positions) and messages[self.new_positions[self.new_cursor]].acked:
                self.new_cursor += 1  # acks never undo, so the acked prefix is skipped for good
            for i in self.new_positions[self.new_cursor:]:
                if len(out) >= limit:
                    break
                m = messages[i]
                if not m.acked and self._head(self.by_id[m.booking.booking_id]) == i:
                    out.append(m)
            return out
        for i in sorted(self.ready):
            if len(out) >= limit:
                break
            out.append(messages[i])
        return out

    def acked(self, booking_id: str) -> None:
        """Note that a message of `booking_id` was acked: its next message may now be a head."""
        positions = self.by_id.get(booking_id, [])
        self.ready.difference_update(i for i in positions if self.queue.messages[i].acked)
        head = self._head(positions)
        if head is not None and self.queue.messages[head].booking.event != "new":
            self.ready.add(head)


FIRST_ID = 4_100_000_001


def create_app(*, bookings: int = 50, seed: int = 42, faults: FaultSettings | None = None,
               hotel_id: str | None = None, credentials: dict[str, str] | None = None,
               today: date | None = None, tokens: TokenSettings | None = None,
               hotels: int = 1) -> FastAPI:
    """The Booking.com simulator of one provider (machine) account connected to `hotels`
    properties: the first is `hotel_id` (default the catalog's), hotel i > 0 is
    `hotel_catalog(CHANNEL, i)`; each has its own `bookings` generated bookings, rooms and
    rates. One reservations call returns every connected hotel's pending reservations
    (`hotel_ids` filters), as Booking.com keeps one queue per provider.

    `credentials` (client id -> secret) default to accept-any; `tokens` default to a
    one-hour JWT and 30 exchanges an hour (per account)."""
    state = SimState(CHANNEL.value, hotel_id or CATALOG[CHANNEL]["hotel_id"],
                     faults=faults or FaultSettings(), seed=seed)
    state.generator.next_id = FIRST_ID  # type: ignore[union-attr]
    for hotel in open_hotels(state, hotels):
        hotel.add_bookings(bookings)
        hotel.extra["index"] = QueueIndex(hotel.queue)
    state.tokens.settings = tokens or TokenSettings(
        token_ttl_seconds=TOKEN_TTL, exchange_limit=TOKENS_PER_HOUR, window_seconds=3600)
    state.extra["today"] = today
    app = make_app(state, "Booking.com simulator")
    rendered: RenderCache = {}

    def current_day() -> date:
        return state.extra.get("today") or datetime.now(UTC).date()

    def authorized(request: Request) -> bool:
        return state.tokens.valid(request.headers.get("Authorization", ""))

    def unauthorized() -> Response:
        return Response('{"errors":[{"code":"INVALID_TOKEN"}]}', status_code=401, media_type="application/json")

    def _limit(request: Request) -> int:
        """At most this many reservations in one answer: `limit`, else PAGE_SIZE, else all."""
        given = request.query_params.get("limit", "")
        if given.isdigit() and int(given) > 0:
            return int(given)
        return PAGE_SIZE if PAGE_SIZE else sys.maxsize

    def requested(request: Request) -> tuple[list[SimState], list[str]]:
        """The hotels a reservations call asks for (`hotel_ids`, default all) and the
        requested ids not connected to this account."""
        wanted = request.query_params.get("hotel_ids")
        if wanted is None:
            return list(state.hotels.values()), []
        ids = list(dict.fromkeys(w for w in wanted.split(",") if w)) or [wanted]
        return ([state.hotels[w] for w in ids if w in state.hotels],
                [w for w in ids if w not in state.hotels])

    def owner(booking_id: str) -> QueueIndex | None:
        """The queue index of the hotel whose reservation this is."""
        for hotel in state.hotels.values():
            index: QueueIndex = hotel.extra["index"]
            index.sync()
            if booking_id in index.by_id:
                return index
        return None

    @app.post("/token-based-authentication/exchange")
    async def exchange(request: Request) -> Response:
        try:
            body: dict[str, Any] = await request.json()
        except ValueError:
            return Response('{"error":"invalid_request"}', status_code=400, media_type="application/json")
        client_id, secret = str(body.get("client_id", "")), str(body.get("client_secret", ""))
        ok = bool(client_id and secret) and (credentials is None or credentials.get(client_id) == secret)
        if not ok:
            return Response('{"error":"invalid_client"}', status_code=401, media_type="application/json")
        issued = state.tokens.issue()
        if issued is None:
            return Response('{"error":"too_many_tokens"}', status_code=429,
                            headers={"Retry-After": str(state.tokens.settings.limited_retry_after)},
                            media_type="application/json")
        token, ttl = issued
        return Response(f'{{"jwt":"{token}","expires_in":{ttl:.0f},"ruid":"{secrets.token_hex(8)}"}}',
                        media_type="application/json")

    def is_new(b: SimBooking) -> bool:
        return b.event == "new"

    def is_modify(b: SimBooking) -> bool:
        return b.event != "new"

    async def pull(request: Request, source: str) -> Response:
        if not authorized(request):
            return unauthorized()
        hotels, denied = requested(request)
        if denied:
            return _xml(_rs(f"{source}RS", errors=[("497", f"Access denied for hotel {','.join(denied)}", None)]), 403)
        # In order per booking: a modification waits until the new booking was acked.
        items: list[tuple[SimBooking, str, PartnerCatalog]] = []
        cap = _limit(request)
        for hotel in hotels:
            room = cap - len(items)
            if room <= 0:
                break
            if state.faults.duplicate_rate:
                pending = hotel.queue.pending(duplicate_rate=state.faults.duplicate_rate, rng=state.rng)
                wanted = [b for b in pending if (is_new(b) if source == RES_NOTIF else is_modify(b))][:room]
            else:
                page = hotel.extra["index"].page(source == RES_NOTIF, room)
                for msg in page:
                    msg.deliveries += 1
                wanted = [m.booking for m in page]
            items += [(b, hotel.hotel_id, hotel.extra["catalog"]) for b in wanted]
        return _xml(render_account_notif(items, source, rendered))

    async def ack(request: Request, source: str) -> Response:
        if not authorized(request):
            return unauthorized()
        try:
            root = parse_xml(await request.body(), "booking.com simulator")
        except MalformedPayloadError as exc:
            return _xml(_rs(f"{source}RS", errors=[("400", str(exc), None)]), 400)
        ids = [el.get("ResID_Value") or "" for el in root.iter(_N + "HotelReservationID")]
        check = is_new if source == RES_NOTIF else is_modify
        failures: list[tuple[str, str, str | None]] = []
        wrong_type = 0
        for res_id in ids:
            index = owner(res_id)
            messages = index.find(res_id) if index is not None else []
            if index is None or not messages:
                failures.append(("404", "Hotel reservation was not found", res_id))
                continue
            open_msgs = [m for m in messages if not m.acked]
            if open_msgs and check(open_msgs[0].booking):
                open_msgs[0].acked = True
                index.acked(res_id)
            elif any(m.acked and check(m.booking) for m in messages):
                pass  # a repeated ack of a re-delivered message is harmless
            else:
                wrong_type += 1
                failures.append(("400", "Hotel reservation has transaction message of the wrong type", res_id))
        if failures and len(failures) == len(ids):
            status = 400 if wrong_type else 404
            return _xml(_rs(f"{source}RS", errors=failures), status)
        return _xml(_rs(f"{source}RS", warnings=failures))

    @app.get(f"/hotels/ota/{RES_NOTIF}")
    async def get_new(request: Request) -> Response:
        return await pull(request, RES_NOTIF)

    @app.post(f"/hotels/ota/{RES_NOTIF}")
    async def ack_new(request: Request) -> Response:
        return await ack(request, RES_NOTIF)

    @app.get(f"/hotels/ota/{RES_MODIFY_NOTIF}")
    async def get_modified(request: Request) -> Response:
        return await pull(request, RES_MODIFY_NOTIF)

    @app.post(f"/hotels/ota/{RES_MODIFY_NOTIF}")
    async def ack_modified(request: Request) -> Response:
        return await ack(request, RES_MODIFY_NOTIF)

    def check_control(ctl: etree._Element | None, cat: PartnerCatalog) -> tuple[str, str] | None:
        if ctl is None:
            return "ROOM_ID_MISSING", "StatusApplicationControl missing"
        room, rate = ctl.get("InvTypeCode"), ctl.get("RatePlanCode")
        if not room:
            return "ROOM_ID_MISSING", "InvTypeCode missing"
        if room not in cat["room_types"].values():
            return "ROOM_ID_INVALID", f"Room ID '{room}' is not valid"
        if rate and rate not in cat["rate_plans"].values():
            return "RATE_ID_INVALID", f"Rate ID '{rate}' is not valid"
        try:
            start, end = date.fromisoformat(ctl.get("Start", "")), date.fromisoformat(ctl.get("End", ""))
        except ValueError:
            return "DATES_TOO_FAR_OR_INVALID", "invalid date"
        if start > end:
            return "FROM_DATE_SHOULD_BE_LESS_THAN_TO_DATE", f"{start} is after {end}"
        if start < current_day() - timedelta(days=1):
            return "NOT_A_VALID_DATE", f"{start} is more than 1 day in the past"
        if end > current_day() + timedelta(days=HORIZON_DAYS):
            return "DATES_TOO_FAR_OR_INVALID", f"{end} is too far in the future"
        return None

    def apply(hotel: SimState, ctl: etree._Element, values: dict[str, Any]) -> None:
        weekdays = None
        if any(ctl.get(name) is not None for name in WEEKDAY_ATTRS):
            weekdays = frozenset(i for i, name in enumerate(WEEKDAY_ATTRS) if _flag(ctl.get(name)))
        hotel.ari.apply(ctl.get("InvTypeCode", ""), ctl.get("RatePlanCode"), date.fromisoformat(ctl.get("Start", "")),
                        date.fromisoformat(ctl.get("End", "")), weekdays, values)

    async def ari(request: Request, kind: str) -> Response:
        tag = f"OTA_Hotel{kind}NotifRS"
        if not authorized(request):
            return unauthorized()
        try:
            root = parse_xml(await request.body(), "booking.com simulator")
        except MalformedPayloadError as exc:
            return _xml(_rs(tag, errors=[("400", str(exc), None)]), 400)
        holder = root.find(_N + ("AvailStatusMessages" if kind == "Avail" else "RateAmountMessages"))
        if holder is None:
            return _xml(_rs(tag, errors=[("400", "schema error: messages element missing", None)]), 400)
        hotel = state.hotel(holder.get("HotelCode") or "")
        if hotel is None:
            return _xml(_rs(tag, errors=[("497", f"You do not have access to hotel:{holder.get('HotelCode')}", None)]), 403)
        failures: dict[str, tuple[str, str, str | None]] = {}
        done: set[str] = set()
        messages = list(holder)
        for msg in messages:
            locator = msg.get("LocatorID") or ""
            ctl = msg.find(_N + "StatusApplicationControl")
            problem = check_control(ctl, hotel.extra["catalog"])
            if problem is None and locator not in done and state.chance(state.faults.partial_failure_rate):
                problem = ("SIMULATED_PARTIAL_FAILURE", "update not processed, try again")
            if problem is not None:
                failures.setdefault(locator, (problem[0], problem[1], locator or None))
                continue
            done.add(locator)
            assert ctl is not None
            if kind == "Avail":
                values: dict[str, Any] = {}
                if msg.get("BookingLimit") is not None:
                    values["available"] = int(msg.get("BookingLimit", "0"))
                for los in msg.iter(_N + "LengthOfStay"):
                    key = "min_los" if los.get("MinMaxMessageType") == "SetMinLOS" else "max_los"
                    values[key] = int(los.get("Time", "0"))
                status = msg.find(_N + "RestrictionStatus")
                if status is not None:
                    key = {"Master": "stop_sell", "Arrival": "closed_to_arrival",
                           "Departure": "closed_to_departure"}.get(status.get("Restriction", "Master"), "stop_sell")
                    values[key] = status.get("Status") == "Close"
            else:
                amt = next(msg.iter(_N + "BaseByGuestAmt"), None)
                values = {"rate": amt.get("AmountAfterTax") if amt is not None else None,
                          "currency": amt.get("CurrencyCode") if amt is not None else None}
            apply(hotel, ctl, values)
        # A locator partly applied then failed is still reported failed: the adapter re-sends it.
        done -= set(failures)
        if failures and not done:
            return _xml(_rs(tag, errors=list(failures.values())), 400)
        return _xml(_rs(tag, warnings=list(failures.values())))

    @app.post("/hotels/ota/OTA_HotelAvailNotif")
    async def avail(request: Request) -> Response:
        return await ari(request, "Avail")

    @app.post("/hotels/ota/OTA_HotelRateAmountNotif")
    async def rates(request: Request) -> Response:
        return await ari(request, "RateAmount")

    return app
