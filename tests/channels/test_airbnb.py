"""Airbnb adapter against its simulator: OAuth, calendar, reservations, faults, loopback HTTP."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import orjson
import pytest
from fastapi import FastAPI

from channels.airbnb import (
    LISTINGS_AT_ONCE,
    AirbnbAdapter,
    parse_bookings,
    verify_webhook_signature,
)
from channels.base import (
    ARIUpdate,
    BookingStatus,
    ChannelAdapter,
    ChannelConfig,
    MalformedPayloadError,
    PermanentChannelError,
    TransientChannelError,
)
from channels.registry import get_adapter
from channels.simulators.airbnb import confirmation_code, create_app, webhook_event
from channels.simulators.common import FaultSettings
from channels.simulators.server import running_server
from channels.tokens import MemoryTokenStore

pytestmark = pytest.mark.anyio

CID, SECRET = "client-1", "secret-1"
TODAY = date.today()
LISTING, LISTING2 = "51000001", "51000002"


class Recorder(httpx.AsyncBaseTransport):
    """ASGITransport that records requests and can answer 429 after `limit` calendar PUTs."""

    def __init__(self, app: FastAPI, throttle_after: int | None = None) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.requests: list[httpx.Request] = []
        self.throttle_after = throttle_after

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        puts = [r for r in self.requests if r.method == "PUT"]
        if self.throttle_after is not None and request.method == "PUT" and len(puts) > self.throttle_after:
            return httpx.Response(429, headers={"Retry-After": "30"}, json={"error_code": 429})
        return await self.inner.handle_async_request(request)

    def puts(self) -> list[tuple[str, dict[str, object]]]:
        return [(r.url.path, orjson.loads(r.content)) for r in self.requests if r.method == "PUT"]


def make(bookings: int = 0, faults: FaultSettings | None = None, throttle_after: int | None = None,
         token_ttl: float = 3600, **options: object) -> tuple[FastAPI, Recorder, AirbnbAdapter]:
    app = create_app(bookings=bookings, seed=9, faults=faults, client_id=CID, client_secret=SECRET,
                     token_ttl=token_ttl, today=lambda: TODAY)
    rec = Recorder(app, throttle_after)
    adapter = AirbnbAdapter(ChannelConfig(apiKey=CID, apiSecret=SECRET, endpoint="http://airbnb.sim"),
                            transport=rec, **options)  # type: ignore[arg-type]
    return app, rec, adapter


async def drain(adapter: AirbnbAdapter) -> tuple[list[str], int]:
    return await drain_from(adapter, None)


async def drain_from(adapter: AirbnbAdapter, cursor: str | None) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    while True:
        page = await adapter.fetch_bookings(cursor=cursor)
        pages += 1
        ids += [b.external_id for b in page.bookings]
        if not page.has_more:
            return ids, pages
        assert pages < 100
        cursor = page.cursor


# ---------------------------------------------------------------- OAuth


async def test_token_is_cached_across_calls() -> None:
    app, rec, adapter = make(bookings=10)
    for _ in range(3):
        await adapter.fetch_bookings()
    assert adapter.auth.issued == app.state.airbnb.issued == 1
    token_calls = [r for r in rec.requests if r.url.path == "/oauth2/v1/token"]
    assert len(token_calls) == 1 and b"client_credentials" in token_calls[0].content


async def test_token_refreshed_once_on_401() -> None:
    app, _, adapter = make(bookings=5)
    await adapter.fetch_bookings()
    app.state.airbnb.revoke_tokens()
    page = await adapter.fetch_bookings()
    assert page.bookings and adapter.auth.issued == 2


async def test_token_survives_adapter_instances() -> None:
    app, _, first = make(bookings=5)
    store = MemoryTokenStore()
    first.use_token_store(store)
    await first.fetch_bookings()
    await first.aclose()
    (key,) = store.rows
    saved = store.rows[key]
    assert saved.value and saved.expires_at and saved.expires_at > time.time() + 3000  # wall clock
    assert saved.value not in repr(first.auth) + repr(saved)

    def again() -> AirbnbAdapter:
        return AirbnbAdapter(ChannelConfig(apiKey=CID, apiSecret=SECRET, endpoint="http://airbnb.sim"),
                             transport=Recorder(app), token_store=store)

    second = again()
    await second.fetch_bookings()
    await second.aclose()
    assert second.auth.issued == 0 and app.state.airbnb.issued == 1
    # An expired stored token is not used: the next adapter fetches a new one.
    store.rows[key] = replace(saved, expires_at=time.time() - 1)
    third = again()
    await third.fetch_bookings()
    await third.aclose()
    assert third.auth.issued == 1 and app.state.airbnb.issued == 2


async def test_refresh_is_not_retried_forever() -> None:
    # Tokens die at once: the one refresh also fails, and the 401 surfaces as permanent.
    app, rec, adapter = make(bookings=5, token_ttl=0)
    with pytest.raises(PermanentChannelError) as err:
        await adapter.fetch_bookings()
    assert err.value.status_code == 401 and adapter.auth.issued == 2
    assert len([r for r in rec.requests if r.url.path == "/v2/listings"]) == 2


async def test_bad_client_credentials_are_permanent() -> None:
    app = create_app(bookings=1, client_id=CID, client_secret=SECRET)
    adapter = AirbnbAdapter(ChannelConfig(apiKey=CID, apiSecret="wrong", endpoint="http://x"),
                            transport=httpx.ASGITransport(app=app))
    with pytest.raises(PermanentChannelError, match="token exchange failed"):
        await adapter.fetch_bookings()
    missing = AirbnbAdapter(ChannelConfig(endpoint="http://x"), transport=httpx.ASGITransport(app=app))
    with pytest.raises(PermanentChannelError, match="apiKey"):
        await missing.fetch_bookings()


# ---------------------------------------------------------------- reservations


@pytest.mark.parametrize("pagination", ["cursor", "offset"])
async def test_pagination_drains_every_listing(pagination: str) -> None:
    app, rec, adapter = make(bookings=60, page_size=7, pagination=pagination)
    ids, pages = await drain(adapter)
    assert len(ids) == len(set(ids)) == 60
    params = [r.url.params for r in rec.requests if r.url.path == "/v2/reservations"]
    # Every listing paged on (60 bookings, 7 a request), the host's 4 listings read together.
    assert len(params) > 60 // 7 and pages < len(params)
    assert all(p["include_pending"] == "true" and p["_limit"] == "7" for p in params)
    key = "cursor" if pagination == "cursor" else "_offset"
    assert any(key in p for p in params)


async def test_configured_listings_skip_discovery() -> None:
    app = create_app(bookings=30, seed=9, client_id=CID, client_secret=SECRET)
    rec = Recorder(app)
    # propertyId is the host account, never a listing filter: listing ids are given (the
    # channel's room-type mappings, tasks.resources) or discovered.
    adapter = AirbnbAdapter(ChannelConfig(apiKey=CID, apiSecret=SECRET, propertyId="host-4711", endpoint="http://x"),
                            transport=rec, listing_ids=[LISTING])
    ids, _ = await drain(adapter)
    assert ids and all(r.url.path != "/v2/listings" for r in rec.requests)
    page = orjson.loads(await app_get(app, f"/v2/reservations?listing_id={LISTING}&include_pending=true&_limit=100"))
    assert sorted(ids) == sorted(r["confirmation_code"] for r in page["reservations"])


class InFlight(Recorder):
    """Recorder whose answers take a moment, counting the requests in flight at once."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app)
        self.now = self.most = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.02)
            return await super().handle_async_request(request)
        finally:
            self.now -= 1


async def test_a_page_reads_listings_at_once_and_says_how_many_requests_it_sends() -> None:
    """A host with 12 listings: each page reads up to LISTINGS_AT_ONCE of them in parallel,
    `fetch_requests` names beforehand the requests the page then sends (the caller takes as
    many rate-limit slots), and every listing's reservations arrive, paged on per listing."""
    app = create_app(bookings=60, seed=9, client_id=CID, client_secret=SECRET, hotels=3)
    rec = InFlight(app)
    probe = AirbnbAdapter(ChannelConfig(apiKey=CID, apiSecret=SECRET, endpoint="http://x"),
                          transport=Recorder(app))
    listings = await probe.listings()
    assert len(listings) == 12 > LISTINGS_AT_ONCE
    adapter = AirbnbAdapter(ChannelConfig(apiKey=CID, apiSecret=SECRET, endpoint="http://x"),
                            transport=rec, listing_ids=listings, page_size=5)
    cursor: str | None = None
    ids: list[str] = []
    announced: list[int] = []
    sent: list[list[str]] = []
    while True:
        announced.append(adapter.fetch_requests(cursor))
        before = len(rec.requests)
        page = await adapter.fetch_bookings(cursor=cursor)
        sent.append([r.url.params["listing_id"] for r in rec.requests[before:]
                     if r.url.path == "/v2/reservations"])
        ids += [b.external_id for b in page.bookings]
        if not page.has_more:
            break
        assert page.cursor and len(sent) < 50
        cursor = page.cursor
    assert page.final
    assert announced == [len(s) for s in sent]
    assert sent[0] == listings[:LISTINGS_AT_ONCE] and rec.most == LISTINGS_AT_ONCE
    assert all(len(s) <= LISTINGS_AT_ONCE for s in sent)
    assert {lid for s in sent for lid in s} == set(listings)
    # Nothing lost or doubled against reading each listing by itself.
    expected: set[str] = set()
    for lid in listings:
        answer = orjson.loads(await app_get(
            app, f"/v2/reservations?listing_id={lid}&include_pending=true&_limit=100"))
        expected |= {r["confirmation_code"] for r in answer["reservations"]}
    assert len(ids) == len(set(ids)) and set(ids) == expected and len(expected) > 12 * 5 // 2


class OneListingDown(Recorder):
    """Recorder whose answers for one listing's reservations are 503."""

    def __init__(self, app: FastAPI, listing: str) -> None:
        super().__init__(app)
        self.listing = listing

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/reservations" and request.url.params.get("listing_id") == self.listing:
            self.requests.append(request)
            return httpx.Response(503, json={"error_code": 503, "error_type": "service_unavailable"})
        return await super().handle_async_request(request)


async def test_one_listing_failing_fails_its_whole_page_and_loses_nothing() -> None:
    """A page reads its listings together: when one of them answers 503, the page raises a
    transient error (the caller's retry reads all of them again) and hands over nothing
    half-read; once the listing is back, the same cursor returns every reservation."""
    app, _, probe = make(bookings=30)
    listings = await probe.listings()
    rec = OneListingDown(app, listings[2])
    adapter = AirbnbAdapter(ChannelConfig(apiKey=CID, apiSecret=SECRET, endpoint="http://x"),
                            transport=rec, listing_ids=listings)
    with pytest.raises(TransientChannelError):
        await adapter.fetch_bookings()
    assert {r.url.params["listing_id"] for r in rec.requests
            if r.url.path == "/v2/reservations"} == set(listings)  # all were asked at once
    rec.listing = "none"  # the listing answers again
    ids, _ = await drain(adapter)
    everything, _ = await drain(probe)
    assert sorted(ids) == sorted(everything) and len(ids) == 30


async def test_discovery_is_a_page_of_its_own_and_a_bad_cursor_is_refused() -> None:
    app, rec, adapter = make(bookings=20)
    assert adapter.fetch_requests(None) == 1  # the listings are not known yet
    first = await adapter.fetch_bookings()
    assert first.bookings == [] and first.has_more and first.cursor
    assert [r.url.path for r in rec.requests if r.url.path.startswith("/v2/")] == ["/v2/listings"]
    assert adapter.fetch_requests(first.cursor) == 4
    second = await adapter.fetch_bookings(cursor=first.cursor)
    assert second.bookings and len([r for r in rec.requests if r.url.path == "/v2/reservations"]) == 4
    with pytest.raises(PermanentChannelError, match="cursor"):
        await adapter.fetch_bookings(cursor="0:abc")
    # An adapter rebuilt mid-pull (a config change) is handed the first one's cursor: it
    # announces 1 request, sends only the discovery, and goes on from the same cursor.
    paged = AirbnbAdapter(ChannelConfig(apiKey=CID, apiSecret=SECRET, endpoint="http://x"),
                          transport=Recorder(app), page_size=2)
    mid = await paged.fetch_bookings(cursor=(await paged.fetch_bookings()).cursor)
    assert mid.has_more and mid.cursor is not None and mid.cursor.startswith("{")
    rebuilt_rec = Recorder(app)
    rebuilt = AirbnbAdapter(ChannelConfig(apiKey=CID, apiSecret=SECRET, endpoint="http://x"),
                            transport=rebuilt_rec, page_size=2)
    assert rebuilt.fetch_requests(mid.cursor) == 1
    again = await rebuilt.fetch_bookings(cursor=mid.cursor)
    assert again.bookings == [] and again.cursor == mid.cursor and again.has_more
    assert [r.url.path for r in rebuilt_rec.requests if r.url.path.startswith("/v2/")] == [
        "/v2/listings"]
    assert rebuilt.fetch_requests(mid.cursor) == paged.fetch_requests(mid.cursor) == 4
    rest, _ = await drain_from(rebuilt, mid.cursor)
    went_on, _ = await drain_from(paged, mid.cursor)
    assert sorted(rest) == sorted(went_on) and rest


async def app_get(app: FastAPI, path: str) -> bytes:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        token = (await client.post("/oauth2/v1/token", data={
            "grant_type": "client_credentials", "client_id": CID, "client_secret": SECRET})).json()["access_token"]
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        return response.content


@pytest.mark.parametrize("query", ["cursor=%%%", "_offset=-1", "_limit=0", "_limit=x"])
async def test_simulator_rejects_bad_paging(query: str) -> None:
    app = create_app(bookings=3, client_id=CID, client_secret=SECRET)
    body = orjson.loads(await app_get(app, f"/v2/reservations?{query}"))
    assert body["error_code"] == 400 and body["error_type"] == "invalid_param"


async def test_simulator_lists_pending_and_ended_only_with_all_status() -> None:
    app = create_app(bookings=30, seed=3, client_id=CID, client_secret=SECRET)
    accepted_only = orjson.loads(await app_get(app, "/v2/reservations?_limit=100"))["reservations"]
    everything = orjson.loads(await app_get(app, "/v2/reservations?all_status=true&_limit=100"))["reservations"]
    assert accepted_only and {r["status_type"] for r in accepted_only} == {"accept"}
    assert {"pending", "accept"} <= {r["status_type"] for r in everything}
    assert len(everything) > len(accepted_only)
    first = orjson.loads(await app_get(app, "/v2/reservations?all_status=true&_limit=5"))
    cursor = first["metadata"]["next_cursor"]
    second = orjson.loads(await app_get(app, f"/v2/reservations?all_status=true&_limit=5&_cursor={cursor}"))
    assert [r["confirmation_code"] for r in first["reservations"] + second["reservations"]] == [
        r["confirmation_code"] for r in everything[:10]
    ]


async def app_put(app: FastAPI, path: str, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        token = (await client.post("/oauth2/v1/token", data={
            "grant_type": "client_credentials", "client_id": CID, "client_secret": SECRET})).json()["access_token"]
        return await client.put(path, content=body, headers={"Authorization": f"Bearer {token}"})


async def test_simulator_refuses_incomplete_host_decisions() -> None:
    app = create_app(bookings=30, seed=3, client_id=CID, client_secret=SECRET)
    items = orjson.loads(await app_get(app, "/v2/reservations?all_status=true&_limit=100"))["reservations"]
    pending = next(r["confirmation_code"] for r in items if r["status_type"] == "pending")
    accepted = next(r["confirmation_code"] for r in items if r["status_type"] == "accept")
    for code, body in [(pending, b'{"attempt_action": "deny"}'),  # no decline_reason
                       (pending, b'{"attempt_action": "deny", "decline_reason": "because"}'),
                       (accepted, b'{"status_type": "cancelled_by_host"}'),  # no reason
                       (pending, b'{"attempt_action": "maybe"}'), (pending, b"[1]"), (pending, b"{oops")]:
        resp = await app_put(app, f"/v2/reservations/{code}", body)
        assert resp.status_code == 400 and resp.json()["error_type"] == "invalid_param", body
    resp = await app_put(app, f"/v2/reservations/{accepted}", b'{"attempt_action": "accept"}')
    assert resp.status_code == 200  # re-accepting an accepted reservation is idempotent
    resp = await app_put(app, f"/v2/reservations/{pending}", b'{"status_type": "cancelled_by_host", "reason": "x"}')
    assert resp.status_code == 409 and resp.json()["error_type"] == "invalid_state"
    assert (await app_put(app, "/v2/reservations/HMNOPE", b'{"attempt_action": "accept"}')).status_code == 404


async def test_simulated_reservation_amounts_add_up() -> None:
    app = create_app(bookings=10, seed=5, client_id=CID, client_secret=SECRET)
    items = orjson.loads(await app_get(app, "/v2/reservations?all_status=true&_limit=100"))["reservations"]
    for r in items:
        base, fee, vat = (Decimal(r[k]) for k in (
            "listing_base_price_accurate", "host_fee_base_accurate", "host_fee_vat_accurate"))
        assert Decimal(r["expected_payout_amount_accurate"]) == base - fee - vat
        assert sum(Decimal(n["amount"]) for n in r["nightly_prices"]) == base
        assert r["nights"] == len(r["nightly_prices"]) and r["listing_id_str"] == str(r["listing_id"])
        assert "payment_card" not in r


async def test_duplicates_in_a_page_collapse() -> None:
    app, _, adapter = make(bookings=20, faults=FaultSettings(duplicate_rate=1.0), page_size=50)
    ids, _ = await drain(adapter)
    assert len(ids) == len(set(ids)) == 20
    # The partner really did send every reservation twice.
    raw = parse_bookings(await app_get(app, "/v2/reservations?include_pending=true&_limit=100"))
    assert len(raw) == 40 and len({r.external_id for r in raw}) == 20


async def test_accept_pending_as_acknowledgement() -> None:
    app, rec, adapter = make(bookings=30)
    page_ids, _ = await drain(adapter)
    records = [await adapter.fetch_booking(i) for i in page_ids]
    pending = [r for r in records if r is not None and r.status == "pending"]
    accepted = [r for r in records if r is not None and r.status == "accept"]
    assert pending and accepted
    before = len(rec.requests)
    acks = await adapter.acknowledge(pending + accepted[:2])
    assert all(a.ok for a in acks)
    decisions = [(r.url.path, orjson.loads(r.content)) for r in rec.requests[before:] if r.method == "PUT"]
    assert decisions == [(f"/v2/reservations/{p.external_id}", {"attempt_action": "accept"}) for p in pending]
    after = await adapter.fetch_booking(pending[0].external_id)
    assert after is not None and after.status == "accept" and after.event == "new"
    assert all(a.ok for a in await adapter.acknowledge(pending[:1]))  # re-accept is idempotent


async def test_changed_since_lists_only_what_changed_after_it() -> None:
    """An incremental pull: `updated_since` as an instant (to the second, in UTC), only the
    reservations changed at or after it, every listing still visited."""
    app, rec, adapter = make(bookings=30)
    everything, _ = await drain(adapter)
    records = [await adapter.fetch_booking(i) for i in everything]
    pending = [r for r in records if r is not None and r.status == "pending"]
    assert pending
    since = datetime.now(UTC) - timedelta(seconds=2)
    assert (await adapter.acknowledge(pending[:1]))[0].ok  # accepting changes it now
    before = len(rec.requests)
    changed: list[str] = []
    cursor = None
    while True:
        page = await adapter.fetch_bookings(cursor=cursor, changed_since=since)
        changed += [b.external_id for b in page.bookings]
        if not page.has_more:
            break
        cursor = page.cursor
    # Generated history is older than a minute: the accepted request is all that changed.
    assert changed == [pending[0].external_id]
    lists = [r for r in rec.requests[before:] if r.url.path == "/v2/reservations"]
    assert {r.url.params["listing_id"] for r in lists} == set(await adapter.listings())
    assert all(r.url.params["updated_since"] == since.strftime("%Y-%m-%dT%H:%M:%SZ") for r in lists)


async def test_simulator_filters_by_change_time_to_the_second() -> None:
    app = create_app(bookings=30, seed=3, client_id=CID, client_secret=SECRET)
    everything = orjson.loads(await app_get(app, "/v2/reservations?all_status=true&_limit=100"))["reservations"]
    stamps = sorted(r["updated_at"] for r in everything)
    middle = stamps[len(stamps) // 2]
    later = orjson.loads(await app_get(
        app, f"/v2/reservations?all_status=true&_limit=100&updated_since={middle}"))["reservations"]
    assert sorted(r["updated_at"] for r in later) == [s for s in stamps if s >= middle]
    # A date is the whole day; a time without an offset is UTC.
    day = orjson.loads(await app_get(
        app, f"/v2/reservations?all_status=true&_limit=100&updated_since={middle[:10]}"))["reservations"]
    assert len(day) == len([s for s in stamps if s[:10] >= middle[:10]])
    naive = orjson.loads(await app_get(
        app, f"/v2/reservations?all_status=true&_limit=100&updated_since={middle[:19]}"))["reservations"]
    assert len(naive) == len(later)
    bad = orjson.loads(await app_get(app, "/v2/reservations?updated_since=yesterday"))
    assert bad["error_code"] == 400 and bad["error_type"] == "invalid_param"


async def test_only_pending_requests_cost_an_acknowledgement_request() -> None:
    app, rec, adapter = make(bookings=30)
    ids, _ = await drain(adapter)
    records = [r for r in [await adapter.fetch_booking(i) for i in ids] if r is not None]
    pending = [r for r in records if r.status == "pending"]
    assert pending and len(pending) < len(records)
    assert adapter.ack_requests(records) == len(pending)
    assert adapter.ack_requests([r for r in records if r.status != "pending"]) == 0
    before = len(rec.requests)
    await adapter.acknowledge(records)
    assert len(rec.requests) - before == len(pending)


async def test_guest_cancel_after_host_accept_wins() -> None:
    app, _, adapter = make(bookings=30)
    sim = app.state.sim
    request = next(m.booking for m in sim.queue.messages
                   if m.booking.event == "new" and int(m.booking.booking_id) % 5 == 0
                   and len(sim.queue.find(m.booking.booking_id)) == 1)
    code = confirmation_code(request.booking_id)
    assert (await adapter.acknowledge([await adapter.fetch_booking(code)]))[0].ok  # type: ignore[list-item]
    assert (await adapter.fetch_booking(code)).status == "accept"  # type: ignore[union-attr]
    sim.queue.add([sim.generator.cancel(request, datetime.now(UTC) + timedelta(minutes=1))])
    after = await adapter.fetch_booking(code)
    assert after is not None and after.status == "cancelled_by_guest" and after.event == "cancelled"


async def test_decline_cancel_and_unsupported_status() -> None:
    app, _, adapter = make(bookings=30)
    ids, _ = await drain(adapter)
    records = [r for r in [await adapter.fetch_booking(i) for i in ids] if r is not None]
    pending = [r for r in records if r.status == "pending"]
    accepted = next(r for r in records if r.status == "accept")
    assert (await adapter.update_booking_status(pending[0].external_id, BookingStatus.CANCELLED)).ok
    assert (await adapter.fetch_booking(pending[0].external_id)).status == "deny"  # type: ignore[union-attr]
    assert (await adapter.update_booking_status(accepted.external_id, BookingStatus.CANCELLED)).ok
    cancelled = await adapter.fetch_booking(accepted.external_id)
    assert cancelled is not None and cancelled.status == "cancelled_by_host" and cancelled.event == "cancelled"
    again = await adapter.update_booking_status(accepted.external_id, BookingStatus.CANCELLED)
    assert not again.ok and again.error_code == "invalid_state"
    if len(pending) > 1:
        assert (await adapter.decline(pending[1].external_id)).ok
    assert (await adapter.update_booking_status("HMNOPE", BookingStatus.CANCELLED)).error_code == "NOT_FOUND"
    assert (await adapter.update_booking_status(accepted.external_id, BookingStatus.NO_SHOW)).error_code == "NOT_SUPPORTED"
    assert await adapter.fetch_booking("HMNOPE") is None


async def test_webhook_event_verifies_and_matches_reservation() -> None:
    app, _, adapter = make(bookings=5)
    ids, _ = await drain(adapter)
    body, headers = webhook_event(app, ids[0], "reservation_created")
    assert verify_webhook_signature(body, headers["X-Airbnb-Signature"], "sim-airbnb-webhook-secret")
    assert not verify_webhook_signature(body + b" ", headers["X-Airbnb-Signature"], "sim-airbnb-webhook-secret")
    event = orjson.loads(body)
    fetched = await adapter.fetch_booking(event["reservation"]["confirmation_code"])
    assert fetched is not None and fetched.revision == event["reservation"]["updated_at"]


# ---------------------------------------------------------------- calendar


async def test_calendar_groups_equal_days_per_listing() -> None:
    app, rec, adapter = make()
    end = TODAY + timedelta(days=13)
    updates = [
        ARIUpdate(partner_room_type_code=LISTING, start=TODAY, end=end, available=1),
        ARIUpdate(partner_room_type_code=LISTING, partner_rate_plan_code="default", start=TODAY, end=end,
                  rate=Decimal("149"), min_los=2),
        ARIUpdate(partner_room_type_code=LISTING2, start=TODAY, end=end, weekdays=frozenset({5, 6}), stop_sell=True),
    ]
    results = await adapter.push_ari(updates)
    assert [r.ok for r in results] == [True, True, True]
    puts = rec.puts()
    first = [(p, b) for p, b in puts if LISTING in p and LISTING2 not in p]
    # Availability and price for the same days share one PUT over the whole range.
    assert first == [(f"/v2/calendars/{LISTING}/{TODAY}/{end}",
                      {"availability": "available", "daily_price": 149.0, "min_nights": 2})]
    weekend = [p for p, _ in puts if LISTING2 in p]
    assert 2 <= len(weekend) <= 3
    for path in weekend:
        start, stop = (date.fromisoformat(x) for x in path.rsplit("/", 2)[1:])
        assert {(start + timedelta(days=i)).weekday() for i in range((stop - start).days + 1)} <= {5, 6}
    cal = orjson.loads(await app_get(app, f"/v2/calendars/{LISTING}?start_date={TODAY}&end_date={end}"))
    assert len(cal["calendar"]["days"]) == 14 and cal["calendar"]["days"][0]["daily_price"] == 149.0


async def test_room_counts_collapse_to_one_available_range() -> None:
    _, rec, adapter = make()
    results = await adapter.push_ari([
        ARIUpdate(partner_room_type_code=LISTING, start=TODAY, end=TODAY + timedelta(days=2), available=3),
        ARIUpdate(partner_room_type_code=LISTING, start=TODAY + timedelta(days=3), end=TODAY + timedelta(days=5), available=1),
        ARIUpdate(partner_room_type_code=LISTING, start=TODAY + timedelta(days=6), end=TODAY + timedelta(days=6), available=0),
    ])
    assert all(r.ok for r in results)
    assert rec.puts() == [
        (f"/v2/calendars/{LISTING}/{TODAY}/{TODAY + timedelta(days=5)}", {"availability": "available"}),
        (f"/v2/calendars/{LISTING}/{TODAY + timedelta(days=6)}/{TODAY + timedelta(days=6)}", {"availability": "unavailable"}),
    ]


async def test_unchanged_nothing_sent_and_per_update_errors() -> None:
    _, rec, adapter = make()
    results = await adapter.push_ari([
        ARIUpdate(partner_room_type_code=LISTING, partner_rate_plan_code="NRF", start=TODAY, end=TODAY, rate=Decimal("1")),
        ARIUpdate(partner_room_type_code="59999999", start=TODAY, end=TODAY, available=1),
        ARIUpdate(partner_room_type_code=LISTING, start=TODAY, end=TODAY, available=1),
    ])
    assert [(r.ok, r.error_code) for r in results] == [(False, "RATE_PLAN_UNKNOWN"), (False, "not_found"), (True, None)]
    assert len(rec.puts()) == 2
    assert await adapter.push_ari([]) == []


async def test_partial_failures_per_range() -> None:
    app, _, adapter = make(faults=FaultSettings(partial_failure_rate=0.5))
    updates = [ARIUpdate(partner_room_type_code=LISTING, start=TODAY + timedelta(days=2 * i),
                         end=TODAY + timedelta(days=2 * i), available=1, rate=Decimal(100 + i)) for i in range(10)]
    results = await adapter.push_ari(updates)
    assert any(r.ok for r in results) and not all(r.ok for r in results)
    stored = app.state.sim.ari.calendar.get(f"{LISTING}/*", {})
    for u, r in zip(updates, results, strict=True):
        assert (u.start.isoformat() in stored) == r.ok


async def test_429_mid_push_stops_and_marks_rest_transient() -> None:
    _, rec, adapter = make(throttle_after=2)
    updates = [ARIUpdate(partner_room_type_code=LISTING, start=TODAY + timedelta(days=2 * i),
                         end=TODAY + timedelta(days=2 * i), rate=Decimal(100 + i)) for i in range(5)]
    results = await adapter.push_ari(updates)
    assert [r.ok for r in results] == [True, True, False, False, False]
    assert all(r.transient for r in results[2:]) and results[2].error_code == "429"
    assert [r.error_code for r in results[3:]] == ["NOT_SENT", "NOT_SENT"]
    assert len(rec.puts()) == 3  # no hammering after the 429


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize(("faults", "status"), [
    (FaultSettings(error_rate=1.0), 503),
    (FaultSettings(rate_limit_rate=1.0, retry_after_seconds=13), 429),
])
async def test_transient_faults(faults: FaultSettings, status: int) -> None:
    _, _, adapter = make(bookings=3, faults=faults)
    with pytest.raises(TransientChannelError) as err:
        await adapter.fetch_bookings()
    assert err.value.status_code == status
    if status == 429:
        assert err.value.retry_after == 13.0
    with pytest.raises(TransientChannelError):
        await adapter.push_ari([ARIUpdate(partner_room_type_code=LISTING, start=TODAY, end=TODAY, available=1)])


async def test_malformed_body_is_malformed_payload_error() -> None:
    app, _, adapter = make(bookings=3)
    await adapter.fetch_bookings()  # token and listings fetched while the partner is healthy
    app.state.sim.faults = FaultSettings(malformed_rate=1.0)
    with pytest.raises(MalformedPayloadError, match="airbnb"):
        await adapter.fetch_bookings()


async def test_registry_builds_airbnb() -> None:
    adapter = get_adapter("airbnb", ChannelConfig(apiKey=CID, apiSecret=SECRET))
    assert isinstance(adapter, AirbnbAdapter) and isinstance(adapter, ChannelAdapter) and adapter.token_url.startswith("https://")
    await adapter.aclose()


# ---------------------------------------------------------------- real HTTP


def test_loopback_server_round_trip_and_timeout() -> None:
    import anyio

    app = create_app(bookings=15, seed=4, client_id=CID, client_secret=SECRET)

    async def scenario(url: str) -> None:
        config = ChannelConfig(apiKey=CID, apiSecret=SECRET, endpoint=url)
        adapter = AirbnbAdapter(config, timeout=5.0, page_size=4)
        ids, _ = await drain(adapter)
        assert len(set(ids)) == 15
        (result,) = await adapter.push_ari([ARIUpdate(partner_room_type_code=LISTING, start=TODAY, end=TODAY, available=0)])
        assert result.ok and adapter.auth.issued == 1
        app.state.sim.faults = FaultSettings(timeout_rate=1.0, timeout_seconds=1.0)
        slow = AirbnbAdapter(config, timeout=0.2)
        with pytest.raises(TransientChannelError, match="timeout"):
            await slow.fetch_bookings()
        await adapter.aclose()
        await slow.aclose()

    with running_server(app) as url:
        anyio.run(scenario, url)
