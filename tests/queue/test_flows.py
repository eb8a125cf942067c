"""The process-queue flow against the partner simulators: an inventory change becomes an
availability push, a reservation status change reaches the partner, guests are noted."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text

from api.audit import snapshot
from channels.base import ChannelName
from channels.simulators.server import build_app
from db.models import Reservation
from db.repositories import queue
from db.repositories.calendar import upsert_inventory_range
from db.repositories.reservations import update_reservation
from flows.channel_sync import sync_bookings
from flows.queue import process_queue
from flows.runner import run_flow
from tasks.resources import adapter_for, adapter_pool, transport_overrides
from tests.sync.conftest import make_hotel, point_channel_at

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def wire(committed):
    """wire(hotel) routes each of its channels to a fresh in-process simulator."""
    routed: list[int] = []

    def _wire(hotel, **sim_kw):
        sims = {}
        for name, cid in hotel.channels.items():
            sims[name] = build_app(name, **{"bookings": 0, "seed": 3, **sim_kw})
            point_channel_at(committed, cid, f"http://{name}.sim")
            transport_overrides[cid] = httpx.ASGITransport(app=sims[name])
            routed.append(cid)
        return sims

    yield _wire
    for cid in routed:
        transport_overrides.pop(cid, None)


def _logs(session, operation):
    return session.execute(text(
        "SELECT channel_id, status FROM channel_sync_logs WHERE operation = :op ORDER BY id"),
        {"op": operation}).all()


def test_inventory_change_is_pushed_to_every_channel_once(committed, wire):
    hotel = make_hotel(committed, units=5, days=40,
                       channels=(ChannelName.BOOKING_COM, ChannelName.AGODA))
    committed.commit()
    sims = wire(hotel)
    std = hotel.room_types["STD"]
    day = hotel.start + timedelta(days=5)
    for total in (3, 2):  # two edits of one room type coalesce into one item
        upsert_inventory_range(committed, std, day, day, {"total": total})
        queue.enqueue_range(committed, "inventory", std, day, day)
    queue.enqueue(committed, "guest", 1, "update", {"fields": ["phone"]})
    committed.commit()

    out = run_flow(process_queue)
    assert out.ok, out.error
    assert out.flow_run_id is not None
    assert out.value["processed"] == 2 and out.value["completed"] == 1
    assert out.value["notApplicable"] == 1 and out.value["failed"] == 0
    acked = committed.execute(text(
        "SELECT channel_id, available FROM channel_availability_state "
        "WHERE room_type_id = :rt AND date = :d ORDER BY channel_id"),
        {"rt": std, "d": day}).all()
    assert [tuple(r) for r in acked] == [(cid, 2) for cid in sorted(hotel.channels.values())]
    for name, sim in sims.items():
        assert len(sim.state.sim.ari.log) >= 1, f"{name} received nothing"
    assert sorted(_logs(committed, "queue_availability")) == sorted(
        (cid, "success") for cid in hotel.channels.values())
    assert [s for _, s in _logs(committed, "process_queue")] == ["success"]
    guest = committed.execute(text(
        "SELECT status, data ->> 'outcome' FROM data_sync_queue WHERE entity_type = 'guest'"
    )).one()
    assert guest.status == "completed" and guest[1].startswith("not applicable")

    # Idempotent: the same change again sends nothing new (the delta is empty).
    before = {n: len(s.state.sim.ari.log) for n, s in sims.items()}
    queue.enqueue_range(committed, "inventory", std, day, day)
    committed.commit()
    again = run_flow(process_queue)
    assert again.ok and again.value["completed"] == 1
    assert {n: len(s.state.sim.ari.log) for n, s in sims.items()} == before


def _partner_status(channel_id: int, code: str) -> str:
    async def fetch() -> str:
        async with adapter_pool():
            record = await adapter_for(channel_id).fetch_booking(code)
            assert record is not None
            return record.status

    return asyncio.run(fetch())


def _airbnb_booking_stored(committed, wire):  # type: ignore[no-untyped-def]
    """An Airbnb channel whose simulator's bookings were pulled, the queue emptied: (the
    simulator app, channel id, a confirmed reservation that is its booking's only room)."""
    hotel = make_hotel(committed, units=50, days=400, channels=(ChannelName.AIRBNB,))
    committed.commit()
    app = wire(hotel, bookings=12, seed=11)[ChannelName.AIRBNB]
    cid = hotel.channels[ChannelName.AIRBNB]
    assert run_flow(sync_bookings, channel_id=cid, push_availability=False).ok
    committed.execute(text("DELETE FROM data_sync_queue"))
    res = committed.scalars(
        text("SELECT r.id FROM reservations r WHERE r.channel_id = :c AND r.status = 'confirmed' "
             "AND (SELECT count(*) FROM reservations o WHERE o.channel_id = r.channel_id "
             "AND o.external_ref = r.external_ref) = 1 ORDER BY r.id LIMIT 1"), {"c": cid}).one()
    return app, cid, committed.get(Reservation, res)


def test_reservation_cancellation_reaches_the_partner(committed, wire):
    _, cid, row = _airbnb_booking_stored(committed, wire)
    assert _partner_status(cid, row.external_ref) == "accept"
    before = snapshot(row)
    update_reservation(committed, row, {"status": "cancelled"})
    queue.enqueue_reservation(committed, row, before)
    committed.commit()

    out = run_flow(process_queue)
    assert out.ok and out.value["completed"] == 1, out.value
    assert _partner_status(cid, row.external_ref) == "cancelled_by_host"
    assert [s for _, s in _logs(committed, "queue_booking_status")] == ["success"]
    item = committed.execute(text("SELECT status, attempts FROM data_sync_queue")).one()
    assert tuple(item) == ("completed", 1)

    # Delivered twice (a worker died after the push): the partner already shows it, still ok.
    queue.enqueue(committed, "reservation", row.id, "status_change", {})
    committed.commit()
    again = run_flow(process_queue)
    assert again.ok and again.value["completed"] == 1 and again.value["retrying"] == 0


def _one_room_type_change(committed, wire, channel, **faults):  # type: ignore[no-untyped-def]
    """A 5-unit hotel on one channel, its simulator's faults set, and one room-type change
    queued; the simulator's state."""
    from channels.simulators.common import FaultSettings

    hotel = make_hotel(committed, units=5, days=10, channels=(channel,))
    committed.commit()
    sim = wire(hotel)[channel].state.sim
    sim.faults = FaultSettings(**faults)
    queue.enqueue(committed, "room_type", hotel.room_types["DLX"], "update", {})
    committed.commit()
    return sim


def test_partner_failure_backs_off_with_the_error_kept(committed, wire):
    _one_room_type_change(committed, wire, ChannelName.EXPEDIA, error_rate=1.0)
    out = run_flow(process_queue)
    assert out.ok and out.value["retrying"] == 1
    row = committed.execute(text(
        "SELECT status, attempts, last_error, next_attempt_at > now() + interval '20 s' AS later "
        "FROM data_sync_queue")).one()
    assert row.status == "pending" and row.attempts == 1 and row.later
    assert "availability to channel" in row.last_error
    assert [s for _, s in _logs(committed, "queue_availability")] == ["failed"]


def test_process_endpoint_and_cli_start_a_flow_run(client, operator_headers):
    resp = client.post("/api/sync/process", headers=operator_headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True and body["flowRunId"] and body["processed"] == 0

    from typer.testing import CliRunner

    from innsync.cli import app

    out = CliRunner().invoke(app, ["queue", "process"])
    assert out.exit_code == 0, out.output
    assert "processed 0" in out.output


def test_status_flow_and_queue_share_the_idempotent_push(committed, wire):
    """update-booking-status (the API's path) uses the queue's push: a repeat is a no-op."""
    from flows.channel_sync import update_booking_status

    hotel = make_hotel(committed, units=50, days=400, channels=(ChannelName.AIRBNB,))
    committed.commit()
    wire(hotel, bookings=6, seed=13)
    cid = hotel.channels[ChannelName.AIRBNB]
    assert run_flow(sync_bookings, channel_id=cid, push_availability=False).ok
    cb_id, ext = committed.execute(
        text("SELECT id, external_booking_id FROM channel_bookings WHERE channel_id = :c "
             "ORDER BY id LIMIT 1"), {"c": cid}).one()
    assert _partner_status(cid, ext) == "accept"

    first = run_flow(update_booking_status, channel_booking_id=cb_id, status="cancelled")
    assert first.ok and first.value["success"] and first.value["recordsSuccess"] == 1
    assert _partner_status(cid, ext) == "cancelled_by_host"
    again = run_flow(update_booking_status, channel_booking_id=cb_id, status="cancelled")
    assert again.ok and again.value["success"], again.value
    logs = committed.execute(
        text("SELECT status, records_success, details ->> 'already' FROM channel_sync_logs "
             "WHERE channel_id = :c AND operation = 'update_booking_status' ORDER BY id"),
        {"c": cid}).all()
    assert [tuple(r) for r in logs] == [("success", 1, "false"), ("success", 1, "true")]

    # An unknown channel booking fails the run before any partner call.
    missing = run_flow(update_booking_status, channel_booking_id=10**12, status="cancelled")
    assert not missing.ok and isinstance(missing.error, LookupError)


def _token_window_passes_and_the_queue_runs(committed) -> None:  # type: ignore[no-untyped-def]
    """The partner's token window is over (made due here): one queue run completes the item."""
    committed.execute(text("UPDATE data_sync_queue SET next_attempt_at = now()"))
    committed.execute(text("UPDATE partner_auth_tokens SET retry_not_before = NULL"))
    committed.commit()
    out = run_flow(process_queue)
    assert out.ok and out.value["completed"] == 1, out.value


def test_a_token_wait_holds_items_back_without_spending_their_attempts(committed, wire):
    """Booking.com's token endpoint answers 429 Retry-After 600: the queued push is put back
    for ten minutes with its attempt not counted, so however many runs meet the wait, the item
    is never dead-lettered; once due and the partner answers again, it goes out."""
    from channels.simulators.common import TokenSettings

    sim = _one_room_type_change(committed, wire, ChannelName.BOOKING_COM)
    sim.tokens.settings = TokenSettings(exchange_limit=0, limited_retry_after=600)

    def item():  # type: ignore[no-untyped-def]
        row = committed.execute(text(
            "SELECT status, attempts, last_error, "
            "next_attempt_at > now() + interval '500 s' AS later FROM data_sync_queue")).one()
        committed.rollback()
        return row

    out = run_flow(process_queue)
    assert out.ok and out.value["retrying"] == 1 and out.value["failed"] == 0
    row = item()
    assert (row.status, row.attempts, row.later) == ("pending", 0, True), row
    assert "429" in row.last_error or "rate" in row.last_error.lower(), row.last_error
    for _ in range(3):  # not due: nothing claimed, nothing spent
        assert run_flow(process_queue).value["processed"] == 0
    assert item().attempts == 0
    # The window passes (made due here) and the partner issues tokens again.
    sim.tokens.settings = TokenSettings()
    _token_window_passes_and_the_queue_runs(committed)
    assert item().status == "completed"


def test_a_token_wait_holds_a_status_push_back_without_spending_its_attempt(committed, wire):
    """The same for a booking status: Airbnb revokes its tokens and its token endpoint answers
    429 Retry-After 600; the queued cancellation is put back for ten minutes, attempt not
    counted, nothing reaches the partner; once due and tokens are issued again, it goes out."""
    from channels.simulators.common import TokenSettings
    from tasks.results import StatusPushResult
    from tasks.status import push_status

    app, cid, row = _airbnb_booking_stored(committed, wire)
    update_reservation(committed, row, {"status": "cancelled"})
    queue.enqueue(committed, "reservation", row.id, "status_change", {})  # the status alone
    committed.commit()
    sim = app.state.sim
    sim.tokens.settings = TokenSettings(exchange_limit=0, limited_retry_after=600)
    app.state.airbnb.revoke_tokens()

    async def push() -> StatusPushResult:
        async with adapter_pool():
            return await push_status(cid, row.external_ref, "cancelled")

    # The status push itself says how long to hold back (the item's ARI push says it too).
    alone = asyncio.run(push())
    assert alone.error and alone.wait_seconds is not None and alone.wait_seconds > 500, alone
    out = run_flow(process_queue)
    assert out.ok and out.value["retrying"] == 1 and out.value["failed"] == 0, out.value
    item = committed.execute(text(
        "SELECT status, attempts, next_attempt_at > now() + interval '500 s' AS later "
        "FROM data_sync_queue")).one()
    committed.rollback()
    assert tuple(item) == ("pending", 0, True)
    assert sim.tokens.refused >= 1
    assert app.state.airbnb.find(row.external_ref)["status_type"] == "accept"  # nothing sent
    sim.tokens.settings = TokenSettings()
    _token_window_passes_and_the_queue_runs(committed)
    assert _partner_status(cid, row.external_ref) == "cancelled_by_host"


def test_a_slow_batch_keeps_its_leases_so_no_second_worker_redoes_it(committed, wire):
    """The partner takes 3 s per request while the lease is 1.2 s: the running batch renews
    its leases, another worker claiming meanwhile gets nothing, and the item is done once."""
    import threading
    import time

    from db.repositories import queue as queue_repo

    _one_room_type_change(committed, wire, ChannelName.EXPEDIA, latency_ms=3000)
    outcome: list = []
    runner = threading.Thread(target=lambda: outcome.append(
        run_flow(process_queue, lease_seconds=1.2)))
    runner.start()
    deadline = time.monotonic() + 60
    while committed.execute(text(  # wait until the batch holds the item
            "SELECT count(*) FROM data_sync_queue WHERE status = 'processing'")).scalar() == 0:
        committed.rollback()
        assert time.monotonic() < deadline and runner.is_alive()
        time.sleep(0.05)
    committed.rollback()
    time.sleep(2.0)  # past the 1.2 s lease it was claimed with
    stolen = queue_repo.claim(committed, "another-worker", 10, 60)
    committed.commit()
    runner.join(120)
    assert stolen == []
    assert outcome and outcome[0].ok and outcome[0].value["completed"] == 1, outcome
    assert committed.execute(text("SELECT status, attempts FROM data_sync_queue")).one() \
        == ("completed", 1)


def test_a_failed_lease_renewal_does_not_fail_the_batch(monkeypatch):
    """Renewing leases is best effort: a database error while renewing is logged, and the
    batch's work and outcome go on (at worst its lease runs out and it is repeated)."""
    import asyncio

    from tasks import queue as queue_tasks

    renewals: list[int] = []

    def broken(worker, ids, lease_seconds):  # type: ignore[no-untyped-def]
        renewals.append(len(ids))
        raise RuntimeError("connection lost")

    monkeypatch.setattr(queue_tasks, "_extend", broken)

    async def batch() -> str:
        async with queue_tasks.leases_kept("w", [1, 2], 0.06):
            await asyncio.sleep(0.2)  # several renewals fail meanwhile
        return "done"

    assert asyncio.run(batch()) == "done"
    assert len(renewals) >= 2
