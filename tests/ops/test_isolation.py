"""One channel's trouble never delays another: per-channel leases and time bounds inside
batched pulls, time-bounded runs."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from channels.base import ChannelName
from flows.channel_sync import sync_bookings
from flows.runner import run_flow
from flows.scheduled import pull_batch, sync_all_bookings
from tests.sync.conftest import make_hotel, point_channel_at

pytestmark = pytest.mark.usefixtures("prefect_server")


def _log(committed, channel_id: int) -> Any:  # type: ignore[no-untyped-def]
    row = committed.execute(
        text("SELECT status, error_messages, finished_at FROM channel_sync_logs "
             "WHERE channel_id = :c ORDER BY id DESC LIMIT 1"), {"c": channel_id}).one()
    committed.rollback()
    return row


def test_a_hung_partner_ends_as_a_timed_out_run_and_a_failed_log(  # type: ignore[no-untyped-def]
        committed, hung_partner: str) -> None:
    hotel = make_hotel(committed, days=5, channels=(ChannelName.EXPEDIA,))
    committed.commit()
    cid = hotel.channels[ChannelName.EXPEDIA]
    point_channel_at(committed, cid, hung_partner)
    # The same flow with a short bound (production reads INNSYNC_SYNC_RUN_TIMEOUT_SECONDS).
    out = run_flow(sync_bookings.with_options(timeout_seconds=3), channel_id=cid)
    from prefect.client.orchestration import get_client

    assert not out.ok and isinstance(out.error, TimeoutError)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(out.flow_run_id).state
    assert state is not None and state.name == "TimedOut"  # visible as such in the UI
    log = _log(committed, cid)
    assert log.status == "failed" and log.finished_at is not None
    assert "TimedOut" in log.error_messages[-1]


def test_the_cycle_dispatches_one_batch_run_per_partner(committed) -> None:  # type: ignore[no-untyped-def]
    """Through deployments the cycle creates a pull-batch run per batch (a partner's channels
    together) and ends; the runs carry the channel ids, not one run per channel."""
    hotel = make_hotel(committed, days=1,
                       channels=(ChannelName.BOOKING_COM, ChannelName.AIRBNB))
    other = make_hotel(committed, days=1, channels=(ChannelName.BOOKING_COM,))
    committed.commit()
    deployment: Any = pull_batch.to_deployment(name="on-demand")
    deployment_id = deployment.apply()
    out = run_flow(sync_all_bookings, dispatch_runs=True)
    assert out.ok, out.error
    lines = {line["channel_id"]: line for line in out.value["channels"]}
    booking = sorted([hotel.channels[ChannelName.BOOKING_COM],
                      other.channels[ChannelName.BOOKING_COM]])
    airbnb = hotel.channels[ChannelName.AIRBNB]
    assert set(lines) == {*booking, airbnb}
    assert all(line["state"] == "DISPATCHED" for line in lines.values())
    assert lines[booking[0]]["flow_run_id"] == lines[booking[1]]["flow_run_id"]
    assert lines[airbnb]["flow_run_id"] != lines[booking[0]]["flow_run_id"]
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(lines[booking[0]]["flow_run_id"])
    assert run.deployment_id == deployment_id
    holder = run.parameters.pop("holder")
    assert run.parameters == {"channel_ids": booking, "max_pages": 50}
    # The dispatch took the batch's channel leases for it (the run takes them over when it
    # starts), so the next cycle does not queue the same channels behind it.
    from db.repositories.pull_leases import leased_channels

    leases = leased_channels(committed)
    assert {cid: leases.get(cid) for cid in booking} == {cid: holder for cid in booking}


def test_a_batch_skips_a_leased_channel_and_a_hung_one_spares_the_others(  # type: ignore[no-untyped-def]
        committed, hung_partner: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """In one batch: a channel another pull still leases is BUSY (not queued behind it), a
    hung partner ends its own channel's pull at its time bound with a failed sync log, and
    the batch's other channel is pulled meanwhile; the batch drops its leases."""
    from channels.simulators.server import build_app, running_server
    from db.repositories.pull_leases import leased_channels, take_leases
    from innsync.settings import get_settings

    # Three hotels: a booking's availability push goes to its own hotel's channels only.
    channels = (ChannelName.AGODA, ChannelName.EXPEDIA, ChannelName.AIRBNB)
    good, hung, busy = (make_hotel(committed, days=5, channels=(c,)).channels[c]
                        for c in channels)
    committed.commit()
    point_channel_at(committed, hung, hung_partner)
    take_leases(committed, [busy], "another batch", 120)
    committed.commit()
    monkeypatch.setenv("INNSYNC_SYNC_RUN_TIMEOUT_SECONDS", "8")
    get_settings.cache_clear()
    sim = build_app(ChannelName.AGODA, bookings=3, seed=5)
    try:
        with running_server(sim) as url:
            point_channel_at(committed, good, url)
            out = run_flow(pull_batch, channel_ids=[good, hung, busy], max_pages=5)
    finally:
        monkeypatch.delenv("INNSYNC_SYNC_RUN_TIMEOUT_SECONDS")
        get_settings.cache_clear()
    assert out.ok, out.error
    lines = {line["channel_id"]: line for line in out.value["channels"]}
    assert lines[busy]["state"] == "BUSY"
    assert lines[hung]["state"] == "TIMEDOUT"
    assert lines[good]["state"] == "COMPLETED" and lines[good]["new"] == 3
    assert _log(committed, good).status == "success"
    log = _log(committed, hung)
    assert log.status == "failed" and log.finished_at is not None
    assert "TimedOut" in log.error_messages[-1]
    # Only the other holder's lease is left; the busy channel's pull never started.
    assert leased_channels(committed) == {busy: "another batch"}
    committed.rollback()
    assert committed.execute(text("SELECT count(*) FROM channel_sync_logs "
                                  "WHERE channel_id = :c"), {"c": busy}).scalar() == 0


def test_a_cycle_that_cannot_start_any_pull_fails_visibly(  # type: ignore[no-untyped-def]
        committed, monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.scheduled

    hotel = make_hotel(committed, days=1, channels=(ChannelName.AGODA, ChannelName.EXPEDIA))
    committed.commit()
    monkeypatch.setattr(flows.scheduled, "PULL_BATCH_DEPLOYMENT", "pull-batch/not-deployed")
    out = run_flow(sync_all_bookings, dispatch_runs=True)
    assert not out.ok and "no channel could be pulled" in str(out.error)
    lines = out.value["channels"]
    assert {line["channel_id"] for line in lines} == set(hotel.channels.values())
    assert all(line["state"] == "CRASHED" and "not-deployed" in line["error"]
               for line in lines)


def test_a_batch_pulls_on_when_its_slots_cannot_be_taken_in_blocks(committed) -> None:  # type: ignore[no-untyped-def]
    """A partner limit on the server smaller than the batch's block (set by hand, or not yet
    rescaled): Prefect refuses the block, and every fetch takes its own slot instead."""
    from prefect.client.orchestration import get_client

    from channels.simulators.catalog import hotel_catalog
    from channels.simulators.server import build_app, running_server
    from tasks.limits import partner_limit

    hotel = make_hotel(committed, days=5, channels=(ChannelName.AGODA,))
    second = make_hotel(committed, days=5, channels=(ChannelName.AGODA,))
    committed.commit()
    ids = [hotel.channels[ChannelName.AGODA], second.channels[ChannelName.AGODA]]
    name = partner_limit("agoda")
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, 1, slot_decay_per_second=100.0)
    try:
        # One simulated account of two hotels: each channel is connected to its own.
        sim = build_app(ChannelName.AGODA, bookings=2, seed=8, hotels=2)
        with running_server(sim) as url:
            for index, cid in enumerate(ids):
                hotel_id = str(hotel_catalog(ChannelName.AGODA, index)["hotel_id"])
                point_channel_at(committed, cid, url, hotelId=hotel_id, propertyId=hotel_id)
            out = run_flow(pull_batch, channel_ids=ids, max_pages=5)
    finally:
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name(name)
    assert out.ok, out.error
    assert [line["state"] for line in out.value["channels"]] == ["COMPLETED", "COMPLETED"], \
        out.value["channels"]
