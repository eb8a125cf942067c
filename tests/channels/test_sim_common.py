from __future__ import annotations

import random

import httpx
import pytest
from fastapi import Response

from channels.pci import luhn_ok
from channels.simulators.common import BookingQueue, FaultSettings, SimState, make_app
from channels.simulators.generator import BookingGenerator

pytestmark = pytest.mark.anyio


def test_generator_is_deterministic_and_realistic() -> None:
    a = BookingGenerator(3).generate(40)
    b = BookingGenerator(3).generate(40)
    assert [(m.booking_id, m.event, m.revision, m.total) for m in a] == [
        (m.booking_id, m.event, m.revision, m.total) for m in b
    ]
    assert {m.event for m in a} == {"new", "modified", "cancelled"}
    assert any(len(m.rooms) > 1 for m in a)
    assert any(r.child_ages for m in a for r in m.rooms)
    assert any(not (m.guest.first_name + m.guest.last_name).isascii() for m in a)
    assert all(luhn_ok(m.card.number) and m.card.cvv for m in a)


def test_queue_in_order_and_redelivery() -> None:
    msgs = BookingGenerator(5).generate(30)
    q = BookingQueue(msgs, in_order=True)
    first = q.pending()
    assert len({m.booking_id for m in first}) == len(first)  # one message per booking
    assert q.pending() == first  # nothing acked: same again
    target = next(m for m in msgs if m.revision == 2)
    assert q.ack(target.booking_id)  # acks revision 1
    second = q.pending()
    assert any(m.booking_id == target.booking_id and m.revision == 2 for m in second)


def test_queue_duplicates() -> None:
    msgs = BookingGenerator(5).generate(10)
    q = BookingQueue(msgs)
    while batch := q.pending():
        for m in batch:
            assert q.ack(m.booking_id, revision=m.revision)
    assert q.pending(duplicate_rate=1.0, rng=random.Random(1))  # acked ones come back
    assert not q.pending(duplicate_rate=0.0, rng=random.Random(1))


async def test_fault_middleware() -> None:
    state = SimState("x", "1", faults=FaultSettings(rate_limit_rate=1.0, retry_after_seconds=3))
    app = make_app(state, "x")

    @app.get("/ping")
    async def ping() -> Response:
        return Response("<ok/>", media_type="text/xml")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as c:
        r = await c.get("/ping")
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        assert (await c.post("/_sim/faults", json={"error_rate": 1.0})).status_code == 200
        assert (await c.get("/ping")).status_code == 503
        await c.post("/_sim/faults", json={"malformed_rate": 1.0})
        r = await c.get("/ping")
        assert r.status_code == 200 and r.content != b"<ok/>"
        await c.post("/_sim/faults", json={})
        assert (await c.get("/ping")).content == b"<ok/>"
        stats = (await c.get("/_sim/stats")).json()
        assert stats["calls"]["/ping"] == 4 and stats["injected"] == {"rate_limit": 1, "error": 1, "malformed": 1}
