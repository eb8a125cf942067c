"""The automations innsync creates, against a real Prefect server (its triggers and actions
services running): zombie runs are marked Crashed, stale channels notify through a block."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import text

from channels.base import ChannelName
from deployments.automations import (
    ERROR_RATE_AUTOMATION,
    STALE_AUTOMATION,
    ZOMBIE_AUTOMATION,
    ensure_automations,
    upsert,
    zombie_automation,
)
from tests.deployments.conftest import PrefectServer
from tests.deployments.probe_flow import probe
from tests.sync.conftest import committed, make_hotel  # noqa: F401

pytestmark = pytest.mark.prefect_server


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP endpoint standing in for Slack/e-mail: records every POST body."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def _by_name(name: str) -> list[Any]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_automations_by_name(name)


def _save_block(url: str) -> str:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(
        name="innsync-test", url=url, json_data={"subject": "{{subject}}", "body": "{{body}}"},
    ).save("innsync-test-alerts", overwrite=True)
    return "custom-webhook/innsync-test-alerts"


def test_automations_are_created_once_and_updated(prefect_client_settings: PrefectServer,
                                                  receiver: tuple[str, list[Any]]) -> None:
    block = _save_block(receiver[0])
    first = ensure_automations(alert_block=block, zombie_after=90, alert_every_minutes=60)
    again = ensure_automations(alert_block=block, zombie_after=120, alert_every_minutes=30)
    assert first == again  # same ids: updated in place, not duplicated
    (zombie,) = _by_name(ZOMBIE_AUTOMATION)
    (stale,) = _by_name(STALE_AUTOMATION)
    assert zombie.trigger.within == timedelta(seconds=120)
    assert stale.trigger.within == timedelta(minutes=30)
    assert stale.actions[0].type == "send-notification"
    (rate,) = _by_name(ERROR_RATE_AUTOMATION)
    assert rate.trigger.expect == {"innsync.channel.error-rate"}
    assert rate.trigger.within == timedelta(minutes=30)
    with pytest.raises(ValueError):
        ensure_automations(alert_block="no-slash")


def test_without_a_block_the_alert_is_skipped(prefect_client_settings: PrefectServer) -> None:
    out = ensure_automations(alert_block="")
    assert out[STALE_AUTOMATION].startswith("skipped")
    assert out[ERROR_RATE_AUTOMATION].startswith("skipped")


def _state(run_id: Any) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state


def test_a_run_that_stops_heartbeating_is_marked_crashed(
        prefect_client_settings: PrefectServer) -> None:
    from prefect.client.orchestration import get_client
    from prefect.events import emit_event
    from prefect.states import Completed, Running

    upsert(zombie_automation(10))  # Prefect's minimum window, to keep the test short
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow(probe)
        dead = client.create_flow_run(probe, parameters={"x": 1})
        done = client.create_flow_run(probe, parameters={"x": 2})
        for run in (dead, done):
            client.set_flow_run_state(run.id, Running())
    assert flow_id
    for run in (dead, done):
        emit_event(event="prefect.flow-run.heartbeat",
                   resource={"prefect.resource.id": f"prefect.flow-run.{run.id}"})
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(done.id, Completed(), force=True)
    deadline = time.monotonic() + 90
    while not _state(dead.id).is_crashed():
        assert time.monotonic() < deadline, "the zombie run was not marked Crashed"
        time.sleep(1)
    assert "heartbeat" in (_state(dead.id).message or "")
    assert _state(done.id).is_completed()  # a run that ended in time is left alone


def test_a_stale_channel_notifies_through_the_block(  # type: ignore[no-untyped-def]
        prefect_client_settings: PrefectServer, receiver: tuple[str, list[Any]],
        committed) -> None:  # noqa: F811
    from flows.maintenance import maintenance
    from flows.runner import run_flow

    url, received = receiver
    ensure_automations(alert_block=_save_block(url), alert_every_minutes=60)
    hotel = make_hotel(committed, days=2, channels=(ChannelName.AIRBNB, ChannelName.AGODA))
    stale, fresh = hotel.channels[ChannelName.AIRBNB], hotel.channels[ChannelName.AGODA]
    committed.execute(text("UPDATE channels SET created_at = now() - interval '2 hours'"))
    committed.execute(text(
        "INSERT INTO channel_sync_logs (channel_id, operation, status, started_at, finished_at,"
        " error_messages) VALUES (:s, 'sync_bookings', 'success', now() - interval '40 minutes',"
        " now() - interval '40 minutes', '[]'), (:s, 'sync_bookings', 'failed',"
        " now() - interval '1 minute', now(), '[\"airbnb: HTTP 503\"]'), (:f, 'sync_bookings',"
        " 'success', now() - interval '1 minute', now(), '[]')"), {"s": stale, "f": fresh})
    committed.commit()
    out = run_flow(maintenance, stale_after_minutes=30)
    assert out.ok and out.value["stale"] == [stale]
    deadline = time.monotonic() + 90
    while not received:
        assert time.monotonic() < deadline, "no notification reached the block's endpoint"
        time.sleep(1)
    (note,) = received
    name = committed.execute(text("SELECT name FROM channels WHERE id = :i"), {"i": stale}).scalar()
    assert note["subject"] == f"innsync: {name} has stopped syncing"
    assert "no successful booking pull for 40 minutes" in note["body"]
    assert "failures in a row: 1" in note["body"] and "airbnb: HTTP 503" in note["body"]
    # A second stale event within the window sends nothing more.
    assert run_flow(maintenance, stale_after_minutes=30).value["stale"] == [stale]
    time.sleep(10)
    assert len(received) == 1


def test_a_high_error_rate_notifies_through_the_block(  # type: ignore[no-untyped-def]
        prefect_client_settings: PrefectServer, receiver: tuple[str, list[Any]],
        committed) -> None:  # noqa: F811
    """One failed pull in ten over the hour (never stale: the others succeed) reaches the
    operator's block, with the figures."""
    from flows.maintenance import maintenance
    from flows.runner import run_flow

    url, received = receiver
    ensure_automations(alert_block=_save_block(url), alert_every_minutes=60)
    hotel = make_hotel(committed, days=2, channels=(ChannelName.EXPEDIA,))
    cid = hotel.channels[ChannelName.EXPEDIA]
    committed.execute(text(
        "INSERT INTO channel_sync_logs (channel_id, operation, status, started_at, finished_at,"
        " error_messages) SELECT :c, 'sync_bookings', CASE WHEN m = 26 THEN 'failed' ELSE"
        " 'success' END, now() - make_interval(mins => m), now() - make_interval(mins => m),"
        " CAST(CASE WHEN m = 26 THEN '[\"expedia: 3201 Authentication error\"]' ELSE '[]'"
        " END AS jsonb)"
        " FROM generate_series(1, 50, 5) AS m"), {"c": cid})
    committed.commit()
    out = run_flow(maintenance, stale_after_minutes=30)
    assert out.ok and out.value["highErrorRate"] == [cid] and out.value["stale"] == []
    deadline = time.monotonic() + 90
    while not received:
        assert time.monotonic() < deadline, "no notification reached the block's endpoint"
        time.sleep(1)
    (note,) = received
    name = committed.execute(text("SELECT name FROM channels WHERE id = :i"), {"i": cid}).scalar()
    assert note["subject"] == f"innsync: {name}: 10% of booking pulls failed"
    assert "1 of 10 booking pulls failed in the last hour" in note["body"]


def test_up_start_crashes_runs_of_the_dead_serve_process(
        prefect_client_settings: PrefectServer) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Pending, Running, Scheduled

    from innsync.reaper import crash_orphan_flow_runs

    with get_client(sync_client=True) as client:
        running = client.create_flow_run(probe, state=Pending())
        client.set_flow_run_state(running.id, Running())
        pending = client.create_flow_run(probe, state=Pending())
        later = client.create_flow_run(probe, state=Scheduled())
    assert crash_orphan_flow_runs("restarted") >= 2
    assert _state(running.id).is_crashed() and _state(running.id).message == "restarted"
    assert _state(pending.id).is_crashed()
    assert _state(later.id).is_scheduled()  # future work is kept


def test_serve_restart_crashes_only_deployment_runs(
        prefect_client_settings: PrefectServer) -> None:
    """innsync up restarting a dead serve process frees its deployments' slots (their runs
    Crashed) and leaves flow runs started elsewhere (a CLI backup) alone."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed, Pending, Running

    from innsync.reaper import crash_orphan_flow_runs

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("probe-restart")
        deployment_id = client.create_deployment(flow_id=flow_id, name="restart-test")
        served = client.create_flow_run_from_deployment(deployment_id, state=Pending())
        client.set_flow_run_state(served.id, Running())
        cli_run = client.create_flow_run(probe, state=Pending())
        client.set_flow_run_state(cli_run.id, Running())
    assert crash_orphan_flow_runs("serve restarted", deployed_only=True) >= 1
    assert _state(served.id).is_crashed() and _state(served.id).message == "serve restarted"
    assert _state(cli_run.id).is_running()
    with get_client(sync_client=True) as client:  # leave nothing running for later tests
        client.set_flow_run_state(cli_run.id, Crashed(message="test done"), force=True)


def test_the_reaper_reads_flow_run_states(  # type: ignore[no-untyped-def]
        prefect_client_settings: PrefectServer, committed) -> None:  # noqa: F811
    from uuid import uuid4

    from prefect.client.orchestration import get_client
    from prefect.states import Failed, Running

    from db.repositories.sync_logs import start_log
    from innsync.reaper import reap

    with get_client(sync_client=True) as client:
        failed = client.create_flow_run(probe, state=Running())
        client.set_flow_run_state(failed.id, Failed(message="partner said no"), force=True)
        alive = client.create_flow_run(probe, state=Running())
    ids = {}
    for key, run_id in (("failed", failed.id), ("alive", alive.id), ("gone", uuid4())):
        ids[key] = start_log(committed, None, "sync_bookings", run_id)
    # Opened on another machine (a worker): only the server can tell; "gone" 10 min ago.
    committed.execute(text("UPDATE channel_sync_logs SET host = 'worker-2' "
                           "WHERE id = ANY(:ids)"), {"ids": list(ids.values())})
    committed.execute(text("UPDATE channel_sync_logs SET "
                           "started_at = now() - interval '10 minutes' WHERE id = :i"),
                      {"i": ids["gone"]})
    committed.commit()
    report = reap()
    assert set(report.sync_logs) == {ids["failed"], ids["gone"]}
    assert report.sync_logs[ids["failed"]].status == "failed"
    assert "partner said no" in report.sync_logs[ids["failed"]].reason
    assert report.sync_logs[ids["gone"]].status == "crashed"
    status = committed.execute(text("SELECT status FROM channel_sync_logs WHERE id = :i"),
                               {"i": ids["alive"]}).scalar()
    assert status == "running"  # its run is still Running
