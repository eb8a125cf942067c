"""Airbnb simulator (approximate: the real API is partner-only), JSON over HTTP.

`POST /oauth2/v1/token` (client credentials) issues bearer tokens; `/v2/*` needs one.
`GET /v2/listings`, `PUT|GET /v2/calendars/{listing_id}/...`, `GET /v2/reservations`
(`_cursor`/`cursor` or `_offset` pagination; pending and ended reservations only with
`all_status=true` or our adapter's `include_pending=true`), `GET /v2/reservations/{code}`,
`PUT /v2/reservations/{code}` with `{"attempt_action": "accept"|"deny", ..}` (a pending
request) or `{"status_type": "cancelled_by_host", "reason": ..}`. Reservations carry the field
names public Airbnb integrations document (see channels/airbnb_wire.py); every fifth new
booking is a pending request to book. `webhook_event(app, code)` builds a signed webhook.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import FastAPI, Request, Response

from channels.airbnb_wire import DECLINE_REASONS, SIGNATURE_HEADER, sign_webhook
from channels.base import ChannelName
from channels.simulators.catalog import CATALOG, PartnerCatalog
from channels.simulators.common import (
    BookingQueue,
    FaultSettings,
    SimBooking,
    SimState,
    TokenSettings,
    make_app,
    open_hotels,
)

CHANNEL = ChannelName.AIRBNB
CALENDAR_DAYS_AHEAD = 1095  # *unverified*: Airbnb calendars reach about 3 years out
_AVAILABILITY = frozenset({"available", "unavailable"})


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def error(status: int, kind: str, message: str) -> Response:
    """Airbnb-style error body."""
    return _json({"error_code": status, "error_type": kind, "error_message": message}, status)


def confirmation_code(booking_id: str) -> str:
    """A stable Airbnb-looking code ("HM" + base36) for a generator booking id."""
    n, digits = int(booking_id), ""
    while n:
        n, r = divmod(n, 36)
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[r] + digits
    return "HM" + digits.rjust(8, "0")


def booking_id_of(code: str) -> str | None:
    """The generator booking id of a confirmation code (None: not one of ours)."""
    if not code.startswith("HM") or not code[2:].isalnum():
        return None
    try:
        return str(int(code[2:], 36))
    except ValueError:
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: str | None, *, end_of_day: bool = False) -> datetime | None:
    """An ISO 8601 time (UTC when it has no offset) or a date (its first or last second)."""
    if not text:
        return None
    if len(text) == 10:
        day = date.fromisoformat(text)
        moment = datetime.combine(day, time.max if end_of_day else time.min)
    else:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_request(b: SimBooking) -> bool:
    """Every fifth booking arrives as a request to book (needs accept/decline)."""
    return int(b.booking_id) % 5 == 0


HOST_FEE_RATE = Decimal("0.03")  # Airbnb's split-fee host service fee (its help pages)
HOST_FEE_VAT_RATE = Decimal("0.20")
CENT = Decimal("0.01")
# A decision's status_type, and the statuses it may be taken from.
_DECISIONS = {"accept": ("accept", ("pending",)), "deny": ("deny", ("pending",)),
              "cancelled_by_host": ("cancelled_by_host", ("accept",))}


def _money(amount: Decimal) -> str:
    """An amount as Airbnb's `*_accurate` fields carry it: a decimal string."""
    return str(amount.quantize(CENT))


def reservation(b: SimBooking, decision: tuple[str, datetime] | None = None,
                cat: PartnerCatalog | None = None) -> dict[str, Any]:
    """One reservation as public Airbnb clients show it: the first room's listing (from the
    hotel's catalog `cat`, default the first hotel's), host payout figures as decimal
    strings; no card (Airbnb collects the guest's payment itself)."""
    room = b.rooms[0]
    listing = (cat or CATALOG[CHANNEL])["room_types"][room.room_type]
    status = {"new": "accept", "modified": "accept", "cancelled": "cancelled_by_guest"}[b.event]
    updated = b.modified_at
    booked: datetime | None = b.created_at
    if status == "accept" and is_request(b):
        status, booked = "pending", None
    # A host decision stands until the guest changes the booking again (a later message).
    if decision is not None and decision[1] >= b.modified_at:
        status, updated = decision
        if status == "accept" and booked is None:
            booked = updated
    kids = sum(1 for a in room.child_ages if a >= 2)
    infants = len(room.child_ages) - kids
    base = room.total
    host_fee = (base * HOST_FEE_RATE).quantize(CENT)
    vat = (host_fee * HOST_FEE_VAT_RATE).quantize(CENT)
    payout = base - host_fee - vat
    return {
        "confirmation_code": confirmation_code(b.booking_id),
        "listing_id": int(listing),
        "listing_id_str": listing,
        "status_type": status,
        "created_at": _iso(b.created_at),
        "updated_at": _iso(updated),
        "booked_at": _iso(booked) if booked else None,
        "start_date": room.check_in.isoformat(),
        "end_date": room.check_out.isoformat(),
        "nights": (room.check_out - room.check_in).days,
        "number_of_guests": room.adults + kids,
        "guest_details": {"number_of_adults": room.adults, "number_of_children": kids, "number_of_infants": infants},
        "guest_id": int(b.booking_id) % 100_000_000,
        "guest_first_name": b.guest.first_name,
        "guest_last_name": b.guest.last_name,
        "guest_email": b.guest.email,
        "guest_phone_numbers": [b.guest.phone],
        "guest_preferred_locale": "en",
        "host_currency": b.currency,
        "listing_base_price_accurate": _money(base),
        "host_fee_base_accurate": _money(host_fee),
        "host_fee_vat_accurate": _money(vat),
        "listing_cleaning_fee_accurate": "0.00",
        "expected_payout_amount_accurate": _money(payout),
        "expected_payout_amount_before_taxes_accurate": _money(payout),
        "pass_through_tax_expected_amount_accurate": "0.00",
        "standard_fees_details": [],
        "cancellation_policy_category": "moderate",
        "thread_id": int(b.booking_id) % 1_000_000_000,
        # Guesses (no public source shows them in a reservation): a per-night breakdown of
        # the listing price and the guest's first message.
        "nightly_prices": [{"date": d.isoformat(), "amount": _money(a)} for d, a in room.nightly],
        "guest_message": b.comments or None,
    }


def render_reservations_page(bookings: list[SimBooking], *, has_more: bool = False,
                             next_cursor: str | None = None) -> bytes:
    """A `GET /v2/reservations` answer body for these messages (also used by bench/parse.py)."""
    return orjson.dumps({"reservations": [reservation(b) for b in bookings],
                         "metadata": {"has_more": has_more, "next_cursor": next_cursor}})


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    if not raw.startswith("o:"):
        raise ValueError("bad cursor")
    return int(raw[2:])


class AirbnbSim:
    """Handlers over one SimState (tokens and host decisions live in `state.extra`)."""

    def __init__(self, state: SimState, client_id: str | None, client_secret: str | None,
                 token_ttl: float, webhook_secret: str, today: Callable[[], date]) -> None:
        self.state = state
        self.client_id = client_id
        self.client_secret = client_secret
        state.tokens.settings = TokenSettings(token_ttl_seconds=token_ttl)
        self.webhook_secret = webhook_secret
        self.today = today
        self.decisions: dict[str, tuple[str, datetime]] = {}

    # ------------------------------------------------------------ auth

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return error(400, "unsupported_grant_type", "grant_type must be client_credentials")
        cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        if not cid or not secret or (self.client_id is not None and (cid, secret) != (self.client_id, self.client_secret)):
            return error(401, "invalid_client", "unknown client credentials")
        issued = self.state.tokens.issue()
        if issued is None:
            limited = error(429, "rate_limited", "too many token requests")
            limited.headers["Retry-After"] = str(self.state.tokens.settings.limited_retry_after)
            return limited
        token, ttl = issued
        return _json({"access_token": token, "token_type": "bearer", "expires_in": ttl})

    @property
    def issued(self) -> int:
        """Tokens issued so far."""
        return self.state.tokens.exchanges

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (as an early expiry would)."""
        self.state.tokens.revoke_all()

    def _authorized(self, request: Request) -> bool:
        return self.state.tokens.valid(request.headers.get("Authorization", ""))

    # ------------------------------------------------------------ reservations

    def current_reservations(self, listing_id: str | None = None,
                             booking_id: str | None = None) -> list[dict[str, Any]]:
        """Every reservation of every hotel (listing) of the host, oldest change first; only
        one listing's, or one booking's, when asked (rendered only for those: an account of
        many hotels renders thousands otherwise, per request)."""
        latest: dict[str, tuple[SimBooking, PartnerCatalog]] = {}
        for hotel in self.state.hotels.values():
            cat = hotel.extra["catalog"]
            for m in hotel.queue.messages:
                b = m.booking
                if booking_id is not None and b.booking_id != booking_id:
                    continue
                if listing_id is not None and \
                        cat["room_types"].get(b.rooms[0].room_type) != listing_id:
                    continue
                if b.booking_id not in latest or b.revision > latest[b.booking_id][0].revision:
                    latest[b.booking_id] = (b, cat)
        items = [reservation(b, self.decisions.get(confirmation_code(b.booking_id)), cat)
                 for b, cat in latest.values()]
        items.sort(key=lambda r: (r["updated_at"], r["confirmation_code"]))
        return items

    def find(self, code: str) -> dict[str, Any] | None:
        booking_id = booking_id_of(code)
        if booking_id is None:
            return None
        return next((r for r in self.current_reservations(booking_id=booking_id)
                     if r["confirmation_code"] == code), None)

    async def list_reservations(self, request: Request) -> Response:
        if not self._authorized(request):
            return error(401, "unauthorized", "invalid or expired access token")
        q = request.query_params
        cursor = q.get("_cursor") or q.get("cursor")
        try:
            limit = min(int(q.get("_limit", "50")), 100)
            offset = _decode_cursor(cursor) if cursor else int(q.get("_offset", "0"))
        except ValueError:
            return error(400, "invalid_param", "bad cursor, _offset or _limit")
        if limit < 1 or offset < 0:
            return error(400, "invalid_param", "_limit must be >= 1 and _offset >= 0")
        items = self.current_reservations(listing_id=q.get("listing_id") or None)
        everything = "true" in (q.get("all_status", "").lower(), q.get("include_pending", "").lower())
        if not everything:  # public clients: without all_status only accepted ones come back
            items = [r for r in items if r["status_type"] == "accept"]
        try:
            since = _instant(q.get("updated_since"), end_of_day=False)
            until = _instant(q.get("updated_until"), end_of_day=True)
        except ValueError:
            return error(400, "invalid_param", "updated_since/updated_until must be ISO 8601 dates or times")
        if since is not None:
            items = [r for r in items if _instant(r["updated_at"]) >= since]  # type: ignore[operator]
        if until is not None:
            items = [r for r in items if _instant(r["updated_at"]) <= until]  # type: ignore[operator]
        page = items[offset : offset + limit]
        if self.state.faults.duplicate_rate:
            page = [r for item in page for r in ([item, item] if self.state.chance(self.state.faults.duplicate_rate) else [item])]
        more = offset + limit < len(items)
        return _json({"reservations": page, "metadata": {
            "has_more": more, "next_cursor": _encode_cursor(offset + limit) if more else None,
            "offset": offset, "limit": limit, "total": len(items)}})

    async def get_reservation(self, request: Request, code: str) -> Response:
        if not self._authorized(request):
            return error(401, "unauthorized", "invalid or expired access token")
        found = self.find(code)
        return _json({"reservation": found}) if found else error(404, "not_found", f"reservation {code} not found")

    async def decide(self, request: Request, code: str) -> Response:
        """`PUT /v2/reservations/{code}`: accept/deny a pending request, or cancel as host."""
        if not self._authorized(request):
            return error(401, "unauthorized", "invalid or expired access token")
        found = self.find(code)
        if found is None:
            return error(404, "not_found", f"reservation {code} not found")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return error(400, "invalid_param", "body must be JSON")
        if not isinstance(body, dict):
            return error(400, "invalid_param", "body must be a JSON object")
        action = body.get("attempt_action")
        wanted = action if action in ("accept", "deny") else body.get("status_type")
        if wanted not in _DECISIONS:
            return error(400, "invalid_param", "give attempt_action accept|deny or status_type cancelled_by_host")
        if wanted == "deny" and body.get("decline_reason") not in DECLINE_REASONS:
            return error(400, "invalid_param", f"decline_reason must be one of {sorted(DECLINE_REASONS)}")
        if wanted == "cancelled_by_host" and not body.get("reason"):
            return error(400, "invalid_param", "a host cancellation needs reason")
        new, allowed = _DECISIONS[wanted]
        if found["status_type"] not in allowed:
            if wanted == "accept" and found["status_type"] == new:
                return _json({"reservation": found})  # idempotent re-accept
            return error(409, "invalid_state", f"cannot {wanted} a {found['status_type']} reservation")
        self.decisions[code] = (new, datetime.now(UTC))
        return _json({"reservation": self.find(code)})

    # ------------------------------------------------------------ calendar

    async def listings(self, request: Request) -> Response:
        if not self._authorized(request):
            return error(401, "unauthorized", "invalid or expired access token")
        return _json({"listings": [
            {"id": lid, "name": f"{pms} room", "room_type_code": pms}
            for hotel in self.state.hotels.values()
            for pms, lid in hotel.extra["catalog"]["room_types"].items()]})

    def listing_hotel(self, listing: str) -> SimState | None:
        """The hotel of the host whose listing this is."""
        return next((h for h in self.state.hotels.values()
                     if listing in h.extra["catalog"]["room_types"].values()), None)

    def _validate(self, listing: str, start: date, end: date, body: Any) -> Response | None:
        if self.listing_hotel(listing) is None:
            return error(404, "not_found", f"listing {listing} not found")
        if start > end:
            return error(400, "invalid_param", "start date after end date")
        if end > self.today() + timedelta(days=CALENDAR_DAYS_AHEAD):
            return error(400, "invalid_param", "calendar only reaches 3 years ahead")
        if not isinstance(body, dict) or not body:
            return error(400, "invalid_param", "body must be a non-empty JSON object")
        if "availability" in body and body["availability"] not in _AVAILABILITY:
            return error(400, "invalid_param", "availability must be available or unavailable")
        price = body.get("daily_price")
        if price is not None and (not isinstance(price, int | float) or price <= 0):
            return error(400, "invalid_param", "daily_price must be a positive number")
        lo, hi = body.get("min_nights"), body.get("max_nights")
        if lo is not None and (not isinstance(lo, int) or lo < 1):
            return error(400, "invalid_param", "min_nights must be >= 1")
        if lo is not None and hi is not None and hi < lo:
            return error(400, "invalid_param", "max_nights less than min_nights")
        if self.state.chance(self.state.faults.partial_failure_rate):
            self.state.injected["partial"] += 1
            return error(400, "invalid_param", "calendar update rejected (simulated)")
        return None

    async def put_calendar(self, request: Request, listing_id: str, start: str, end: str) -> Response:
        if not self._authorized(request):
            return error(401, "unauthorized", "invalid or expired access token")
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
            body = orjson.loads(await request.body())
        except (ValueError, orjson.JSONDecodeError):
            return error(400, "invalid_param", "bad dates or JSON body")
        problem = self._validate(listing_id, first, last, body)
        if problem is not None:
            return problem
        hotel = self.listing_hotel(listing_id)
        assert hotel is not None  # validated
        hotel.ari.apply(listing_id, None, first, last, None, body)
        return _json({"calendar": {"listing_id": listing_id, "start_date": start, "end_date": end, **body}})

    async def get_calendar(self, request: Request, listing_id: str) -> Response:
        if not self._authorized(request):
            return error(401, "unauthorized", "invalid or expired access token")
        q = request.query_params
        lo, hi = q.get("start_date", "0000"), q.get("end_date", "9999")
        hotel = self.listing_hotel(listing_id) or self.state
        days = hotel.ari.calendar.get(f"{listing_id}/*", {})
        return _json({"calendar": {"listing_id": listing_id, "days": [
            {"date": d, **v} for d, v in sorted(days.items()) if lo <= d <= hi]}})


def webhook_event(app: FastAPI, code: str, action: str = "reservation_updated") -> tuple[bytes, dict[str, str]]:
    """(body, headers) of a signed webhook for one reservation, as Airbnb would POST it."""
    sim: AirbnbSim = app.state.airbnb
    found = sim.find(code)
    if found is None:
        raise KeyError(code)
    body = orjson.dumps({"action": action, "reservation": found})
    return body, {SIGNATURE_HEADER: sign_webhook(body, sim.webhook_secret), "Content-Type": "application/json"}


def create_app(*, bookings: int = 50, seed: int = 42, faults: FaultSettings | None = None,
               client_id: str | None = None, client_secret: str | None = None, token_ttl: float = 3600,
               webhook_secret: str = "sim-airbnb-webhook-secret",
               today: Callable[[], date] | None = None, hotels: int = 1) -> FastAPI:
    """The Airbnb simulator of one host (API client) with `hotels` properties, each a set of
    listings (one per room type: the catalog's, then `hotel_catalog(CHANNEL, i)`'s) with its
    own bookings; requests name listings and reservations, never the property. Without
    client_id/secret any non-empty credentials get a token."""
    cat = CATALOG[CHANNEL]
    state = SimState(channel=CHANNEL, hotel_id=cat["hotel_id"], faults=faults or FaultSettings(), seed=seed,
                     queue=BookingQueue(in_order=False))
    for hotel in open_hotels(state, hotels, in_order=False):
        if bookings:
            hotel.add_bookings(bookings)
    sim = AirbnbSim(state, client_id, client_secret, token_ttl, webhook_secret,
                    today or (lambda: datetime.now(UTC).date()))
    app = make_app(state, "Airbnb simulator")
    app.state.airbnb = sim
    app.add_api_route("/oauth2/v1/token", sim.token, methods=["POST"])
    app.add_api_route("/v2/listings", sim.listings, methods=["GET"])
    app.add_api_route("/v2/calendars/{listing_id}/{start}/{end}", sim.put_calendar, methods=["PUT"])
    app.add_api_route("/v2/calendars/{listing_id}", sim.get_calendar, methods=["GET"])
    app.add_api_route("/v2/reservations", sim.list_reservations, methods=["GET"])
    app.add_api_route("/v2/reservations/{code}", sim.get_reservation, methods=["GET"])
    app.add_api_route("/v2/reservations/{code}", sim.decide, methods=["PUT"])
    return app
