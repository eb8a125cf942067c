"""sync_all_bookings: every enabled channel pulled at once; one failing partner spares the rest."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from channels.base import ChannelName
from channels.simulators.server import build_app, free_port, running_server
from flows.runner import run_flow
from flows.scheduled import enabled_channels, sync_all_bookings
from tests.sync.conftest import make_hotel, point_channel_at

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_pulls_every_enabled_channel_and_reports_the_one_that_failed(committed):  # type: ignore[no-untyped-def]
    hotel = make_hotel(committed, units=50, days=400,
                       channels=(ChannelName.BOOKING_COM, ChannelName.EXPEDIA,
                                 ChannelName.AGODA))
    committed.commit()
    ok_id = hotel.channels[ChannelName.BOOKING_COM]
    dead_id = hotel.channels[ChannelName.EXPEDIA]
    off_id = hotel.channels[ChannelName.AGODA]
    committed.execute(text("UPDATE channels SET enabled = false WHERE id = :c"), {"c": off_id})
    point_channel_at(committed, dead_id, f"http://127.0.0.1:{free_port()}")  # nobody listens
    sim = build_app(ChannelName.BOOKING_COM, bookings=12, seed=3)
    with running_server(sim) as url:
        point_channel_at(committed, ok_id, url)
        out = run_flow(sync_all_bookings)
    assert out.ok, out.error
    lines = {line["channel_id"]: line for line in out.value["channels"]}
    assert set(lines) == {ok_id, dead_id}  # the disabled channel is not pulled
    assert lines[ok_id]["state"] == "COMPLETED" and lines[ok_id]["new"] > 0
    assert lines[dead_id]["state"] != "COMPLETED" or lines[dead_id]["errors"] > 0
    assert sim.state.sim.queue.stats()["pending"] == 0



def test_enabled_channels_filters_by_partner(committed):  # type: ignore[no-untyped-def]
    hotel = make_hotel(committed, channels=(ChannelName.BOOKING_COM, ChannelName.AIRBNB))
    committed.commit()
    assert [c[0] for c in enabled_channels(["airbnb"])] == [hotel.channels[ChannelName.AIRBNB]]
    assert len(enabled_channels()) == 2


def test_all_channels_failing_fails_the_run(committed):  # type: ignore[no-untyped-def]
    hotel = make_hotel(committed, days=5, channels=(ChannelName.AIRBNB,))
    committed.commit()
    point_channel_at(committed, hotel.channels[ChannelName.AIRBNB],
                     f"http://127.0.0.1:{free_port()}")
    out = run_flow(sync_all_bookings)
    assert not out.ok
    assert out.value["channels"][0]["state"] != "COMPLETED"


def test_batches_keep_a_partners_channels_together_in_id_order() -> None:
    from flows.scheduled import batches

    rows = [(5, "b5", "booking.com"), (1, "a1", "agoda"), (3, "b3", "booking.com"),
            (2, "b2", "booking.com"), (4, "x4", "expedia")]
    assert batches(rows, 2) == [
        [(1, "a1", "agoda")],
        [(2, "b2", "booking.com"), (3, "b3", "booking.com")],
        [(5, "b5", "booking.com")],
        [(4, "x4", "expedia")],
    ]
    assert batches(rows, 250) == [[rows[1]], [rows[3], rows[2], rows[0]], [rows[4]]]
    assert batches([], 10) == []


def test_a_batch_reads_its_channels_facts_together_or_each_by_itself(committed):  # type: ignore[no-untyped-def]
    """A batch reads its per-hotel channels' facts in one query; when one of them was
    deleted meanwhile it hands none over, so each pull reads its own and only the deleted
    channel's fails."""
    from tasks.resources import channel_infos_if_all as _infos

    hotel = make_hotel(committed, days=1, channels=(ChannelName.AGODA, ChannelName.AIRBNB))
    committed.commit()
    ids = sorted(hotel.channels.values())
    infos = _infos(ids)
    assert sorted(infos) == ids
    assert {infos[cid].channel_name for cid in ids} == {"agoda", "airbnb"}
    assert all(infos[cid].property_id == hotel.property_id for cid in ids)
    assert _infos([*ids, 10**12]) == {}


def test_a_cycle_never_queues_a_channel_behind_its_own_batch_still_waiting(
        committed, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A pull worker slower than the cycle: the batch dispatched a minute ago has not
    started. The next cycle leaves its channels BUSY and dispatches nothing for them (else
    the queue grows by a batch per cycle, without end); a channel added meanwhile is
    dispatched alone. The batch, once it runs, takes its queued leases over; when it is done
    the channels are dispatched again. A dispatch that fails leaves no lease behind."""
    import asyncio

    import flows.scheduled as scheduled
    from db.repositories.pull_leases import leased_channels

    delayed: list[tuple[list[int], str]] = []

    def delay(ids: list[int], max_pages: int, holder: str) -> str:
        delayed.append((ids, holder))
        return f"task-{len(delayed)}"

    monkeypatch.setattr(scheduled, "_delay_batch", delay)
    first = make_hotel(committed, days=1, channels=(ChannelName.AGODA,))
    committed.commit()
    a = first.channels[ChannelName.AGODA]

    def cycle(*ids: int) -> dict[int, str]:
        group = [(cid, f"c{cid}", "agoda") for cid in ids]
        lines = asyncio.run(scheduled.dispatch([group], 50, to_task_workers=True))
        return {line.channel_id: line.state for line in lines}

    assert cycle(a) == {a: "DISPATCHED"}
    [(ids, holder)] = delayed
    assert ids == [a] and leased_channels(committed)[a] == holder
    second = make_hotel(committed, days=1, channels=(ChannelName.AGODA,))
    committed.commit()
    b = second.channels[ChannelName.AGODA]
    assert cycle(a, b) == {a: "BUSY", b: "DISPATCHED"}
    assert delayed[1][0] == [b]
    # the first batch starts: its own queued leases are its to take (another holder's not)
    assert scheduled._take(holder, [a, b]) == [a]
    scheduled._release(holder, [a])
    scheduled._release(delayed[1][1], [b])
    assert cycle(a, b) == {a: "DISPATCHED", b: "DISPATCHED"}
    assert delayed[2][0] == [a, b]
    scheduled._release(delayed[2][1], [a, b])

    def broken(ids: list[int], max_pages: int, holder: str) -> str:
        raise RuntimeError("Prefect API unreachable")

    monkeypatch.setattr(scheduled, "_delay_batch", broken)
    assert cycle(a) == {a: "CRASHED"}
    committed.expire_all()
    assert a not in leased_channels(committed)


def test_a_batch_queued_for_a_worker_that_died_frees_its_channels_when_its_lease_expires(
        committed, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The pull worker a batch was queued for died before it started it: its channels are
    BUSY while the queued lease lasts (QUEUED_LEASE_SECONDS), dispatched again by the first
    cycle after it expired; the dead batch, if it is started late after all, finds the
    channels under the new batch's lease and pulls none of them."""
    import asyncio
    import time

    import flows.scheduled as scheduled
    from db.repositories.pull_leases import leased_channels

    delayed: list[tuple[list[int], str]] = []

    def delay(ids: list[int], max_pages: int, holder: str) -> str:
        delayed.append((ids, holder))
        return f"task-{len(delayed)}"

    monkeypatch.setattr(scheduled, "_delay_batch", delay)
    monkeypatch.setattr(scheduled, "QUEUED_LEASE_SECONDS", 1.0)
    hotel = make_hotel(committed, days=1, channels=(ChannelName.EXPEDIA,))
    committed.commit()
    a = hotel.channels[ChannelName.EXPEDIA]

    def cycle() -> str:
        lines = asyncio.run(scheduled.dispatch([[(a, f"c{a}", "expedia")]], 50,
                                               to_task_workers=True))
        return lines[0].state

    assert cycle() == "DISPATCHED"
    dead_holder = delayed[0][1]
    assert cycle() == "BUSY"  # queued, not started, not yet expired
    time.sleep(1.5)
    assert cycle() == "DISPATCHED"
    assert len(delayed) == 2 and delayed[1][0] == [a]
    committed.expire_all()
    assert leased_channels(committed)[a] == delayed[1][1] != dead_holder
    assert scheduled._take(dead_holder, [a]) == []
    scheduled._release(delayed[1][1], [a])
