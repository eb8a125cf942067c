from __future__ import annotations

from collections.abc import AsyncIterator
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
from channels.expedia import ExpediaAdapter
from channels.expedia_eqc import build_ar
from channels.registry import get_adapter
from channels.simulators.catalog import CATALOG
from channels.simulators.common import FaultSettings
from channels.simulators.expedia import INACTIVE_ROOM, create_app
from channels.simulators.server import running_server
from channels.xmlsafe import parse_xml
from tests.channels.gates import FailingConfirms

pytestmark = pytest.mark.anyio

CAT = CATALOG["expedia"]  # type: ignore[index]
STD, DLX = CAT["room_types"]["STD"], CAT["room_types"]["DLX"]
BAR, NRF = CAT["rate_plans"]["BAR"], CAT["rate_plans"]["NRF"]
TODAY = datetime.now(UTC).date()
CONFIG = ChannelConfig(apiKey="eqc-user", apiSecret="eqc-pass", hotelId=CAT["hotel_id"], endpoint="http://sim")


@pytest.fixture
def app() -> FastAPI:
    return create_app(bookings=15, seed=11, credentials={"eqc-user": "eqc-pass"})


@pytest.fixture
async def adapter(app: FastAPI) -> AsyncIterator[ExpediaAdapter]:
    a = ExpediaAdapter(CONFIG, transport=httpx.ASGITransport(app=app))
    yield a
    await a.aclose()


def fixture(fixtures_dir: Path, name: str) -> bytes:
    return (fixtures_dir / "expedia" / name).read_bytes()


def u(start: int, end: int, **kw: object) -> ARIUpdate:
    return ARIUpdate(partner_room_type_code=kw.pop("room", STD), partner_rate_plan_code=kw.pop("plan", BAR),  # type: ignore[arg-type]
                     start=TODAY + timedelta(days=start), end=TODAY + timedelta(days=end), **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------ request shapes


def test_build_ar_shape() -> None:
    body = build_ar("u", "p", "1", [u(0, 6, available=3, rate=Decimal("99"), currency="EUR", min_los=2,
                                      closed_to_arrival=True, weekdays=frozenset({5, 6}))])
    root = parse_xml(body, "t")
    q = "{http://www.expediaconnect.com/EQC/AR/2011/06}"
    rng = root.find(f"{q}AvailRateUpdate/{q}DateRange")
    assert rng is not None and rng.get("sat") == "true" and rng.get("mon") == "false"
    assert root.find(f"{q}Authentication").get("password") == "p"  # type: ignore[union-attr]
    plan = root.find(f".//{q}RatePlan")
    assert plan is not None and plan.find(f"{q}Rate/{q}PerDay").get("rate") == "99.00"  # type: ignore[union-attr]
    assert plan.find(f"{q}Restrictions").get("closedToArrival") == "true"  # type: ignore[union-attr]


# ------------------------------------------------------------ round trips


async def test_retrieve_confirm_in_order(app: FastAPI, adapter: ExpediaAdapter) -> None:
    sim = app.state.sim
    total = len(sim.queue.messages)
    seen: list[tuple[str, str, str]] = []
    for _ in range(10):
        page = await adapter.fetch_bookings()
        if not page.bookings:
            break
        ids = [b.external_id for b in page.bookings]
        assert len(ids) == len(set(ids))  # one transaction per booking at a time
        assert all(r.ok for r in await adapter.acknowledge(page.bookings))
        seen.extend((b.external_id, b.ack_token or "", b.revision) for b in page.bookings)
    assert len(seen) == total
    order: dict[str, list[str]] = {}
    for booking_id, kind, _ in seen:
        order.setdefault(booking_id, []).append(kind)
    for kinds in order.values():
        assert kinds[0] == "Book" and kinds == sorted(kinds, key=["Book", "Modify", "Cancel"].index)
    assert any(len(k) > 1 for k in order.values())


async def test_unconfirmed_are_redelivered_and_masked(app: FastAPI, adapter: ExpediaAdapter) -> None:
    first = await adapter.fetch_bookings()
    again = await adapter.fetch_bookings()
    assert [b.external_id for b in first.bookings] == [b.external_id for b in again.bookings]
    numbers = {m.booking.card.number for m in app.state.sim.queue.messages}
    for record in first.bookings:
        dumped = record.model_dump_json()
        assert not any(n in dumped for n in numbers) and "seriesCode" not in dumped
        assert record.card_last4 and record.hotel_code == CAT["hotel_id"]


async def test_cancel_has_no_rooms(app: FastAPI, adapter: ExpediaAdapter) -> None:
    cancels = []
    for _ in range(10):
        page = await adapter.fetch_bookings()
        if not page.bookings:
            break
        cancels += [b for b in page.bookings if b.event is BookingEvent.CANCELLED]
        await adapter.acknowledge(page.bookings)
    assert cancels and all(c.rooms == [] and c.check_in is None for c in cancels)


async def test_drains_125_per_response() -> None:
    app = create_app(bookings=300, seed=5)
    adapter = ExpediaAdapter(CONFIG, transport=httpx.ASGITransport(app=app))
    total = len(app.state.sim.queue.messages)
    pages: list[tuple[int, bool]] = []
    for _ in range(20):
        page = await adapter.fetch_bookings()
        pages.append((len(page.bookings), page.has_more))
        if not page.bookings:
            break
        assert all(r.ok for r in await adapter.acknowledge(page.bookings))
    assert pages[0] == (125, True) and pages[1] == (125, True)
    assert all(more == (n == 125) for n, more in pages)
    assert pages[-1] == (0, False)
    assert sum(n for n, _ in pages) == total and app.state.sim.queue.stats()["pending"] == 0


async def test_fetch_booking_by_id(adapter: ExpediaAdapter) -> None:
    page = await adapter.fetch_bookings()
    target = page.bookings[3]
    found = await adapter.fetch_booking(target.external_id)
    assert found is not None and found.external_id == target.external_id and found.event is target.event
    assert await adapter.fetch_booking("1") is None


async def test_confirm_unknown_booking_fails_only_that_one(adapter: ExpediaAdapter) -> None:
    page = await adapter.fetch_bookings()
    ghost = page.bookings[0].model_copy(update={"external_id": "99999999"})
    results = await adapter.acknowledge([page.bookings[0], ghost], confirm_numbers={page.bookings[0].external_id: "PMS-1"})
    assert [r.ok for r in results] == [True, False] and (results[1].error or "").startswith("10080: Update refused.")
    alone = await adapter.acknowledge([ghost])
    assert not alone[0].ok


async def test_bad_credentials_and_foreign_hotel(app: FastAPI) -> None:
    bad = ExpediaAdapter(CONFIG.model_copy(update={"api_secret": "nope"}), transport=httpx.ASGITransport(app=app))
    with pytest.raises(PermanentChannelError) as err:
        await bad.fetch_bookings()
    assert err.value.code == "1001" and "nope" not in str(err.value)
    other = ExpediaAdapter(CONFIG.model_copy(update={"hotel_id": "1"}), transport=httpx.ASGITransport(app=app))
    with pytest.raises(PermanentChannelError) as err:
        await other.push_ari([u(0, 1, available=1)])
    assert err.value.code == "3202"


async def test_push_ari_round_trip(app: FastAPI, adapter: ExpediaAdapter) -> None:
    updates = [
        u(0, 9, available=5, rate=Decimal("110.00"), currency="EUR", min_los=2, closed_to_departure=True),
        u(0, 13, rate=Decimal("140.00"), currency="EUR", weekdays=frozenset({4, 5}), room=DLX, plan=NRF),
        u(20, 25, stop_sell=True, plan=None),
    ]
    results = await adapter.push_ari(updates)
    assert all(r.ok for r in results), results
    cal = app.state.sim.ari.calendar
    assert cal[f"{STD}/{BAR}"][TODAY.isoformat()] == {
        "available": 5, "rate": "110.00", "currency": "EUR", "min_los": 2, "closed_to_departure": True}
    fri_sat = {(TODAY + timedelta(days=i)).isoformat() for i in range(14) if (TODAY + timedelta(days=i)).weekday() in (4, 5)}
    assert set(cal[f"{DLX}/{NRF}"]) == fri_sat
    assert cal[f"{STD}/*"][(TODAY + timedelta(days=22)).isoformat()] == {"stop_sell": True}
    assert app.state.sim.calls["/eqc/ar"] == 1  # several AvailRateUpdate in one request


async def test_3203_3204_mapped_per_update_and_atomic(app: FastAPI, adapter: ExpediaAdapter) -> None:
    results = await adapter.push_ari([u(0, 1, available=1), u(0, 1, available=1, room="999999"),
                                      u(0, 1, rate=Decimal("1"), currency="EUR", plan="777A")])
    assert [r.error_code for r in results] == ["NOT_APPLIED", "3203", "3204"]
    assert [r.transient for r in results] == [True, False, False]
    assert not app.state.sim.ari.calendar  # nothing applied
    retry = await adapter.push_ari([r.update for r in results if r.transient and r.update])
    assert retry[0].ok


async def test_splits_by_max_updates(app: FastAPI, adapter: ExpediaAdapter) -> None:
    adapter.max_updates_per_request = 4
    results = await adapter.push_ari([u(i, i, available=i) for i in range(10)])
    assert all(r.ok for r in results) and app.state.sim.calls["/eqc/ar"] == 3


async def test_validate_mappings(adapter: ExpediaAdapter) -> None:
    check = await adapter.validate_mappings(list(CAT["room_types"].values()), list(CAT["rate_plans"].values()))
    assert check.ok
    check = await adapter.validate_mappings([STD, "123", INACTIVE_ROOM], [BAR, "9A"])
    assert not check.ok and check.unknown_room_types == ["123"] and check.unknown_rate_plans == ["9A"]
    assert check.inactive_room_types == [INACTIVE_ROOM]


async def test_registry_and_status(app: FastAPI) -> None:
    a = get_adapter("expedia", CONFIG, transport=httpx.ASGITransport(app=app))
    assert isinstance(a, ExpediaAdapter)
    result = await a.update_booking_status("1", BookingStatus.CHECKED_IN)
    assert result.error_code == "NOT_SUPPORTED" and not result.ok


# ------------------------------------------------------------ faults


async def test_fault_5xx_and_429(app: FastAPI, adapter: ExpediaAdapter) -> None:
    app.state.sim.faults = FaultSettings(error_rate=1.0)
    with pytest.raises(TransientChannelError) as err:
        await adapter.fetch_bookings()
    assert err.value.status_code == 503
    app.state.sim.faults = FaultSettings(rate_limit_rate=1.0, retry_after_seconds=4)
    with pytest.raises(TransientChannelError) as err:
        await adapter.push_ari([u(0, 0, available=1)])
    assert err.value.retry_after == 4.0


async def test_fault_malformed(app: FastAPI, adapter: ExpediaAdapter) -> None:
    app.state.sim.faults = FaultSettings(malformed_rate=1.0)
    with pytest.raises(MalformedPayloadError, match="expedia"):
        await adapter.fetch_bookings()


async def test_fault_partial_failure_only_failed_ones(app: FastAPI, adapter: ExpediaAdapter) -> None:
    app.state.sim.faults = FaultSettings(partial_failure_rate=0.5)
    updates = [u(i * 2, i * 2 + 1, rate=Decimal(100 + i), currency="EUR") for i in range(12)]
    results = await adapter.push_ari(updates)
    failed = [r for r in results if not r.ok]
    assert 0 < len(failed) < len(results) and all(r.error_code == "7013" for r in failed)
    cal = app.state.sim.ari.calendar[f"{STD}/{BAR}"]
    for r in results:
        assert r.update is not None and (r.update.start.isoformat() in cal) is r.ok


async def test_fault_duplicates(app: FastAPI, adapter: ExpediaAdapter) -> None:
    page = await adapter.fetch_bookings()
    await adapter.acknowledge(page.bookings)
    app.state.sim.faults = FaultSettings(duplicate_rate=1.0)
    again = await adapter.fetch_bookings()
    keys = {(b.external_id, b.revision) for b in again.bookings}
    assert {(b.external_id, b.revision) for b in page.bookings} <= keys
    assert all(r.ok for r in await adapter.acknowledge(again.bookings))


async def test_loopback_round_trip_and_timeout() -> None:
    app = create_app(bookings=4, seed=2)
    with running_server(app) as base_url:
        config = CONFIG.model_copy(update={"endpoint": base_url})
        async with ExpediaAdapter(config) as adapter:
            page = await adapter.fetch_bookings()
            assert page.bookings and all(r.ok for r in await adapter.acknowledge(page.bookings))
            assert (await adapter.push_ari([u(0, 3, available=2)]))[0].ok
            assert (await adapter.validate_mappings([STD], [BAR])).ok
            assert app.state.sim.ari.calendar[f"{STD}/{BAR}"]
        async with ExpediaAdapter(config, timeout=0.3) as impatient:
            app.state.sim.faults = FaultSettings(timeout_rate=1.0, timeout_seconds=0.8)
            with pytest.raises(TransientChannelError, match="timeout"):
                await impatient.fetch_bookings()
            app.state.sim.faults = FaultSettings()


async def test_requests_stay_within_5000_product_days(app: FastAPI, adapter: ExpediaAdapter) -> None:
    # 20 updates of 366 days = 7320 product-days: EQC refuses more than 5000 per message (3107).
    updates = [u(0, 365, available=i % 5, room=STD if i % 2 else DLX, plan=BAR if i % 4 < 2 else NRF) for i in range(20)]
    results = await adapter.push_ari(updates)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert app.state.sim.calls["/eqc/ar"] == 2


async def test_simulator_refuses_more_than_5000_product_days(app: FastAPI, adapter: ExpediaAdapter) -> None:
    adapter.max_product_days_per_request = 10_000
    results = await adapter.push_ari([u(0, 365, available=1, room=r, plan=p) for r in (STD, DLX) for p in (BAR, NRF)]
                                     * 4)
    assert {r.error_code for r in results} == {"3107"} and not any(r.transient for r in results)
    assert not app.state.sim.ari.calendar


def eqc_answer(body: bytes) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, content=body, headers={"Content-Type": "text/xml"}))


AR_RS = b'<AvailRateUpdateRS xmlns="http://www.expediaconnect.com/EQC/AR/2007/02">%s</AvailRateUpdateRS>'


async def test_error_codes_transient_or_permanent_as_documented() -> None:
    # 4000 "Internal system error, please try again": the call is retried later.
    async with ExpediaAdapter(CONFIG, transport=eqc_answer(
            AR_RS % b'<Error code="4000">Internal system error, please try again in a few minutes.</Error>')) as a:
        with pytest.raises(TransientChannelError) as err:
            await a.push_ari([u(0, 1, available=1)])
        assert err.value.code == "4000"
    # 4101 "Do not retry this request".
    async with ExpediaAdapter(CONFIG, transport=eqc_answer(
            AR_RS % b'<Error code="4101">Internal System Error. Do not retry this request.</Error>')) as a:
        with pytest.raises(PermanentChannelError):
            await a.push_ari([u(0, 1, available=1)])
    # 3103 names no update: every update of the request is refused, none re-sent forever.
    async with ExpediaAdapter(CONFIG, transport=eqc_answer(AR_RS % b'<Error code="3103">Currency code mismatch.</Error>')) as a:
        results = await a.push_ari([u(0, 1, rate=Decimal("5"), currency="USD"), u(2, 3, available=1)])
    assert [(r.ok, r.error_code, r.transient) for r in results] == [(False, "3103", False), (False, "3103", False)]


async def test_twenty_warnings_of_a_code_leave_the_rest_unconfirmed() -> None:
    # "Maximum number of occurrences per warning code: 20": update 21 may have been refused too.
    warnings = b"".join(b'<Warning code="7013">[Room Type ID %s; Rate Plan ID %s; Stay Date %s] out of threshold.</Warning>'
                        % (STD.encode(), BAR.encode(), (TODAY + timedelta(days=i)).isoformat().encode()) for i in range(20))
    async with ExpediaAdapter(CONFIG, transport=eqc_answer(AR_RS % (b"<Success>" + warnings + b"</Success>"))) as a:
        results = await a.push_ari([u(i, i, rate=Decimal("1"), currency="EUR") for i in range(21)])
    assert [r.error_code for r in results] == ["7013"] * 20 + ["UNCONFIRMED"]
    assert [r.transient for r in results] == [False] * 20 + [True]


async def test_confirmations_go_ten_per_request(app: FastAPI, adapter: ExpediaAdapter) -> None:
    page = await adapter.fetch_bookings()
    assert len(page.bookings) > 10
    results = await adapter.acknowledge(page.bookings)
    assert all(r.ok for r in results)
    assert app.state.sim.calls["/eqc/bc"] == -(-len(page.bookings) // 10)


def test_warning_texts_with_and_without_colons_and_bc_fallbacks() -> None:
    from channels.expedia_eqc import Issue, interpret_bc, stay_refs

    day = date(2027, 1, 5)
    assert stay_refs("[Room Type ID: 200101; Rate Plan ID: 2001010A; Stay Date: 2027-01-05] x") == [
        ("200101", "2001010A", day)]
    # A room-level refusal (e.g. 7013 on inventory) names no rate plan.
    assert stay_refs("[Room Type ID 200101; Stay Date 2027-01-05] Total Inventory Available cannot be less") == [
        ("200101", None, day)]
    # No @bookingID: the id in the text names the booking (whole number only).
    refused = interpret_bc(["123", "1234"], True, [Issue("10080", "Update refused for booking 1234.", False)])
    assert set(refused) == {"1234"}
    # 10105 "please try again ... for this booking": transient; a warning naming nobody refuses all.
    refused = interpret_bc(["1", "2"], True, [Issue("10105", "Update refused. Internal system error", False, "2", "Book"),
                                              Issue("10000", "something", False)])
    assert refused["2"] == ("10105: Update refused. Internal system error", True) and not refused["1"][1]
    assert interpret_bc(["1"], False, []) == {"1": ("confirmation refused (no Success in the answer)", False)}


# ------------------------------------------------------------ acknowledgements that half fail


async def test_a_failed_confirm_call_keeps_the_verdicts_of_the_calls_before_it(app: FastAPI) -> None:
    """Bookings go out as BC requests of 10: when the second request fails, the first ten are
    confirmed (they were, at Expedia) and the others say they may be sent again; nothing
    raises and loses the first ten."""
    adapter = ExpediaAdapter(CONFIG, transport=httpx.ASGITransport(app=FailingConfirms(app)))
    try:
        page = await adapter.fetch_bookings()
        assert len(page.bookings) > 10
        verdicts = await adapter.acknowledge(page.bookings)
    finally:
        await adapter.aclose()
    assert [v.ok for v in verdicts] == [True] * 10 + [False] * (len(verdicts) - 10)
    assert all(v.retry and "503" in (v.error or "") for v in verdicts[10:])
    confirmed = {m.booking.booking_id for m in app.state.sim.queue.messages if m.acked}
    assert confirmed == {b.external_id for b in page.bookings[:10]}
