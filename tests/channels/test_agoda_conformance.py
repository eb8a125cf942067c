"""Agoda has no published XSD: the simulator's answers and our requests are checked against
the structure of Agoda's published examples (tests/fixtures/agoda/, sources in
tests/fixtures/README.md). A shape is {element path: attribute names}; every element and
attribute we emit must appear in the documented example, and every one the example has
must appear in ours unless it is listed as optional here (with the reason).

Also: the adapter's reading of Agoda's published SetARI answers (200, 207 PartialSuccess,
400 total failure, and the 207 an account without the partial-success setting gets).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from lxml import etree

from channels import agoda_wire as wire
from channels.agoda import AgodaAdapter
from channels.base import ARIUpdate, ChannelConfig
from channels.simulators.agoda import create_app, render_booking_detail
from channels.simulators.generator import BookingGenerator

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "agoda"
KEY = "agoda-test-key"
Shape = dict[str, set[str]]


def shape(roots: Iterable[etree._Element]) -> Shape:
    """Union over `roots` of element path -> attribute names (comments and text ignored)."""
    out: Shape = {}
    for root in roots:
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            path = "/".join(a.tag for a in reversed([el, *el.iterancestors()]))
            out.setdefault(path, set()).update(el.keys())
    return out


def doc(*names: str) -> Shape:
    return shape(etree.parse(str(FIX / n)).getroot() for n in names)


def assert_conforms(ours: Shape, documented: Shape, optional: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """`optional` names paths ("a/b") or attributes ("a/b@x") the documented example has
    and ours may lack."""
    for path, attrs in ours.items():
        assert path in documented, f"element {path} is not in Agoda's example"
        assert attrs <= documented[path], f"{path}: attributes {attrs - documented[path]} not in Agoda's example"
    for path, attrs in documented.items():
        if path in optional:
            continue
        assert path in ours, f"documented element {path} missing"
        missing = {a for a in attrs - ours[path] if f"{path}@{a}" not in optional}
        assert not missing, f"{path}: documented attributes {missing} missing"


async def _post(app: object, body: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        return await client.post("/api", params={"apiKey": KEY}, content=body)


def _root(response: httpx.Response) -> etree._Element:
    return etree.fromstring(response.content)


# ---------------------------------------------------------------- simulator answers


def test_booking_detail_answer_has_the_documented_shape() -> None:
    messages = BookingGenerator(7).generate(60)
    assert {m.event for m in messages} == {"new", "modified", "cancelled"}
    ours = shape([etree.fromstring(render_booking_detail(messages))])
    # The example's booking has a promotion; ours only on promoted (NRF) rate plans.
    assert_conforms(ours, doc("GetBookingDetail_example1_RS.xml"))


@pytest.mark.anyio
async def test_simulator_answers_have_the_documented_shapes() -> None:
    today = date.today()
    app = create_app(bookings=12, seed=4, api_key=KEY, today=lambda: today)
    now = datetime.now(UTC)
    # GetBookingList (type 3 and 9)
    for type_ in (wire.TYPE_BOOKING_LIST, wire.TYPE_BOOKING_LIST_V2):
        body = wire.build_booking_list(["90210"], now - timedelta(days=30), now + timedelta(days=1), type_=type_)
        response = await _post(app, body)
        assert response.status_code == 200
        assert_conforms(shape([_root(response)]), doc("GetBookingList_v1_RS.xml", "GetBookingList_v2_all_properties_RS.xml"))
    # SetARI V2: 200, 207 PartialSuccess, 400 total failure
    ok = wire.WireUpdate("inventory", "3301", None, today, today + timedelta(days=3), allotment=2)
    rate = wire.WireUpdate("rate", "3301", "77001", today, today, price=Decimal("90"), currency="EUR")
    far = wire.WireUpdate("inventory", "3302", None, today + timedelta(days=800), today + timedelta(days=801), allotment=1)
    bad_plan = wire.WireUpdate("rate", "3301", "999", today, today, price=Decimal("90"), currency="EUR")
    response = await _post(app, wire.build_set_ari("90210", [ok, rate]))
    assert response.status_code == 200
    assert_conforms(shape([_root(response)]), doc("SetARI_v2_RS_success_200.xml"))
    response = await _post(app, wire.build_set_ari("90210", [ok, far, bad_plan]))
    assert response.status_code == 207
    assert_conforms(shape([_root(response)]), doc("SetARI_v2_RS_partial_success_207.xml"))
    los = wire.WireUpdate("rate", "3301", "77001", today, today, min_los=5, max_los=2)
    response = await _post(app, wire.build_set_ari("90210", [los]))
    assert response.status_code == 400
    assert_conforms(shape([_root(response)]), doc("SetARI_v2_RS_total_failure_400.xml"))
    # GetARI V2 over what was just set
    response = await _post(app, wire.build_get_ari("90210", today, today + timedelta(days=3)))
    assert response.status_code == 200
    optional = {
        # not simulated: child rates, stay-through and the allotment bookkeeping counters
        "result/properties/property/rates/room/child_rates",
        "result/properties/property/rates/room/child_rates/child_rate",
        "result/properties/property/rates/room@min_staythrough",
        "result/properties/property/rates/room@min_los", "result/properties/property/rates/room@max_los",
        "result/properties/property/rates/room@closed", "result/properties/property/rates/room@cta",
        "result/properties/property/rates/room@ctd",
        "result/properties/property/inventories/room@guaranteed_allotment",
        "result/properties/property/inventories/room@allotment_used_regular",
        "result/properties/property/inventories/room@allotment_used_guaranteed",
        "result/properties/property/inventories/room@closed", "result/properties/property/inventories/room@cta",
        "result/properties/property/inventories/room@ctd",
    }
    assert_conforms(shape([_root(response)]), doc("GetARI_v2_RS.xml"), optional)


# ---------------------------------------------------------------- our requests


def test_requests_have_the_documented_shapes() -> None:
    d = date(2027, 1, 1)
    updates = [
        wire.WireUpdate("inventory", "1", None, d, d, (1, 2), allotment=3, closed=False, cta=False, ctd=False),
        wire.WireUpdate("rate", "1", "2", d, d, price=Decimal("10"), currency="THB", closed=False, cta=False,
                        ctd=False, min_los=1, max_los=30),
    ]
    assert_conforms(shape([etree.fromstring(wire.build_set_ari("9", updates))]),
                    doc("SetARI_v2_RQ_default_rate.xml", "SetARI_v2_RQ_basic_mode.xml"),
                    {  # restrictions and price parts we never send
                        "request/criteria/rate/update/prices/extra_bed",
                        "request/criteria/rate/update/prices/child_rates",
                        "request/criteria/rate/update/prices/child_rates/child_rate",
                        "request/criteria/rate/update/restrictions/advancepurchase",
                        "request/criteria/rate/update/restrictions/advancepurchase/min",
                        "request/criteria/rate/update/restrictions/advancepurchase/max",
                        "request/criteria/rate/update/restrictions/staythrough",
                        "request/criteria/rate/update/restrictions/staythrough/min",
                    })
    ict = datetime.fromisoformat("2020-04-23T14:00:00+07:00")
    for type_, fixture in ((wire.TYPE_BOOKING_LIST, "GetBookingList_v1_RQ.xml"),
                           (wire.TYPE_BOOKING_LIST_V2, "GetBookingList_v2_RQ.xml")):
        body = wire.build_booking_list(["10730279"], ict, ict + timedelta(hours=1), type_=type_, status="AmendBooking")
        assert_conforms(shape([etree.fromstring(body)]), doc(fixture))
        criteria = etree.fromstring(body).find("criteria")
        assert criteria.get("from") == "2020-04-23T14:00:00+07:00"  # the offset is sent
    detail = etree.fromstring(wire.build_booking_detail("99", ["10061388", "10009302"]))
    assert_conforms(shape([detail]), doc("GetBookingDetail_example1_RQ.xml"))
    assert detail.find("criteria").get("language") == "EN"
    get_ari = etree.fromstring(wire.build_get_ari("10730279", d, d))
    # room_id/rateplan_id narrow Agoda's example to one room: we ask for all of them.
    assert_conforms(shape([get_ari]), doc("GetARI_v2_RQ.xml"),
                    {"request/criteria/property@room_id", "request/criteria/property@rateplan_id"})


def test_shape_check_catches_differences() -> None:
    documented = doc("SetARI_v2_RS_partial_success_207.xml")
    ours = {**documented, "result/extra": set()}
    with pytest.raises(AssertionError, match="not in Agoda's example"):
        assert_conforms(ours, documented)
    ours = {k: set(v) for k, v in documented.items()}
    ours["result"].discard("status")
    with pytest.raises(AssertionError, match="documented attributes"):
        assert_conforms(ours, documented)


# ---------------------------------------------------------------- published answers, per update


def _adapter(status: int, fixture: str, today: date) -> tuple[AgodaAdapter, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    body = (FIX / fixture).read_bytes()

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body, headers={"Content-Type": "text/xml"})

    adapter = AgodaAdapter(ChannelConfig(apiKey=KEY, propertyId="2458545", endpoint="http://agoda.test"),
                           transport=httpx.MockTransport(answer), today=lambda: today)
    return adapter, seen


# The updates Agoda's 207 example names: room 3166794's inventory on 2023-06-09 and its rate
# plan 1222082 on 2023-06-10; a third update it does not name was applied.
PUBLISHED_207_UPDATES = [
    ARIUpdate(partner_room_type_code="3166794", start=date(2023, 6, 9), end=date(2023, 6, 9), available=4),
    ARIUpdate(partner_room_type_code="3166794", partner_rate_plan_code="1222082", start=date(2023, 6, 10),
              end=date(2023, 6, 10), rate=Decimal("100"), currency="THB"),
    ARIUpdate(partner_room_type_code="5555", start=date(2023, 6, 9), end=date(2023, 6, 9), available=1),
]


@pytest.mark.anyio
async def test_published_partial_success_maps_each_error_to_its_update() -> None:
    adapter, seen = _adapter(207, "SetARI_v2_RS_partial_success_207.xml", date(2023, 6, 1))
    results = await adapter.push_ari(PUBLISHED_207_UPDATES)
    assert len(seen) == 1
    assert [(r.ok, r.error_code, r.transient) for r in results] == [
        (False, "2219", False), (False, "2101", False), (True, None, False),
    ]
    assert results[0].error == "2219 Date can not be greater than 730 days"
    assert results[1].error == "2101 Default rate is required but does not exist"
    await adapter.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("status", [207, 400])
async def test_published_total_failure_fails_every_update(status: int) -> None:
    """400 is the documented total failure; the same body with 207 is what an account
    without the partial-success setting receives: nothing is known applied either way."""
    adapter, _ = _adapter(status, "SetARI_v2_RS_total_failure_400.xml", date(2023, 6, 1))
    results = await adapter.push_ari(PUBLISHED_207_UPDATES)
    assert {(r.ok, r.error_code, r.transient) for r in results} == {(False, "22210", False)}
    assert all("Max LOS cannot be less than Min Los" in (r.error or "") and "2201" in (r.error or "") for r in results)
    await adapter.aclose()


@pytest.mark.anyio
async def test_published_success_accepts_every_update() -> None:
    adapter, _ = _adapter(200, "SetARI_v2_RS_success_200.xml", date(2023, 6, 1))
    results = await adapter.push_ari(PUBLISHED_207_UPDATES)
    assert [r.ok for r in results] == [True, True, True]
    await adapter.aclose()
