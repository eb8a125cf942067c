"""One channel's trouble never delays another: per-channel slots, time-bounded runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from channels.base import ChannelName
from flows.channel_sync import sync_bookings
from flows.runner import run_flow
from flows.scheduled import channel_slot, pull_channel, sync_all_bookings
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


def test_the_cycle_skips_a_busy_channel_and_dispatches_the_others(committed) -> None:  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client
    from prefect.concurrency.asyncio import concurrency

    hotel = make_hotel(committed, days=5,
                       channels=(ChannelName.BOOKING_COM, ChannelName.AIRBNB))
    committed.commit()
    busy, free = hotel.channels[ChannelName.BOOKING_COM], hotel.channels[ChannelName.AIRBNB]
    deployment: Any = pull_channel.to_deployment(name="on-demand")
    deployment_id = deployment.apply()

    async def scenario() -> tuple[dict[str, Any], Any, Any]:
        async with get_client() as client:
            await client.upsert_global_concurrency_limit_by_name(channel_slot(busy), 1)
        # A hung pull of `busy` holds its slot...
        async with concurrency(channel_slot(busy), lease_duration=60, strict=True):
            cycle = await sync_all_bookings(dispatch_runs=True, return_state=True)  # type: ignore[misc]
            skipped = await pull_channel(channel_id=busy, return_state=True)  # type: ignore[misc]
        return await cycle.aresult(), cycle, skipped

    result, cycle, skipped = asyncio.run(scenario())
    assert cycle.is_completed()
    lines = {line["channel_id"]: line for line in result["channels"]}
    assert lines[busy]["state"] == "BUSY"
    assert lines[free]["state"] == "DISPATCHED"
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(lines[free]["flow_run_id"])
    assert run.deployment_id == deployment_id
    assert run.parameters == {"channel_id": free, "max_pages": 50}
    assert f"channel-{free}" in run.tags
    # ...and a pull of that channel started meanwhile ends skipped, not queued behind it.
    assert skipped.is_cancelled() and "skipped" in (skipped.message or "")


def test_a_cycle_that_cannot_start_any_pull_fails_visibly(  # type: ignore[no-untyped-def]
        committed, monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.scheduled

    hotel = make_hotel(committed, days=1, channels=(ChannelName.AGODA, ChannelName.EXPEDIA))
    committed.commit()
    monkeypatch.setattr(flows.scheduled, "PULL_CHANNEL_DEPLOYMENT", "pull-channel/not-deployed")
    out = run_flow(sync_all_bookings, dispatch_runs=True)
    assert not out.ok and "no channel could be pulled" in str(out.error)
    lines = out.value["channels"]
    assert {line["channel_id"] for line in lines} == set(hotel.channels.values())
    assert all(line["state"] == "CRASHED" and "not-deployed" in line["error"]
               for line in lines)
