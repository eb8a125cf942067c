"""Contract: what the adapter sends and what the simulator answers validate against Expedia's
published EQC XSDs.

The XSDs are "Copyright Expedia, Inc. All Rights Reserved", so they are not copied into this
repository: they are read from `../shared/reference/partner-schemas/expedia/` next to the
project (for a git worktree, next to its main checkout). Without that folder these tests skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from lxml import etree

from channels.base import ARIUpdate, BookingEvent, BookingRecord, ChannelConfig
from channels.expedia import ExpediaAdapter
from channels.expedia_eqc import build_ar, build_bc, build_br, build_parr
from channels.simulators.catalog import CATALOG
from channels.simulators.common import FaultSettings
from channels.simulators.expedia import create_app

ROOT = Path(__file__).resolve().parents[2]
RELATIVE = Path("shared/reference/partner-schemas/expedia")
MESSAGES = ("AvailRateUpdateRQ", "AvailRateUpdateRS", "BookingRetrievalRQ", "BookingRetrievalRS",
            "BookingConfirmRQ", "BookingConfirmRS", "ProductAvailRateRetrievalRQ", "ProductAvailRateRetrievalRS")


def schema_dir() -> Path | None:
    """`../shared/...` from the project root; a git worktree also looks next to its main checkout."""
    candidates = [ROOT.parent / RELATIVE]
    git = ROOT / ".git"
    if git.is_file():  # worktree: "gitdir: <main>/.git/worktrees/<name>"
        text = git.read_text().strip()
        if text.startswith("gitdir:"):
            main = Path(text.split(":", 1)[1].strip()).parents[2]
            candidates.append(main.parent / RELATIVE)
    return next((c for c in candidates if all((c / f"{m}.xsd").is_file() for m in MESSAGES)), None)


SCHEMAS = schema_dir()
pytestmark = pytest.mark.skipif(SCHEMAS is None, reason=f"Expedia XSDs not found at ../{RELATIVE} (not in the repo: "
                                                        "their licence does not allow copies)")
CAT = CATALOG["expedia"]  # type: ignore[index]
STD, DLX = CAT["room_types"]["STD"], CAT["room_types"]["DLX"]
BAR, NRF = CAT["rate_plans"]["BAR"], CAT["rate_plans"]["NRF"]
TODAY = datetime.now(UTC).date()
CONFIG = ChannelConfig(apiKey="eqc-user", apiSecret="eqc-pass", hotelId=CAT["hotel_id"], endpoint="http://sim")


@pytest.fixture(scope="module")
def schemas() -> dict[str, etree.XMLSchema]:
    assert SCHEMAS is not None
    return {m: etree.XMLSchema(etree.parse(str(SCHEMAS / f"{m}.xsd"))) for m in MESSAGES}


def problems(schemas: dict[str, etree.XMLSchema], body: bytes) -> list[str]:
    root = etree.fromstring(body)
    name = etree.QName(root).localname
    schema = schemas[name]
    if schema.validate(root):
        return []
    return [f"{name}: {e.message}" for e in schema.error_log]


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests to the simulator and keeps every (request body, answer body)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[tuple[bytes, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.exchanges.append((request.content, body))
        return httpx.Response(response.status_code, headers=response.headers, content=body)


def u(start: int, end: int, **kw: object) -> ARIUpdate:
    return ARIUpdate(partner_room_type_code=kw.pop("room", STD), partner_rate_plan_code=kw.pop("plan", BAR),  # type: ignore[arg-type]
                     start=TODAY + timedelta(days=start), end=TODAY + timedelta(days=end), **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------ the published examples


KNOWN_DEVIATIONS = {
    # Added in 2020 ("What Is New": BaseRateType, PaymentMethod, Payment, @cardActivation); the
    # XSD is from 2016. The second also has CardHolder@stateProv "Any province" (XSD: <= 8).
    "BR_RS_virtual_card.xml", "BR_RS_pending_and_retrieved.xml",
    # distributionModel=" ExpediaCollect " padded with spaces.
    "PARR_RS_active_products.xml",
}


def fixtures() -> Iterator[Path]:
    yield from sorted((ROOT / "tests" / "fixtures" / "expedia").glob("*.xml"))


def test_published_examples_against_the_xsds(schemas: dict[str, etree.XMLSchema]) -> None:
    """A check of the schemas and of our fixture list: exactly the known examples deviate."""
    invalid = {path.name for path in fixtures() if problems(schemas, path.read_bytes())}
    assert invalid == KNOWN_DEVIATIONS


# ------------------------------------------------------------ adapter requests


def test_adapter_requests_validate(schemas: dict[str, etree.XMLSchema]) -> None:
    bodies = [
        build_ar("eqc-user", "eqc-pass", "1780042", [
            u(0, 6, available=3, rate=Decimal("99"), currency="EUR", min_los=2, max_los=14, closed_to_arrival=True,
              closed_to_departure=False, weekdays=frozenset({5, 6})),
            u(1, 1, available=0, plan=None),
            u(2, 9, stop_sell=True, plan=None),
            u(3, 4, stop_sell=False, rate=Decimal("120.5"), currency="USD", room=DLX, plan=NRF),
        ]),
        build_br("eqc-user", "eqc-pass", "1780042"),
        build_br("eqc-user", "eqc-pass", None),
        build_br("eqc-user", "eqc-pass", "1780042", booking_id="70000001"),
        build_br("eqc-user", "eqc-pass", "1780042", status="confirmed", days_in_past=5),
        build_bc("eqc-user", "eqc-pass", "1780042", [("70000001", "Book", "INN-70000001"),
                                                     ("70000002", "Cancel", "PMS-9")]),
        build_parr("eqc-user", "eqc-pass", "1780042"),
    ]
    assert [p for body in bodies for p in problems(schemas, body)] == []


# ------------------------------------------------------------ a whole session against the simulator


@pytest.mark.anyio
async def test_every_exchange_with_the_simulator_validates(schemas: dict[str, etree.XMLSchema]) -> None:
    app = create_app(bookings=40, seed=7, credentials={"eqc-user": "eqc-pass"})
    recorder = Recorder(httpx.ASGITransport(app=app))
    async with ExpediaAdapter(CONFIG, transport=recorder) as adapter:
        kinds: set[str] = set()
        groups: dict[str, set[str]] = {}
        for _ in range(20):  # new, modified, cancelled, multi-room bookings; BC in chunks of 10
            page = await adapter.fetch_bookings()
            if not page.bookings:
                break
            kinds |= {b.event.value for b in page.bookings}
            for b in page.bookings:
                if b.group_id:
                    groups.setdefault(b.group_id, set()).add(b.external_id)
            results = await adapter.acknowledge(page.bookings)
            assert all(r.ok for r in results)
        assert kinds == {"new", "modified", "cancelled"}
        assert groups and all(len(ids) >= 2 for ids in groups.values())  # the rooms of one order are linked
        messages = app.state.sim.queue.messages
        only_booked = next(m.booking.booking_id for m in messages
                           if [x.booking.event for x in messages if x.booking.booking_id == m.booking.booking_id] == ["new"])
        assert await adapter.fetch_booking(only_booked) is not None
        ghost = BookingRecord(channel="expedia", external_id="99999999", event=BookingEvent.NEW, status="Book",
                              revision="r", ack_token="Book")
        wrong_type = ghost.model_copy(update={"external_id": only_booked, "ack_token": "Modify"})
        refused = await adapter.acknowledge([ghost, wrong_type])
        assert [(r.ok, (r.error or "")[:5]) for r in refused] == [(False, "10080"), (False, "10100")]
        assert [r.ok for r in await adapter.push_ari([u(0, 3, available=2, rate=Decimal("90"), currency="EUR")])] == [True]
        bad = await adapter.push_ari([u(0, 1, available=1, room="999999"), u(0, 1, rate=Decimal("1"), currency="EUR",
                                                                           plan="777A")])
        assert [r.error_code for r in bad] == ["3203", "3204"]
        app.state.sim.faults = FaultSettings(partial_failure_rate=1.0)
        refused_rates = await adapter.push_ari([u(0, 30, rate=Decimal("100"), currency="EUR")])
        assert refused_rates[0].error_code == "7013" and not refused_rates[0].transient
        app.state.sim.faults = FaultSettings()
        assert (await adapter.validate_mappings([STD], [BAR])).ok
    bad_auth = Recorder(httpx.ASGITransport(app=app))
    async with ExpediaAdapter(CONFIG.model_copy(update={"api_secret": "wrong-pass"}), transport=bad_auth) as adapter:
        with pytest.raises(Exception, match="1001"):
            await adapter.fetch_bookings()
    exchanges = recorder.exchanges + bad_auth.exchanges
    names = {etree.QName(etree.fromstring(answer)).localname for _, answer in exchanges}
    assert names == {"BookingRetrievalRS", "BookingConfirmRS", "AvailRateUpdateRS", "ProductAvailRateRetrievalRS"}
    found = [p for request, answer in exchanges for p in problems(schemas, request) + problems(schemas, answer)]
    assert found == []


@pytest.mark.anyio
async def test_simulator_bc_limit_and_errors_validate(schemas: dict[str, etree.XMLSchema]) -> None:
    """Answers the adapter never provokes (more than 10 confirmations, bad XML) validate too."""
    app = create_app(bookings=2, seed=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        eleven = build_bc("u1234", "p123456", CAT["hotel_id"], [(str(70_000_001 + i), "Book", "X") for i in range(11)])
        answer = (await client.post("/eqc/bc", content=eleven)).content
        assert b'code="3301"' in answer and problems(schemas, answer) == []
        for path in ("/eqc/ar", "/eqc/br", "/eqc/bc", "/eqc/parr"):
            answer = (await client.post(path, content=b"<not-xml")).content
            assert b'code="2002"' in answer and problems(schemas, answer) == [], path


def test_the_shapes_issue_10_found_are_refused(schemas: dict[str, etree.XMLSchema]) -> None:
    """The validation can fail: the simulator's former answers do not pass."""
    old_bc = b'<BookingConfirmRS xmlns="http://www.expediaconnect.com/EQC/BC/2007/09"><Success/></BookingConfirmRS>'
    old_ar = (b'<AvailRateUpdateRS xmlns="http://www.expediaconnect.com/EQC/AR/2011/06"><Success/>'
              b'<Warning code="7013">x</Warning></AvailRateUpdateRS>')
    old_parr = (b'<ProductAvailRateRetrievalRS xmlns="http://www.expediaconnect.com/EQC/PAR/2013/07"><ProductList>'
                b'<Hotel id="1" name="h" city="c"/><RoomType id="2" code="S" name="S" status="Active">'
                b'<RatePlan id="3" code="B" name="B" status="Active" type="Standalone" distributionModel="ExpediaCollect"'
                b' rateAcquisitionType="SellLAR"/></RoomType></ProductList></ProductAvailRateRetrievalRS>')
    for body in (old_bc, old_ar, old_parr):
        assert problems(schemas, body) != []
