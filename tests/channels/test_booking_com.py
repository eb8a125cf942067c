from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from channels.base import (
    ARIUpdate,
    BookingEvent,
    BookingStatus,
    ChannelConfig,
    MalformedPayloadError,
    PermanentChannelError,
    TransientChannelError,
)
from channels.booking_com import BookingComAdapter, parse_bookings
from channels.booking_com_ota import build_avail_notif, parse_outcomes
from channels.registry import get_adapter
from channels.simulators.booking_com import create_app
from channels.simulators.catalog import CATALOG
from channels.simulators.common import FaultSettings
from channels.simulators.server import running_server
from channels.tokens import MemoryTokenStore, TokenRateLimitedError
from channels.xmlsafe import parse_xml

pytestmark = pytest.mark.anyio

CAT = CATALOG["booking.com"]  # type: ignore[index]
STD, DLX = CAT["room_types"]["STD"], CAT["room_types"]["DLX"]
BAR = CAT["rate_plans"]["BAR"]
TODAY = datetime.now(UTC).date()
CONFIG = ChannelConfig(apiKey="machine-1", apiSecret="s3cret", hotelId=CAT["hotel_id"], endpoint="http://sim")


@pytest.fixture
def app() -> FastAPI:
    return create_app(bookings=12, seed=7, credentials={"machine-1": "s3cret"})


@pytest.fixture
async def adapter(app: FastAPI) -> AsyncIterator[BookingComAdapter]:
    a = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app))
    yield a
    await a.aclose()


def sim(app: FastAPI):  # type: ignore[no-untyped-def]
    return app.state.sim


def card_numbers(app: FastAPI) -> set[str]:
    return {m.booking.card.number for m in sim(app).queue.messages}


# ------------------------------------------------------------ fixtures (recorded payloads)


def test_fixture_reservations_parse_and_mask(fixtures_dir: Path) -> None:
    body = (fixtures_dir / "booking.com" / "OTA_HotelResNotifRQ.xml").read_bytes()
    first, second = parse_bookings(body)
    assert first.external_id == "3816204957" and first.event is BookingEvent.NEW and first.status == "Commit"
    assert first.revision == "2026-11-20T09:12:44Z"
    assert (first.check_in, first.check_out) == (date(2027, 2, 12), date(2027, 2, 14))
    assert first.guest.first_name == "Zoë" and first.guest.last_name == "Müller" and first.guest.country == "DE"
    fam, std = first.rooms
    assert (fam.adults, fam.children, fam.child_ages) == (2, 2, [4, 9])
    assert fam.nightly_rates == {date(2027, 2, 12): Decimal("190.80"), date(2027, 2, 13): Decimal("190.80")}
    # A two-night Rate element (ExpireDate exclusive) expands to both nights.
    assert std.nightly_rates == {date(2027, 2, 12): Decimal("96.12"), date(2027, 2, 13): Decimal("96.12")}
    assert first.total_amount == Decimal("573.84") and first.currency == "EUR"
    assert first.card_last4 == "1111" and second.card_last4 == "0005"
    assert second.guest.first_name == "太郎" and second.guest.last_name == "山田"
    for record in (first, second):
        raw = json.dumps(record.raw_payload, ensure_ascii=False)
        assert "4111111111111111" not in raw and "378282246310005" not in raw
        assert "SeriesCode" not in raw and "737" not in raw and "4321" not in raw
        assert "4012 8888 8888 1881" not in raw  # typed into a comment by the guest
    assert "XXXXXXXXXXXX1881" in (first.comments or "")


def test_fixture_modifications_and_cancel(fixtures_dir: Path) -> None:
    body = (fixtures_dir / "booking.com" / "OTA_HotelResModifyNotifRQ.xml").read_bytes()
    modify, cancel = parse_bookings(body)
    assert modify.event is BookingEvent.MODIFIED and modify.check_out == date(2027, 2, 15)
    assert len(modify.rooms[0].nightly_rates) == 3
    assert cancel.event is BookingEvent.CANCELLED and cancel.check_in is None and cancel.rooms == []
    assert modify.ack_token == "OTA_HotelResModifyNotif"


def test_fixture_responses(fixtures_dir: Path) -> None:
    ok, outcomes = parse_outcomes(parse_xml((fixtures_dir / "booking.com" / "OTA_HotelAvailNotifRS_warnings.xml").read_bytes(), "booking.com"))
    assert ok and [(o.code, o.record_id, o.failed) for o in outcomes] == [
        ("ROOM_ID_INVALID", "2", True), ("WARN_DUPLICATE_DATES", None, False)]
    ok, outcomes = parse_outcomes(parse_xml((fixtures_dir / "booking.com" / "OTA_HotelRateAmountNotifRS_errors.xml").read_bytes(), "booking.com"))
    assert not ok and outcomes[0].code == "NOT_A_VALID_DATE" and outcomes[0].failed


def test_broken_reservation_reported_not_half_parsed() -> None:
    body = b'<OTA_HotelResNotifRQ xmlns="http://www.opentravel.org/OTA/2003/05"><HotelReservations><HotelReservation ResStatus="Book"><UniqueID Type="14" ID="1"/><RoomStays><RoomStay><TimeSpan Start="not-a-date"/></RoomStay></RoomStays></HotelReservation></HotelReservations></OTA_HotelResNotifRQ>'
    with pytest.raises(MalformedPayloadError, match="booking.com: reservation 1"):
        parse_bookings(body)
    errors: list[str] = []
    assert parse_bookings(body, errors) == [] and len(errors) == 1


# ------------------------------------------------------------ round trips against the simulator


async def test_fetch_ack_drains_queue_in_order(app: FastAPI, adapter: BookingComAdapter) -> None:
    total = len(sim(app).queue.messages)
    seen: list[tuple[str, str]] = []
    for _ in range(10):
        page = await adapter.fetch_bookings()
        if not page.bookings:
            break
        assert not page.errors
        acks = await adapter.acknowledge(page.bookings)
        assert all(a.ok for a in acks), acks
        seen.extend((b.external_id, b.revision) for b in page.bookings)
    assert len(seen) == total == len(set(seen))
    assert sim(app).queue.stats()["pending"] == 0
    assert adapter.token_exchanges == 1  # one token for all of it


async def test_records_are_masked_and_complete(app: FastAPI, adapter: BookingComAdapter) -> None:
    page = await adapter.fetch_bookings()
    numbers = card_numbers(app)
    for record in page.bookings:
        raw = record.model_dump_json()
        assert not any(n in raw for n in numbers)
        assert "SeriesCode" not in raw
        assert record.card_last4 and record.hotel_code == CAT["hotel_id"]
        assert record.rooms and all(r.nightly_rates for r in record.rooms)
    assert {b.event for b in page.bookings} == {BookingEvent.NEW}  # modifications wait for the ack


async def test_unacked_reservations_are_redelivered(adapter: BookingComAdapter) -> None:
    first = await adapter.fetch_bookings()
    again = await adapter.fetch_bookings()
    assert [b.external_id for b in first.bookings] == [b.external_id for b in again.bookings]
    await adapter.acknowledge(first.bookings[:1])
    third = await adapter.fetch_bookings()
    assert first.bookings[0].external_id not in {b.external_id for b in third.bookings if b.event is BookingEvent.NEW}


async def test_ack_of_unknown_reservation_fails_per_booking(adapter: BookingComAdapter) -> None:
    page = await adapter.fetch_bookings()
    ghost = page.bookings[0].model_copy(update={"external_id": "999"})
    results = await adapter.acknowledge([page.bookings[0], ghost])
    assert [r.ok for r in results] == [True, False]
    assert "not found" in (results[1].error or "")
    only_ghost = await adapter.acknowledge([ghost])
    assert not only_ghost[0].ok  # the simulator answers 404


async def test_fetch_booking_by_id(adapter: BookingComAdapter) -> None:
    page = await adapter.fetch_bookings()
    target = page.bookings[-1]
    found = await adapter.fetch_booking(target.external_id)
    assert found is not None and found.external_id == target.external_id
    assert await adapter.fetch_booking("nope") is None


async def test_token_cached_and_refreshed_once_on_401(app: FastAPI, adapter: BookingComAdapter) -> None:
    for _ in range(3):
        await adapter.fetch_bookings()
    assert sim(app).tokens.exchanges == 1
    sim(app).tokens.revoke_all()  # the partner forgets the token: next call gets 401
    await adapter.fetch_bookings()
    assert sim(app).tokens.exchanges == 2
    await adapter.fetch_bookings()
    assert sim(app).tokens.exchanges == 2 and adapter.token_exchanges == 2


async def test_token_shared_through_a_store(app: FastAPI) -> None:
    """Adapters sharing a token store (the database in production) share the token; the JWT
    never shows in reprs."""
    store = MemoryTokenStore()
    first = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app), token_store=store)
    await first.fetch_bookings()
    await first.aclose()
    (stored,) = store.rows.values()
    assert stored.value and stored.expires_at and stored.expires_at > time.time() + 3000  # wall clock
    assert stored.value not in repr(first.tokens) + repr(stored) + repr(first._client.auth)
    second = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app))
    second.use_token_store(store)
    await second.fetch_bookings()
    await second.aclose()
    assert sim(app).tokens.exchanges == 1 and second.token_exchanges == 0


async def test_expired_stored_token_exchanges_again(app: FastAPI) -> None:
    store = MemoryTokenStore()
    first = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app), token_store=store)
    await first.fetch_bookings()
    await first.aclose()
    (key,) = store.rows
    store.rows[key] = replace(store.rows[key], expires_at=time.time() - 1)
    adapter = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app), token_store=store)
    await adapter.fetch_bookings()
    await adapter.aclose()
    assert adapter.token_exchanges == 1 and sim(app).tokens.exchanges == 2
    assert store.rows[key].exchange_count == 2


async def test_bad_credentials_are_permanent(app: FastAPI) -> None:
    bad = BookingComAdapter(CONFIG.model_copy(update={"api_secret": "wrong"}), transport=httpx.ASGITransport(app=app))
    with pytest.raises(PermanentChannelError) as err:
        await bad.fetch_bookings()
    assert err.value.status_code == 401
    assert "wrong" not in str(err.value)


async def test_wrong_hotel_is_403(app: FastAPI) -> None:
    other = BookingComAdapter(CONFIG.model_copy(update={"hotel_id": "7654321"}), transport=httpx.ASGITransport(app=app))
    with pytest.raises(PermanentChannelError) as err:
        await other.fetch_bookings()
    assert err.value.status_code == 403
    with pytest.raises(PermanentChannelError) as err:
        await other.push_ari([ARIUpdate(partner_room_type_code=STD, start=TODAY, end=TODAY, available=1)])
    assert err.value.status_code == 403


def u(start: int, end: int, **kw: object) -> ARIUpdate:
    return ARIUpdate(partner_room_type_code=kw.pop("room", STD), partner_rate_plan_code=kw.pop("plan", BAR),  # type: ignore[arg-type]
                     start=TODAY + timedelta(days=start), end=TODAY + timedelta(days=end), **kw)  # type: ignore[arg-type]


async def test_push_ari_round_trip(app: FastAPI, adapter: BookingComAdapter) -> None:
    updates = [
        u(0, 9, available=4, rate=Decimal("120.00"), currency="EUR", min_los=2),
        u(10, 20, stop_sell=True, closed_to_arrival=True),
        u(0, 13, rate=Decimal("150.00"), currency="EUR", weekdays=frozenset({5, 6}), room=DLX),
    ]
    results = await adapter.push_ari(updates)
    assert [r.ok for r in results] == [True, True, True]
    cal = sim(app).ari.calendar
    std = cal[f"{STD}/{BAR}"]
    day0 = std[TODAY.isoformat()]
    assert day0 == {"available": 4, "rate": "120.00", "currency": "EUR", "min_los": 2}
    assert std[(TODAY + timedelta(days=15)).isoformat()] == {"stop_sell": True, "closed_to_arrival": True}
    dlx = cal[f"{DLX}/{BAR}"]
    weekend = {d for d in dlx}
    expected = {(TODAY + timedelta(days=i)).isoformat() for i in range(14) if (TODAY + timedelta(days=i)).weekday() >= 5}
    assert weekend == expected


async def test_push_ari_splits_about_a_month_per_request(app: FastAPI, adapter: BookingComAdapter) -> None:
    results = await adapter.push_ari([u(0, 364, available=3)])
    assert results[0].ok
    calls = sim(app).calls["/hotels/ota/OTA_HotelAvailNotif"]
    assert 12 <= calls <= 13
    assert all(len(list(_days(e))) <= 31 for e in sim(app).ari.log)
    assert len(sim(app).ari.calendar[f"{STD}/{BAR}"]) == 365


def _days(entry: dict[str, object]):  # type: ignore[no-untyped-def]
    start, end = date.fromisoformat(str(entry["start"])), date.fromisoformat(str(entry["end"]))
    return range((end - start).days + 1)


async def test_empty_push_sends_nothing(app: FastAPI, adapter: BookingComAdapter) -> None:
    assert await adapter.push_ari([]) == []
    assert not sim(app).calls


async def test_partial_failure_per_update(app: FastAPI, adapter: BookingComAdapter) -> None:
    results = await adapter.push_ari([u(0, 3, available=2), u(0, 3, available=2, room="999"), u(5, 6, available=1)])
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error_code == "ROOM_ID_INVALID" and not results[1].transient
    assert "999/" + BAR not in sim(app).ari.calendar


async def test_all_failed_is_400_with_per_update_errors(adapter: BookingComAdapter) -> None:
    results = await adapter.push_ari([u(0, 3, available=2, room="998"), u(0, 3, available=2, room="999")])
    assert [r.error_code for r in results] == ["ROOM_ID_INVALID", "ROOM_ID_INVALID"]


async def test_past_dates_rejected_by_partner_and_clipped_by_adapter() -> None:
    # The simulator's clock runs 30 days ahead, so "today" is 30 days in its past.
    app = create_app(bookings=0, today=TODAY + timedelta(days=30))
    a = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app))
    results = await a.push_ari([u(0, 3, available=1), u(40, 41, available=1)])
    assert results[0].error_code == "NOT_A_VALID_DATE" and results[1].ok
    # And the adapter never sends what is already more than a day in the past.
    sent = app.state.sim.calls["/hotels/ota/OTA_HotelAvailNotif"]
    past = await a.push_ari([u(-20, -10, available=1)])
    assert past[0].error_code == "NOT_A_VALID_DATE"
    assert app.state.sim.calls["/hotels/ota/OTA_HotelAvailNotif"] == sent


async def test_update_booking_status_not_supported(adapter: BookingComAdapter) -> None:
    result = await adapter.update_booking_status("1", BookingStatus.NO_SHOW)
    assert not result.ok and result.error_code == "NOT_SUPPORTED"


async def test_registry_builds_adapter(app: FastAPI) -> None:
    a = get_adapter("booking.com", CONFIG, transport=httpx.ASGITransport(app=app))
    assert isinstance(a, BookingComAdapter)
    assert (await a.fetch_bookings()).bookings
    await a.aclose()


# ------------------------------------------------------------ faults


async def test_fault_5xx_is_transient(app: FastAPI, adapter: BookingComAdapter) -> None:
    await adapter.fetch_bookings()  # token first, so the fault hits the API call
    sim(app).faults = FaultSettings(error_rate=1.0)
    with pytest.raises(TransientChannelError) as err:
        await adapter.fetch_bookings()
    assert err.value.status_code == 503


async def test_fault_429_has_retry_after(app: FastAPI, adapter: BookingComAdapter) -> None:
    sim(app).faults = FaultSettings(rate_limit_rate=1.0, retry_after_seconds=9)
    with pytest.raises(TransientChannelError) as err:
        await adapter.push_ari([u(0, 1, available=1)])
    assert err.value.status_code == 429 and err.value.retry_after == 9.0


async def test_fault_malformed_body(app: FastAPI, adapter: BookingComAdapter) -> None:
    await adapter.fetch_bookings()
    sim(app).faults = FaultSettings(malformed_rate=1.0)
    with pytest.raises(MalformedPayloadError, match="booking.com"):
        await adapter.fetch_bookings()


async def test_fault_partial_ari_failure(app: FastAPI, adapter: BookingComAdapter) -> None:
    sim(app).faults = FaultSettings(partial_failure_rate=0.5)
    updates = [u(i * 2, i * 2, available=i) for i in range(12)]
    results = await adapter.push_ari(updates)
    failed = [r for r in results if not r.ok]
    assert 0 < len(failed) < len(results)
    assert all(r.transient and r.error_code == "SIMULATED_PARTIAL_FAILURE" for r in failed)
    cal = sim(app).ari.calendar[f"{STD}/{BAR}"]
    for r in results:
        assert r.update is not None
        assert (r.update.start.isoformat() in cal) is r.ok
    # Retrying only the failures completes the calendar.
    sim(app).faults = FaultSettings()
    retry = await adapter.push_ari([r.update for r in failed if r.update])
    assert all(r.ok for r in retry) and len(cal) == 12


async def test_fault_duplicates_redelivered(app: FastAPI, adapter: BookingComAdapter) -> None:
    page = await adapter.fetch_bookings()
    await adapter.acknowledge(page.bookings)
    sim(app).faults = FaultSettings(duplicate_rate=1.0)
    again = await adapter.fetch_bookings()
    acked = {(b.external_id, b.revision) for b in page.bookings}
    assert acked <= {(b.external_id, b.revision) for b in again.bookings}
    assert all(r.ok for r in await adapter.acknowledge(again.bookings))  # re-acking is harmless


async def test_token_exchange_limit_is_rate_limited(app: FastAPI) -> None:
    # Adapters with their own (memory) token stores: each exchanges; the 31st in the hour gets 429.
    for _ in range(30):
        fresh = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app))
        await fresh.tokens.bearer()
    late = BookingComAdapter(CONFIG, transport=httpx.ASGITransport(app=app))
    with pytest.raises(TokenRateLimitedError) as err:
        await late.tokens.bearer()
    assert err.value.status_code == 429 and err.value.transient and err.value.retry_after == 60
    assert sim(app).tokens.exchanges == 30 and sim(app).tokens.refused == 1
    # Until Retry-After has passed, the same adapter fails at once without asking the partner.
    with pytest.raises(TokenRateLimitedError):
        await late.fetch_bookings()
    assert sim(app).tokens.refused == 1 and sim(app).calls["/token-based-authentication/exchange"] == 31


# ------------------------------------------------------------ over real HTTP


async def test_loopback_round_trip_and_timeout() -> None:
    app = create_app(bookings=5, seed=3)
    with running_server(app) as base_url:
        config = CONFIG.model_copy(update={"endpoint": base_url})
        async with BookingComAdapter(config) as adapter:
            page = await adapter.fetch_bookings()
            assert page.bookings
            assert all(a.ok for a in await adapter.acknowledge(page.bookings))
            assert (await adapter.push_ari([u(0, 2, available=3, rate=Decimal("99.00"), currency="EUR")]))[0].ok
            assert app.state.sim.queue.stats()["acked"] == len(page.bookings)
        async with BookingComAdapter(config, timeout=httpx.Timeout(0.3)) as impatient:
            await impatient.fetch_bookings()
            app.state.sim.faults = FaultSettings(timeout_rate=1.0, timeout_seconds=0.8)
            with pytest.raises(TransientChannelError, match="timeout"):
                await impatient.fetch_bookings()
            app.state.sim.faults = FaultSettings()


def test_build_avail_notif_shape() -> None:
    body = build_avail_notif("1", [(1, u(0, 6, available=2, min_los=3, weekdays=frozenset({0})))])
    root = parse_xml(body, "t")
    ctl = next(root.iter("{http://www.opentravel.org/OTA/2003/05}StatusApplicationControl"))
    assert ctl.get("Mon") == "true" and ctl.get("Sun") == "false" and ctl.get("InvTypeCode") == STD
