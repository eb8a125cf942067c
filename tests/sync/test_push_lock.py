"""One ARI push at a time per channel and month, across processes (tasks/push_lock.py).

Another process is played by a lease row another holder wrote in the database: that is all
a second worker's push leaves there. Pushes go over real HTTP to the Agoda simulator."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest
from prefect import flow
from sqlalchemy import text
from sqlalchemy.orm import Session

from channels.base import ARIUpdate, ChannelName, TransientChannelError
from channels.simulators.catalog import CATALOG
from channels.simulators.server import build_app, running_server
from db.repositories.push_leases import months_of
from tasks.ari import push_ari_window
from tasks.push_lock import PushLock, push_lock, record_acked
from tasks.resources import adapter_pool
from tests.sync.conftest import make_hotel, point_channel_at

pytestmark = pytest.mark.usefixtures("prefect_server")


def _ari_requests(sim: Any) -> int:
    return len(sim.state.sim.ari.log)


def _acked(session: Session, cid: int) -> int:
    session.expire_all()
    return int(session.execute(text("SELECT count(*) FROM channel_availability_state "
                                    "WHERE channel_id = :c"), {"c": cid}).scalar_one())


def _lease_of_another(session: Session, cid: int, month: date, seconds: int) -> None:
    session.execute(
        text("INSERT INTO channel_push_leases (channel_id, month, holder, expires_at) "
             "VALUES (:c, :m, 'other-worker:1:abc', now() + make_interval(secs => :s))"),
        {"c": cid, "m": month, "s": seconds})
    session.commit()


def _holders(session: Session, cid: int) -> list[str]:
    session.expire_all()
    return list(session.execute(text("SELECT holder FROM channel_push_leases "
                                      "WHERE channel_id = :c ORDER BY month"),
                                {"c": cid}).scalars())


@pytest.fixture
def agoda(committed: Session):  # type: ignore[no-untyped-def]
    hotel = make_hotel(committed, units=6, days=45, channels=(ChannelName.AGODA,))
    committed.commit()
    cid = hotel.channels[ChannelName.AGODA]
    sim = build_app(ChannelName.AGODA, bookings=0, seed=4)
    with running_server(sim) as url:
        point_channel_at(committed, cid, url)
        yield hotel, cid, sim


@flow(name="test-push-while-another-holds")
async def _push_after_release(cid: int, start: date, end: date, sim: Any,
                              release: Any) -> tuple[int, int, Any]:
    async with adapter_pool():
        push = asyncio.create_task(push_ari_window.fn(cid, "availability", start, end))
        await asyncio.sleep(1.5)
        waiting = (int(push.done()), _ari_requests(sim))
        release()
        summary = await asyncio.wait_for(push, 60)
    return waiting[0], waiting[1], summary


def test_a_push_waits_for_another_process_push_of_the_same_month(
    committed: Session, agoda: Any
) -> None:
    hotel, cid, sim = agoda
    start, end = hotel.start, hotel.start + timedelta(days=44)
    # the other worker holds one month of the window (of two or three)
    _lease_of_another(committed, cid, months_of(start, end)[-1], 300)

    def release() -> None:
        committed.execute(text("DELETE FROM channel_push_leases WHERE channel_id = :c"),
                          {"c": cid})
        committed.commit()

    done, sent, summary = asyncio.run(_push_after_release(cid, start, end, sim, release))
    assert (done, sent) == (0, 0), "the push went while another process held the month"
    assert summary.updates > 0 and summary.failed == 0, summary
    assert _ari_requests(sim) > 0
    assert _acked(committed, cid) == 45 * 4  # every night of the four room types recorded
    assert _holders(committed, cid) == []  # released when done


@flow(name="test-push-takes-dead-lease")
async def _push(cid: int, start: date, end: date) -> Any:
    async with adapter_pool():
        return await push_ari_window.fn(cid, "availability", start, end)


def test_a_dead_holder_lease_expires_and_the_push_goes(committed: Session, agoda: Any) -> None:
    hotel, cid, sim = agoda
    start, end = hotel.start, hotel.start + timedelta(days=9)
    for month in months_of(start, end):
        _lease_of_another(committed, cid, month, -1)  # its process died: already expired
    summary = asyncio.run(_push(cid, start, end))
    assert summary.updates > 0 and summary.failed == 0
    assert _acked(committed, cid) == 10 * 4
    assert _holders(committed, cid) == []


def test_a_push_that_waited_too_long_fails_transiently_and_keeps_nothing(
    committed: Session, agoda: Any
) -> None:
    hotel, cid, _ = agoda
    months = months_of(hotel.start, hotel.start + timedelta(days=44))
    assert len(months) >= 2
    _lease_of_another(committed, cid, months[-1], 300)

    async def take() -> None:
        async with push_lock(cid, ChannelName.AGODA, hotel.start,
                             hotel.start + timedelta(days=44), wait_seconds=0.5):
            raise AssertionError("the lock was granted while another holder had a month")

    with pytest.raises(TransientChannelError, match="waited"):
        asyncio.run(take())
    # all or none: the months that were free are not kept while waiting
    assert _holders(committed, cid) == ["other-worker:1:abc"]


def test_a_push_that_lost_its_lease_records_nothing_and_its_nights_go_again(
    committed: Session, agoda: Any
) -> None:
    hotel, cid, sim = agoda
    start, end = hotel.start, hotel.start + timedelta(days=9)
    asyncio.run(_push(cid, start, end))
    assert _acked(committed, cid) == 10 * 4
    before = _ari_requests(sim)
    # A push whose process stalled past its leases' expiry (another took them meanwhile):
    # what it sent may have landed after the other's, so those nights are not trusted.
    stale = PushLock(cid, tuple(months_of(start, end)), "stalled-worker:2:def")
    rooms = CATALOG[ChannelName.AGODA]["room_types"]
    sent = [ARIUpdate(partner_room_type_code=rooms[code], start=start,
                      end=start + timedelta(days=2), available=1)
            for code in ("STD", "DLX")]
    assert record_acked(stale, sent) is False
    assert _acked(committed, cid) == 10 * 4 - 2 * 3
    again = asyncio.run(_push(cid, start, end))
    assert again.ok == again.updates > 0 and _ari_requests(sim) > before
    assert _acked(committed, cid) == 10 * 4
    # while the holder still has them, the same call records
    with_lease = PushLock(cid, tuple(months_of(start, end)), "live-worker:3:abc")
    for month in with_lease.months:
        committed.execute(
            text("INSERT INTO channel_push_leases (channel_id, month, holder, expires_at) "
                 "VALUES (:c, :m, :h, now() + interval '1 min')"),
            {"c": cid, "m": month, "h": with_lease.holder})
    committed.commit()
    assert record_acked(with_lease, sent) is True
    assert _acked(committed, cid) == 10 * 4


def test_a_push_longer_than_its_lease_keeps_it_while_it_runs(
    committed: Session, agoda: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The lease lasts LEASE_SECONDS unless renewed: a push that runs several lease lengths
    (a slow partner) still holds its months at the end, another holder cannot take them
    meanwhile, and what it sent is recorded. A renewal that fails is logged, not lost."""
    import tasks.push_lock as push_lock_module
    from db.engine import session_scope
    from db.repositories.push_leases import take_push_leases

    monkeypatch.setattr(push_lock_module, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(push_lock_module, "RENEW_SECONDS", 0.2)
    hotel, cid, _ = agoda
    start, end = hotel.start, hotel.start + timedelta(days=9)
    rooms = CATALOG[ChannelName.AGODA]["room_types"]
    sent = [ARIUpdate(partner_room_type_code=rooms["STD"], start=start, end=start,
                      available=2)]

    def another_takes() -> bool:
        with session_scope() as session:
            return take_push_leases(session, cid, months_of(start, end), "other:9:x", 60)

    async def long_push() -> tuple[list[bool], bool]:
        tries = []
        async with push_lock(cid, ChannelName.AGODA, start, end) as lock:
            for _ in range(3):  # three lease lengths
                await asyncio.sleep(1.0)
                tries.append(await asyncio.to_thread(another_takes))
            recorded = await asyncio.to_thread(record_acked, lock, sent)
        return tries, recorded

    tries, recorded = asyncio.run(long_push())
    assert tries == [False, False, False]
    assert recorded is True
    assert _holders(committed, cid) == []

    # Renewals that fail: logged; the lease then expires, the fencing check refuses to record.
    def broken_renew(lock: PushLock) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(push_lock_module, "_renew", broken_renew)
    with caplog.at_level("WARNING", logger="innsync.leases"):
        tries, recorded = asyncio.run(long_push())
    assert "renewing the ARI push leases" in caplog.text and "database went away" in caplog.text
    assert tries[-1] is True and recorded is False  # another took the expired months
