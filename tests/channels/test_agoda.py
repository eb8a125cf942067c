"""Agoda adapter against its simulator: every message type, limits, faults, loopback HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from lxml import etree

from channels import agoda_wire as wire
from channels.agoda import AgodaAdapter
from channels.ari import days_of
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
from channels.simulators.agoda import HOTEL_TZ, booking_hint, create_app
from channels.simulators.common import FaultSettings
from channels.simulators.server import running_server

pytestmark = pytest.mark.anyio

KEY = "agoda-test-key"
#: the simulated hotel's own date (Bangkok), not this machine's: they differ from 17:00 to 24:00 UTC
TODAY = datetime.now(HOTEL_TZ).date()
ROOM, ROOM2, PLAN = "3301", "3302", "77001"


class Recorder(httpx.AsyncBaseTransport):
    """ASGITransport that keeps every request (body read) for assertions."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    def bodies(self, type_: int) -> list[etree._Element]:
        roots = [etree.fromstring(r.content) for r in self.requests]
        return [r for r in roots if r.get("type") == str(type_)]


def make(bookings: int = 0, faults: FaultSettings | None = None, **options: object) -> tuple[FastAPI, Recorder, AgodaAdapter]:
    app = create_app(bookings=bookings, seed=3, faults=faults, api_key=KEY, today=lambda: TODAY)
    rec = Recorder(app)
    adapter = AgodaAdapter(ChannelConfig(apiKey=KEY, propertyId="90210", endpoint="http://agoda.sim"),
                           transport=rec, today=lambda: TODAY, **options)  # type: ignore[arg-type]
    return app, rec, adapter


async def raw(app: FastAPI, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        return await client.post("/api", params={"apiKey": KEY}, content=body)


# ---------------------------------------------------------------- ARI


async def test_set_ari_round_trip_via_get_ari() -> None:
    app, rec, adapter = make()
    end = TODAY + timedelta(days=13)
    updates = [
        ARIUpdate(partner_room_type_code=ROOM, start=TODAY, end=TODAY + timedelta(days=6), available=5),
        ARIUpdate(partner_room_type_code=ROOM, start=TODAY + timedelta(days=7), end=end, available=5),
        ARIUpdate(partner_room_type_code=ROOM, partner_rate_plan_code=PLAN, start=TODAY, end=end,
                  rate=Decimal("120.00"), currency="EUR", min_los=2, closed_to_arrival=True),
        ARIUpdate(partner_room_type_code=ROOM2, start=TODAY, end=end, weekdays=frozenset({5, 6}), stop_sell=True),
    ]
    results = await adapter.push_ari(updates)
    assert [r.ok for r in results] == [True] * 4 and results[0].update == updates[0]
    (body,) = rec.bodies(wire.TYPE_SET_ARI_V2)
    inv = body.findall("criteria/inventory/update")
    # The two adjacent equal availability ranges went out as one range.
    assert [(u.get("room_id"), u.find("date_range").get("to")) for u in inv][0] == (ROOM, end.isoformat())
    # Weekend-only closures: only Saturdays and Sundays are ever named (ranges or dow masks).
    for u in (u for u in inv if u.get("room_id") == ROOM2):
        rng = u.find("date_range")
        first, last = date.fromisoformat(rng.get("from")), date.fromisoformat(rng.get("to"))
        dows = {int(d.text) - 1 for d in rng.findall("dow")} or {
            (first + timedelta(days=i)).weekday() for i in range((last - first).days + 1)}
        assert dows <= {5, 6}
    (rate_upd,) = body.findall("criteria/rate/update")
    # A closure on a rate plan closes that rate plan only, not the whole room.
    assert rate_upd.findtext("restrictions/cta") == "true"
    assert all(u.find("restrictions/cta") is None for u in inv)
    read = await adapter.get_ari(TODAY, end)
    avail = [u for u in read if u.partner_room_type_code == ROOM and u.partner_rate_plan_code is None]
    assert [(u.start, u.end, u.available) for u in avail] == [(TODAY, end, 5)]
    rate = [u for u in read if u.partner_rate_plan_code == PLAN]
    assert {(u.rate, u.min_los, u.closed_to_arrival) for u in rate} == {(Decimal("120.00"), 2, True)}
    closed = {d.weekday() for u in read if u.partner_room_type_code == ROOM2 and u.stop_sell for d in days_of(u)}
    assert closed == {5, 6}
    await adapter.aclose()


async def test_207_partial_success_marks_only_failed_updates() -> None:
    app, rec, adapter = make()
    updates = [
        ARIUpdate(partner_room_type_code=ROOM, start=TODAY, end=TODAY + timedelta(days=3), available=2),
        ARIUpdate(partner_room_type_code="9999", start=TODAY, end=TODAY + timedelta(days=3), available=2),
        ARIUpdate(partner_room_type_code=ROOM, partner_rate_plan_code="00000", start=TODAY,
                  end=TODAY + timedelta(days=3), rate=Decimal("50")),
        ARIUpdate(partner_room_type_code=ROOM2, partner_rate_plan_code=PLAN, start=TODAY,
                  end=TODAY + timedelta(days=3), rate=Decimal("80")),
    ]
    results = await adapter.push_ari(updates)
    assert [r.ok for r in results] == [True, False, False, True]
    assert (results[1].error_code, results[2].error_code) == ("2102", "2103")
    assert not results[1].transient
    applied = app.state.sim.ari.calendar
    assert f"{ROOM}/*" in applied and "9999/*" not in applied and f"{ROOM}/00000" not in applied
    await adapter.aclose()


async def test_all_failed_is_400_and_every_update_fails() -> None:
    app, _, adapter = make(faults=FaultSettings(partial_failure_rate=1.0))
    updates = [ARIUpdate(partner_room_type_code=ROOM, start=TODAY, end=TODAY, available=1),
               ARIUpdate(partner_room_type_code=ROOM2, start=TODAY, end=TODAY, available=1)]
    results = await adapter.push_ari(updates)
    assert [(r.ok, r.error_code) for r in results] == [(False, "2101"), (False, "2101")]
    assert app.state.sim.ari.calendar == {}
    await adapter.aclose()


async def test_random_partial_failures_match_what_the_partner_applied() -> None:
    app, _, adapter = make(faults=FaultSettings(partial_failure_rate=0.5))
    updates = [ARIUpdate(partner_room_type_code=room, start=TODAY + timedelta(days=3 * i),
                         end=TODAY + timedelta(days=3 * i + 1), available=i)
               for i in range(8) for room in (ROOM, ROOM2)]
    results = await adapter.push_ari(updates)
    assert any(r.ok for r in results) and not all(r.ok for r in results)
    cal = app.state.sim.ari.calendar
    for u, r in zip(updates, results, strict=True):
        stored = cal.get(f"{u.partner_room_type_code}/*", {}).get(u.start.isoformat())
        assert (stored is not None) == r.ok


async def test_730_day_limit_clips_refuses_and_simulator_rejects() -> None:
    app, rec, adapter = make()
    horizon = TODAY + timedelta(days=730)
    updates = [
        ARIUpdate(partner_room_type_code=ROOM, start=horizon - timedelta(days=5), end=horizon + timedelta(days=20), available=3),
        ARIUpdate(partner_room_type_code=ROOM2, start=horizon + timedelta(days=1), end=horizon + timedelta(days=9), available=3),
    ]
    results = await adapter.push_ari(updates)
    assert results[0].ok and "730" in results[0].warnings[0]
    assert not results[1].ok and results[1].error_code == "2219"
    sent = [rng.get("to") for b in rec.bodies(wire.TYPE_SET_ARI_V2) for rng in b.iter("date_range")]
    assert sent == [horizon.isoformat()]
    # The simulator enforces the rule itself for anyone who does not clip.
    beyond = wire.WireUpdate("inventory", ROOM, None, horizon, horizon + timedelta(days=1), allotment=1)
    response = await raw(app, wire.build_set_ari("90210", [beyond]))
    assert response.status_code == 207  # Agoda's per-update form, even when every update failed
    outcome = wire.parse_set_ari_response(response.content)
    assert outcome.status == "PartialSuccess" and outcome.update_errors[beyond.key][0][0] == "2219"
    await adapter.aclose()


async def test_local_validation_sends_nothing() -> None:
    _, rec, adapter = make()
    results = await adapter.push_ari([
        ARIUpdate(partner_room_type_code=ROOM, start=TODAY, end=TODAY, rate=Decimal("10")),
        ARIUpdate(partner_room_type_code=ROOM, partner_rate_plan_code=PLAN, start=TODAY, end=TODAY, min_los=5, max_los=2),
    ])
    assert [r.error_code for r in results] == ["INVALID", "INVALID"]
    assert rec.requests == []


# ---------------------------------------------------------------- bookings


async def test_fetch_detail_ack_round_trip_and_redelivery() -> None:
    app, rec, adapter = make(bookings=30)
    page = await adapter.fetch_bookings()
    assert len(page.bookings) == 30 and not page.has_more and not page.errors
    again = await adapter.fetch_bookings()  # nothing acknowledged yet: everything comes back
    assert {b.external_id for b in again.bookings} == {b.external_id for b in page.bookings}
    acks = await adapter.acknowledge(page.bookings)
    assert all(a.ok for a in acks) and len(acks) == 30
    assert (await adapter.fetch_bookings()).bookings == []
    assert rec.bodies(wire.TYPE_ACK)[0].find("criteria/booking").get("last_action")
    await adapter.aclose()


async def test_simulated_bookings_read_like_agoda_sends_them() -> None:
    """What the simulator sold (its own booking data) comes back through the documented shape."""
    from channels.simulators.agoda import COUNTRY_NAMES

    app, _, adapter = make(bookings=25)
    page = await adapter.fetch_bookings()
    sold = {}
    for m in app.state.sim.queue.messages:
        b = m.booking
        if b.booking_id not in sold or b.revision > sold[b.booking_id].revision:
            sold[b.booking_id] = b
    assert {r.external_id for r in page.bookings} == set(sold)
    for rec in page.bookings:
        b = sold[rec.external_id]
        assert rec.guest.country is None and rec.guest.country_name == COUNTRY_NAMES[b.guest.country]
        assert len(rec.rooms) == len(b.rooms)  # room_count units
        assert sum(r.adults for r in rec.rooms) == sum(r.adults for r in b.rooms)
        assert sum(r.children for r in rec.rooms) == sum(len(r.child_ages) for r in b.rooms)
        assert rec.special_requests[0].code == "NonSmoke"
        if b.comments:
            assert rec.special_requests[1].text == b.comments
        if b.event == "cancelled":
            assert rec.total_amount == 0 and all(r.nightly_prices == [] for r in rec.rooms)
        else:
            assert rec.total_amount == b.total
            assert sum((r.amount or 0 for r in rec.rooms), Decimal(0)) == b.total
            nights = {d for room in b.rooms for d, _ in room.nightly}
            assert all(set(r.nightly_rates) == nights for r in rec.rooms)
        assert rec.booked_at is not None and rec.booked_at.utcoffset() == timedelta(hours=7)
    await adapter.aclose()


async def test_stale_ack_keeps_booking_pending() -> None:
    app, _, adapter = make(bookings=5)
    page = await adapter.fetch_bookings()
    stale = page.bookings[0].model_copy(update={"ack_token": f"90210|{page.bookings[0].external_id}|2000-01-01T00:00:00+07:00"})
    (result,) = await adapter.acknowledge([stale])
    assert not result.ok and "2505" in (result.error or "")
    assert page.bookings[0].external_id in {b.external_id for b in (await adapter.fetch_bookings()).bookings}


async def test_long_window_is_split_into_90_day_lists() -> None:
    app, rec, adapter = make(bookings=3)
    await adapter.fetch_bookings(start=TODAY - timedelta(days=80), end=TODAY + timedelta(days=100))
    lists = rec.bodies(wire.TYPE_BOOKING_LIST_V2)
    assert len(lists) == 3  # 181 days: 90 + 90 + 1
    spans = [datetime.fromisoformat(c.get("to")) - datetime.fromisoformat(c.get("from"))
             for c in (b.find("criteria") for b in lists)]
    assert all(s <= timedelta(days=90) for s in spans)
    too_long = wire.build_booking_list(["90210"], datetime.fromisoformat("2026-01-01T00:00:00+07:00"),
                                       datetime.fromisoformat("2026-04-15T00:00:00+07:00"))
    response = await raw(app, too_long)
    assert response.status_code == 400 and wire.parse_errors(response.content)[0][0] == "2401"


async def test_list_looks_back_at_most_90_days() -> None:
    """Agoda's GetBookingList example: "LookBack = 90 Days, Now - From <= 90 Days"."""
    app, rec, adapter = make(bookings=3)
    page = await adapter.fetch_bookings(start=TODAY - timedelta(days=200), end=TODAY)
    assert any("clipped" in e and "90 days" in e for e in page.errors)
    froms = [datetime.fromisoformat(b.find("criteria").get("from")) for b in rec.bodies(wire.TYPE_BOOKING_LIST_V2)]
    assert min(froms).date() == TODAY - timedelta(days=89)
    old = wire.build_booking_list(["90210"], datetime.now(UTC) - timedelta(days=95), datetime.now(UTC) - timedelta(days=10))
    response = await raw(app, old)
    assert response.status_code == 400 and wire.parse_errors(response.content)[0][0] == "2402"
    six = wire.build_booking_list([str(i) for i in range(6)], datetime.now(UTC) - timedelta(days=1), datetime.now(UTC))
    response = await raw(app, six)
    assert response.status_code == 400 and wire.parse_errors(response.content)[0][0] == "2403"


async def test_details_in_batches_of_50_and_simulator_limit() -> None:
    app, rec, adapter = make(bookings=120)
    page = await adapter.fetch_bookings()
    ids = [len(b.findall(".//booking")) for b in rec.bodies(wire.TYPE_BOOKING_DETAIL)]
    assert ids == [50, 50, 20] and len(page.bookings) == 120
    ids51 = "".join(f'<booking id="{i}"/>' for i in range(51))
    body = f'<request timestamp="1" type="4"><criteria><property id="90210">{ids51}</property></criteria></request>'
    response = await raw(app, body.encode())
    assert response.status_code == 400 and wire.parse_errors(response.content)[0][0] == "2502"


async def test_v1_booking_list_type_3() -> None:
    _, rec, adapter = make(bookings=4, list_type=wire.TYPE_BOOKING_LIST)
    assert len((await adapter.fetch_bookings()).bookings) == 4
    assert rec.bodies(wire.TYPE_BOOKING_LIST) and not rec.bodies(wire.TYPE_BOOKING_LIST_V2)


async def test_cursor_drains_without_skipping() -> None:
    _, _, adapter = make(bookings=70, page_size=30)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await adapter.fetch_bookings(cursor=cursor)
        seen += [b.external_id for b in page.bookings]
        if not page.has_more:
            break
        cursor = page.cursor
    assert len(seen) == len(set(seen)) == 70


async def test_duplicate_redelivery_collapses_and_keeps_revision() -> None:
    app, rec, adapter = make(bookings=10, faults=FaultSettings(duplicate_rate=1.0))
    page = await adapter.fetch_bookings()
    (listing,) = rec.bodies(wire.TYPE_BOOKING_LIST_V2)
    assert len(page.bookings) == len({b.external_id for b in page.bookings}) == 10
    await adapter.acknowledge(page.bookings)
    # Acknowledged bookings still come back under the duplicate fault: same id and revision.
    again = await adapter.fetch_bookings()
    before = {(b.external_id, b.revision) for b in page.bookings}
    assert again.bookings and {(b.external_id, b.revision) for b in again.bookings} <= before


async def test_booking_hint_then_fetch_booking() -> None:
    app, _, adapter = make(bookings=5)
    bid = app.state.sim.queue.messages[0].booking.booking_id
    hint = booking_hint(app, bid)
    assert set(hint) == {"property_id", "booking_id", "last_action", "checkin", "checkout", "status"}
    assert hint["status"] in {"confirm", "amend", "cancel"}
    record = await adapter.fetch_booking(hint["booking_id"])
    assert record is not None and record.check_in == date.fromisoformat(hint["checkin"])
    assert record.revision == wire._utc_revision(hint["last_action"])
    assert await adapter.fetch_booking("999") is None


async def test_status_updates_are_not_supported() -> None:
    _, rec, adapter = make()
    result = await adapter.update_booking_status("1", BookingStatus.NO_SHOW)
    assert not result.ok and result.error_code == "NOT_SUPPORTED" and rec.requests == []


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize(("faults", "status"), [
    (FaultSettings(error_rate=1.0), 503),
    (FaultSettings(rate_limit_rate=1.0, retry_after_seconds=11), 429),
])
async def test_transient_faults(faults: FaultSettings, status: int) -> None:
    _, _, adapter = make(bookings=3, faults=faults)
    with pytest.raises(TransientChannelError) as err:
        await adapter.fetch_bookings()
    assert err.value.status_code == status
    if status == 429:
        assert err.value.retry_after == 11.0
    with pytest.raises(TransientChannelError):
        await adapter.push_ari([ARIUpdate(partner_room_type_code=ROOM, start=TODAY, end=TODAY, available=1)])


async def test_malformed_body_is_malformed_payload_error() -> None:
    _, _, adapter = make(bookings=3, faults=FaultSettings(malformed_rate=1.0))
    with pytest.raises(MalformedPayloadError, match="agoda"):
        await adapter.fetch_bookings()
    with pytest.raises(MalformedPayloadError):
        await adapter.push_ari([ARIUpdate(partner_room_type_code=ROOM, start=TODAY, end=TODAY, available=1)])


@pytest.mark.parametrize(("body", "code"), [
    (b'<request timestamp="1" type="x"><criteria/></request>', "1003"),
    (b'<request timestamp="1" type="6"><criteria/></request>', "1003"),
    (b'<request timestamp="1" type="10"/>', "1004"),
    (b"<other/>", "1002"),
    (b"<request", "1001"),
    (b'<!DOCTYPE r [<!ENTITY a "b">]><request type="10"/>', "1001"),
])
async def test_simulator_rejects_bad_requests_with_400(body: bytes, code: str) -> None:
    app = create_app(bookings=0, api_key=KEY)
    response = await raw(app, body)
    assert response.status_code == 400 and wire.parse_errors(response.content)[0][0] == code


async def test_wrong_api_key_is_permanent() -> None:
    app = create_app(bookings=1, api_key=KEY)
    adapter = AgodaAdapter(ChannelConfig(apiKey="wrong", propertyId="90210", endpoint="http://x"),
                           transport=httpx.ASGITransport(app=app))
    with pytest.raises(PermanentChannelError) as err:
        await adapter.fetch_bookings()
    assert err.value.status_code == 401


async def test_registry_builds_agoda() -> None:
    adapter = get_adapter("agoda", ChannelConfig(apiKey=KEY, propertyId="90210"))
    assert isinstance(adapter, AgodaAdapter) and isinstance(adapter, ChannelAdapter)
    await adapter.aclose()


# ---------------------------------------------------------------- real HTTP


def test_loopback_server_round_trip_and_timeout() -> None:
    import anyio

    app = create_app(bookings=12, seed=5, api_key=KEY)

    async def scenario(url: str) -> None:
        adapter = AgodaAdapter(ChannelConfig(apiKey=KEY, propertyId="90210", endpoint=url), timeout=5.0)
        page = await adapter.fetch_bookings()
        assert len(page.bookings) == 12
        assert all(a.ok for a in await adapter.acknowledge(page.bookings))
        assert (await adapter.fetch_bookings()).bookings == []
        (result,) = await adapter.push_ari([ARIUpdate(partner_room_type_code=ROOM, start=TODAY, end=TODAY, available=4)])
        assert result.ok
        app.state.sim.faults = FaultSettings(timeout_rate=1.0, timeout_seconds=1.0)
        slow = AgodaAdapter(ChannelConfig(apiKey=KEY, propertyId="90210", endpoint=url), timeout=0.2)
        with pytest.raises(TransientChannelError, match="timeout"):
            await slow.fetch_bookings()
        await adapter.aclose()
        await slow.aclose()

    with running_server(app) as url:
        anyio.run(scenario, url)
