"""Shared simulator machinery: fault injection, booking queue, ARI store, admin endpoints."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.base import BaseHTTPMiddleware

from channels.simulators.generator import (  # noqa: F401  (re-exported for simulators)
    BookingGenerator,
    SimBooking,
    SimCard,
    SimGuest,
    SimRoom,
)

ADMIN_PREFIX = "/_sim"


class FaultSettings(BaseModel):
    """Fault injection knobs; every rate is a probability per request (0 = never)."""

    model_config = ConfigDict(validate_assignment=True)

    error_rate: float = Field(0.0, ge=0, le=1, description="answer 503")
    rate_limit_rate: float = Field(0.0, ge=0, le=1, description="answer 429 with Retry-After")
    retry_after_seconds: int = Field(7, ge=0)
    latency_ms: int = Field(0, ge=0, description="added to every request")
    latency_max_ms: int | None = Field(
        None, ge=0, description="with latency_ms: each request's latency drawn uniformly "
                                "from latency_ms..latency_max_ms")
    timeout_rate: float = Field(0.0, ge=0, le=1, description="stall longer than client timeouts")
    timeout_seconds: float = Field(30.0, ge=0, description="how long a stalled request sleeps")
    malformed_rate: float = Field(0.0, ge=0, le=1, description="garble the response body")
    partial_failure_rate: float = Field(0.0, ge=0, le=1, description="reject single ARI updates")
    duplicate_rate: float = Field(0.0, ge=0, le=1, description="re-deliver acknowledged bookings")


class TokenSettings(BaseModel):
    """Token endpoint rules of a simulated partner (scaled down in tests to compress time)."""

    model_config = ConfigDict(validate_assignment=True)

    token_ttl_seconds: float = Field(3600.0, ge=0, description="lifetime of an issued token")
    exchange_limit: int | None = Field(
        None, ge=0, description="exchanges allowed per window (None = unlimited); 429 beyond")
    window_seconds: float = Field(3600.0, gt=0, description="the limit's sliding window")
    limited_retry_after: int = Field(60, ge=0, description="Retry-After sent with that 429")


class TokenIssuer:
    """Issues, checks and counts a partner's bearer tokens (`/_sim/stats` shows the counts)."""

    def __init__(self, settings: TokenSettings | None = None) -> None:
        self.settings = settings or TokenSettings()
        self.valid_until: dict[str, float] = {}
        self.recent: list[float] = []  # exchange times inside the current window
        self.exchanges = 0  # tokens issued since start
        self.refused = 0  # exchanges answered 429 (over the limit)

    def issue(self) -> tuple[str, float] | None:
        """A new (token, lifetime), or None when the exchange limit is reached (answer 429)."""
        now = time.time()
        rules = self.settings
        self.recent[:] = [t for t in self.recent if t > now - rules.window_seconds]
        if rules.exchange_limit is not None and len(self.recent) >= rules.exchange_limit:
            self.refused += 1
            return None
        self.recent.append(now)
        self.exchanges += 1
        token = secrets.token_urlsafe(24)
        self.valid_until[token] = now + rules.token_ttl_seconds
        return token, rules.token_ttl_seconds

    def valid(self, authorization: str) -> bool:
        """Whether an Authorization header carries a live token."""
        token = authorization[7:].strip() if authorization.startswith("Bearer ") else ""
        return self.valid_until.get(token, 0.0) > time.time()

    def revoke_all(self) -> None:
        """Invalidate every issued token (as an early expiry would)."""
        self.valid_until.clear()

    def stats(self) -> dict[str, int]:
        return {"token_exchanges": self.exchanges, "token_refusals": self.refused,
                "live_tokens": sum(v > time.time() for v in self.valid_until.values())}


def garble(body: bytes) -> bytes:
    """A body cut in half with junk appended: no XML/JSON parser accepts it."""
    return body[: len(body) // 2] + b"\x00<<garbled"


class FaultMiddleware(BaseHTTPMiddleware):
    """Applies the state's FaultSettings to every partner request (admin paths exempt)."""

    def __init__(self, app: Any, state: SimState) -> None:
        super().__init__(app)
        self.state = state

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith(ADMIN_PREFIX):
            return await call_next(request)
        faults, rng = self.state.faults, self.state.rng
        self.state.calls[request.url.path] += 1
        if faults.latency_ms or faults.latency_max_ms:
            low = faults.latency_ms
            high = max(low, faults.latency_max_ms or low)
            await asyncio.sleep((low if high == low else rng.uniform(low, high)) / 1000)
        if faults.timeout_rate and rng.random() < faults.timeout_rate:
            self.state.injected["timeout"] += 1
            await asyncio.sleep(faults.timeout_seconds)
        if faults.rate_limit_rate and rng.random() < faults.rate_limit_rate:
            self.state.injected["rate_limit"] += 1
            return Response("Too Many Requests", status_code=429,
                            headers={"Retry-After": str(faults.retry_after_seconds)})
        if faults.error_rate and rng.random() < faults.error_rate:
            self.state.injected["error"] += 1
            return Response("Service Unavailable", status_code=503)
        response = await call_next(request)
        if faults.malformed_rate and rng.random() < faults.malformed_rate:
            self.state.injected["malformed"] += 1
            body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
            headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
            return Response(garble(body), status_code=response.status_code, headers=headers)
        return response


@dataclass
class QueuedMessage:
    booking: SimBooking
    acked: bool = False
    deliveries: int = 0


class BookingQueue:
    """Messages re-delivered until acknowledged; optionally one booking's messages in order."""

    def __init__(self, messages: Iterable[SimBooking] = (), *, in_order: bool = True) -> None:
        self.in_order = in_order
        self.messages: list[QueuedMessage] = []
        self.add(messages)

    def add(self, messages: Iterable[SimBooking]) -> None:
        self.messages.extend(QueuedMessage(m) for m in messages)

    def pending(self, *, limit: int | None = None, duplicate_rate: float = 0.0,
                rng: random.Random | None = None,
                where: Callable[[SimBooking], bool] | None = None) -> list[SimBooking]:
        """Un-acked messages (the first un-acked per booking when in order), plus duplicates;
        counted as delivered."""
        out = self.pending_messages(limit=limit, duplicate_rate=duplicate_rate, rng=rng, where=where)
        for msg in out:
            msg.deliveries += 1
        return [m.booking for m in out]

    def pending_messages(self, *, limit: int | None = None, duplicate_rate: float = 0.0,
                         rng: random.Random | None = None,
                         where: Callable[[SimBooking], bool] | None = None) -> list[QueuedMessage]:
        """What pending() would deliver, without counting a delivery."""
        out: list[QueuedMessage] = []
        blocked: set[str] = set()
        for msg in self.messages:
            b = msg.booking
            if where is not None and not where(b):
                continue
            if msg.acked:
                if duplicate_rate and rng is not None and rng.random() < duplicate_rate:
                    out.append(msg)
                continue
            if self.in_order and b.booking_id in blocked:
                continue
            blocked.add(b.booking_id)
            out.append(msg)
        return out[:limit] if limit is not None else out

    def ack(self, booking_id: str, *, revision: int | None = None,
            where: Callable[[SimBooking], bool] | None = None) -> bool:
        """Acknowledge the oldest un-acked (or the given) revision of a booking."""
        for msg in self.messages:
            b = msg.booking
            if b.booking_id != booking_id or msg.acked:
                continue
            if revision is not None and b.revision != revision:
                continue
            if where is not None and not where(b):
                return False
            msg.acked = True
            return True
        return False

    def find(self, booking_id: str) -> list[SimBooking]:
        return [m.booking for m in self.messages if m.booking.booking_id == booking_id]

    def was_delivered(self, booking_id: str) -> bool:
        return any(m.deliveries for m in self.messages if m.booking.booking_id == booking_id)

    def stats(self) -> dict[str, int]:
        acked = sum(m.acked for m in self.messages)
        return {"messages": len(self.messages), "acked": acked, "pending": len(self.messages) - acked}


class AriStore:
    """Everything a simulator accepted: the raw update log and the resulting calendar."""

    def __init__(self) -> None:
        self.log: list[dict[str, Any]] = []
        self.calendar: dict[str, dict[str, dict[str, Any]]] = {}

    def apply(self, room: str, rate: str | None, start: date, end: date,
              weekdays: frozenset[int] | None, values: dict[str, Any]) -> int:
        """Record one accepted update; returns how many dates it touched."""
        values = {k: v for k, v in values.items() if v is not None}
        self.log.append({"room": room, "rate": rate, "start": start.isoformat(), "end": end.isoformat(),
                         "weekdays": sorted(weekdays) if weekdays is not None else None, **values})
        cal = self.calendar.setdefault(f"{room}/{rate or '*'}", {})
        touched, day = 0, start
        while day <= end:
            if weekdays is None or day.weekday() in weekdays:
                cal.setdefault(day.isoformat(), {}).update(values)
                touched += 1
            day += timedelta(days=1)
        return touched

    def snapshot(self) -> dict[str, Any]:
        return {"log": self.log, "calendar": self.calendar}


@dataclass
class SimState:
    """Everything one simulator app keeps; reachable as `app.state.sim`."""

    channel: str
    hotel_id: str
    faults: FaultSettings = field(default_factory=FaultSettings)
    seed: int = 42
    queue: BookingQueue = field(default_factory=BookingQueue)
    ari: AriStore = field(default_factory=AriStore)
    generator: BookingGenerator | None = None
    calls: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    extra: dict[str, Any] = field(default_factory=dict)
    tokens: TokenIssuer = field(default_factory=TokenIssuer)
    #: Every hotel of the simulated partner account by hotel id, this one included (the
    #: same dict on each). The account's first hotel is the app's `state.sim`: faults,
    #: tokens, call counters and the fault dice are read from it; each hotel keeps its own
    #: bookings, ARI, generator and `extra`.
    hotels: dict[str, SimState] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        if self.generator is None:
            self.generator = BookingGenerator(self.seed)
        self.hotels.setdefault(self.hotel_id, self)

    def add_hotel(self, hotel_id: str, seed: int, **fields: Any) -> SimState:
        """Another hotel of this account (its own bookings and ARI), sharing `hotels`;
        `fields` as for the first (e.g. a queue that releases messages out of order)."""
        if hotel_id in self.hotels:
            raise ValueError(f"hotel {hotel_id} is already in the account")
        return SimState(self.channel, hotel_id, seed=seed, hotels=self.hotels, **fields)

    def hotel(self, hotel_id: str) -> SimState | None:
        """The account's hotel with this id (None: not connected to this account)."""
        return self.hotels.get(hotel_id)

    def selected(self, hotel: str | None) -> list[SimState]:
        """Admin `hotel=` parameter: one hotel by id, `all`, or (None) the first hotel."""
        if hotel is None:
            return [self]
        if hotel == "all":
            return list(self.hotels.values())
        found = self.hotels.get(hotel)
        if found is None:
            raise HTTPException(404, f"no hotel {hotel!r} in this account")
        return [found]

    def add_bookings(self, count: int, *, live: bool = False) -> int:
        """Generate `count` more bookings into the queue; returns the number of messages.

        The start-up history is made in the last two hours; `live` bookings (the admin
        endpoint: guests booking now) are made in the last seconds, as a partner stamps a
        booking that reaches it now (a change-time filter must see them as new).
        """
        return len(self.book(count, live=live))

    def book(self, count: int, *, live: bool = True, changes: bool = True) -> list[SimBooking]:
        """`add_bookings`, returning the messages made (`changes=False`: new bookings only)."""
        assert self.generator is not None
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=90 * count) if live else None
        messages = self.generator.generate(count, start=start, changes=changes)
        self.queue.add(messages)
        return messages

    def chance(self, rate: float) -> bool:
        return bool(rate) and self.rng.random() < rate


#: Booking ids of an account's hotel i start this far after its first hotel's.
HOTEL_ID_STEP = 1_000_000


def open_hotels(state: SimState, hotels: int, *, in_order: bool = True) -> list[SimState]:
    """Make `state` (the first hotel, its generator at the partner's first booking id) an
    account of `hotels` hotels: hotel i > 0 gets `hotel_catalog(channel, i)`'s id and codes,
    seed + i, a queue releasing messages in order or not, booking ids HOTEL_ID_STEP * i
    further on. Each hotel's catalog is at `extra["catalog"]`. Returns every hotel, in order;
    the caller adds their bookings."""
    from channels.simulators.catalog import CATALOG, hotel_catalog

    if hotels < 1:
        raise ValueError("a simulated account has at least one hotel")
    assert state.generator is not None
    state.extra.setdefault("catalog", CATALOG[state.channel])  # type: ignore[index]
    first_id = state.generator.next_id
    for i in range(1, hotels):
        catalog = hotel_catalog(state.channel, i)
        hotel = state.add_hotel(catalog["hotel_id"], state.seed + i,
                                queue=BookingQueue(in_order=in_order))
        hotel.extra["catalog"] = catalog
        assert hotel.generator is not None
        hotel.generator.next_id = first_id + i * HOTEL_ID_STEP
    return list(state.hotels.values())


def admin_router(state: SimState) -> APIRouter:
    """`/_sim/*`: read received ARI, change faults and token rules, add bookings, see call and
    token-exchange counts."""
    router = APIRouter(prefix=ADMIN_PREFIX)

    @router.get("/hotels")
    async def get_hotels() -> list[str]:
        """The hotel ids of this simulated account, the first (default) one first."""
        return list(state.hotels)

    @router.get("/ari")
    async def get_ari(hotel: str | None = None) -> dict[str, Any]:
        return state.selected(hotel)[0].ari.snapshot()

    @router.get("/ari/days")
    async def get_ari_days(room: str, start: date, end: date,
                           hotel: str | None = None) -> dict[str, Any]:
        """What was accepted for one room (room-level values) on start..end, by date."""
        days = state.selected(hotel)[0].ari.calendar.get(f"{room}/*", {})
        return {d: v for d, v in sorted(days.items()) if start.isoformat() <= d <= end.isoformat()}

    @router.get("/faults")
    async def get_faults() -> FaultSettings:
        return state.faults

    @router.post("/faults")
    async def set_faults(faults: FaultSettings) -> FaultSettings:
        state.faults = faults
        return state.faults

    @router.post("/bookings")
    async def add_bookings(count: int = 10, changes: bool = True,
                           hotel: str | None = None) -> dict[str, Any]:
        """Guests book now: `count` bookings (with some later changes unless `changes=false`)
        at the first hotel, at `hotel`, or at each hotel (`hotel=all`); answers the messages
        made (hotel, ids, rooms and nights in PMS codes) and the account's queue counts."""
        made = [(h.hotel_id, m) for h in state.selected(hotel)
                for m in h.book(count, changes=changes)]
        return {"added": len(made), "bookings": [
            {"hotel_id": hotel_id, "booking_id": m.booking_id, "event": m.event,
             "revision": m.revision,
             "rooms": [{"room_type": r.room_type, "check_in": r.check_in.isoformat(),
                        "check_out": r.check_out.isoformat()} for r in m.rooms]}
            for hotel_id, m in made], **account_stats()}

    def account_stats() -> dict[str, int]:
        totals: Counter[str] = Counter()
        for h in state.hotels.values():
            totals.update(h.queue.stats())
        return {key: totals[key] for key in ("messages", "acked", "pending")}

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        return {"calls": dict(state.calls), "injected": dict(state.injected),
                **account_stats(), "hotels": len(state.hotels), **state.tokens.stats()}

    @router.get("/tokens")
    async def get_tokens() -> TokenSettings:
        return state.tokens.settings

    @router.post("/tokens")
    async def set_tokens(settings: TokenSettings) -> TokenSettings:
        state.tokens.settings = settings
        return settings

    @router.post("/tokens/revoke")
    async def revoke_tokens() -> dict[str, int]:
        state.tokens.revoke_all()
        return state.tokens.stats()

    @router.get("/booking-ids")
    async def booking_ids() -> list[str]:
        """Every booking id this simulator created (the soak's "created at the partner")."""
        return sorted({m.booking.booking_id for h in state.hotels.values()
                       for m in h.queue.messages})

    return router


def make_app(state: SimState, title: str) -> FastAPI:
    """A FastAPI app with fault injection and the admin router; partner routes are added after."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sim = state
    app.add_middleware(FaultMiddleware, state=state)
    app.include_router(admin_router(state))
    return app
