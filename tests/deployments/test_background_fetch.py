"""A webhook's booking fetch goes to a Prefect task worker at once, and the booking cycle's
batches to pull workers (flows/background.py).

Real parts: a Prefect server subprocess, `python -m deployments.task_worker` as `innsync up`
starts it, the Airbnb simulator over HTTP, PostgreSQL; the webhook is posted to the API app.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.app import create_app
from channels.base import ChannelName
from channels.simulators.airbnb import confirmation_code, webhook_event
from channels.simulators.server import build_app, running_server
from tests.deployments.conftest import PrefectServer, clean_env, stop_group
from tests.ops.conftest import hung_partner  # noqa: F401 - fixture
from tests.sync.conftest import committed, make_hotel, point_channel_at  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.prefect_server


@pytest.fixture
def background(monkeypatch: pytest.MonkeyPatch,
               prefect_client_settings: PrefectServer) -> Iterator[PrefectServer]:
    """The API's settings as `innsync up` sets them: deployments and a task worker."""
    from innsync.settings import get_settings

    monkeypatch.setenv("INNSYNC_RUN_VIA_DEPLOYMENTS", "1")
    monkeypatch.setenv("INNSYNC_BACKGROUND_TASKS", "1")
    get_settings.cache_clear()
    yield prefect_client_settings
    get_settings.cache_clear()


def _start_worker(server: PrefectServer, log: Path,
                  tasks: str = "webhooks", **env: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "deployments.task_worker", "--tasks", tasks],
            env=clean_env(**server.client_env(),
                          INNSYNC_DATABASE_URL=os.environ["INNSYNC_DATABASE_URL"],
                          INNSYNC_HOME=os.environ["INNSYNC_HOME"], **env),
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def _eventually(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return check()


def _stored(session: Session, channel_id: int, code: str) -> bool:
    session.expire_all()
    return bool(session.execute(
        text("SELECT count(*) FROM channel_bookings WHERE channel_id = :c "
             "AND external_booking_id = :b"), {"c": channel_id, "b": code}).scalar_one())


def _event_status(session: Session, event_id: int) -> str:
    return str(session.execute(text("SELECT status FROM webhook_events WHERE id = :i"),
                               {"i": event_id}).scalar_one())


def _runs(flow_name: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))


def _task_runs(task_name: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    with get_client(sync_client=True) as client:
        return client.read_task_runs(
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=[task_name])))


def _states(name: str, read: Callable[[str], list[Any]]) -> list[str]:
    return [r.state_type.value if r.state_type else "" for r in read(name)]


def _task_run_state(task_run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_task_run(task_run_id)
    return run.state_type.value if run.state_type else ""


def test_a_pushed_booking_is_fetched_by_the_task_worker_and_survives_its_absence(
    background: PrefectServer, committed: Session, tmp_path: Path,  # noqa: F811 - fixture
) -> None:
    hotel = make_hotel(committed, units=20, days=120, channels=(ChannelName.AIRBNB,))
    committed.commit()
    cid = hotel.channels[ChannelName.AIRBNB]
    sim = build_app(ChannelName.AIRBNB, bookings=6, seed=5)
    codes = [confirmation_code(m.booking.booking_id) for m in sim.state.sim.queue.messages[:2]]
    log = tmp_path / "task-worker.log"

    def push(code: str) -> int:
        body, headers = webhook_event(sim, code, "reservation_created")
        with TestClient(create_app()) as api:
            resp = api.post("/api/webhooks/airbnb", content=body, headers=headers)
        assert resp.status_code == 202 and not resp.json()["duplicate"], resp.text
        return int(resp.json()["eventId"])

    with running_server(sim) as url:
        point_channel_at(committed, cid, url, apiKey="client-1", apiSecret="secret-value-1",
                         webhookSecret=sim.state.airbnb.webhook_secret)
        worker = _start_worker(background, log)
        try:
            event = push(codes[0])
            assert _eventually(lambda: _stored(committed, cid, codes[0]), 90), log.read_text()
            assert _eventually(lambda: _event_status(committed, event) == "processed", 10)
            # the event is marked inside the flow; its run and the task run end just after,
            # so the worker serves until both are reported (CI once stopped it in between)
            assert _eventually(lambda: _states("sync-booking-by-id", _runs) == ["COMPLETED"],
                               30), _states("sync-booking-by-id", _runs)
            assert _eventually(
                lambda: _states("fetch-pushed-booking", _task_runs) == ["COMPLETED"], 30)
        finally:
            stop_group(worker)
        fetches = _runs("sync-booking-by-id")
        assert len(fetches) == 1
        # run by the worker itself: no deployment, so no serve-process poll or process start
        assert fetches[0].deployment_id is None
        assert fetches[0].parameters["external_id"] == codes[0]

        # No worker serving: the event is committed and answered; the server holds the task
        # run until a worker subscribes, and then the booking is stored.
        event = push(codes[1])
        time.sleep(2)
        assert not _stored(committed, cid, codes[1])
        assert _event_status(committed, event) != "processed"
        worker = _start_worker(background, log)
        try:
            assert _eventually(lambda: _stored(committed, cid, codes[1]), 90), log.read_text()
            assert _eventually(lambda: _event_status(committed, event) == "processed", 10)
        finally:
            stop_group(worker)


def test_the_cycle_hands_its_batches_to_a_pull_worker(
    background: PrefectServer, committed: Session, tmp_path: Path,  # noqa: F811 - fixture
) -> None:
    """With pull workers serving, the every-minute cycle delays one background task per
    batch; a pull worker runs the pull-batch flow in its own process (no deployment, no new
    process) and the bookings are stored and acknowledged. A webhooks-only worker does not
    take pulls."""
    from flows.runner import run_flow
    from flows.scheduled import sync_all_bookings

    hotel = make_hotel(committed, units=20, days=400, channels=(ChannelName.BOOKING_COM,))
    committed.commit()
    cid = hotel.channels[ChannelName.BOOKING_COM]
    sim = build_app(ChannelName.BOOKING_COM, bookings=5, seed=9)
    log = tmp_path / "pull-worker.log"
    with running_server(sim) as url:
        point_channel_at(committed, cid, url)
        webhooks_only = _start_worker(background, log, "webhooks")
        try:
            out = run_flow(sync_all_bookings, dispatch_runs=True)
            assert out.ok, out.error
            [line] = out.value["channels"]
            assert line["state"] == "DISPATCHED" and line["task_run_id"]
            time.sleep(3)
            assert sim.state.sim.queue.stats()["pending"] == 5  # nobody took the batch
        finally:
            stop_group(webhooks_only)
        worker = _start_worker(background, log, "pulls")
        try:
            assert _eventually(lambda: sim.state.sim.queue.stats()["pending"] == 0, 90), \
                log.read_text()[-3000:]
            assert _eventually(lambda: _task_run_state(line["task_run_id"]) == "COMPLETED",
                               60), log.read_text()[-3000:]
        finally:
            stop_group(worker)
    committed.expire_all()
    assert committed.execute(text("SELECT count(*) FROM channel_bookings WHERE channel_id = :c"),
                             {"c": cid}).scalar_one() == 5
    [batch] = _runs("pull-batch")
    assert batch.deployment_id is None and batch.parameters["channel_ids"] == [cid]
    assert batch.state_type.value == "COMPLETED"


def test_a_pull_worker_killed_mid_batch_leaves_nothing_running(
    background: PrefectServer, committed: Session, tmp_path: Path,  # noqa: F811 - fixture
    hung_partner: str,  # noqa: F811 - fixture
) -> None:
    """A pull worker killed (SIGKILL) while its batch waits on a partner: Prefect has no
    heartbeat for task runs, so the batch's task run would show Running for ever. The
    reaper leaves a Running task run younger than its bound alone (its worker may be alive)
    and sets one past it Crashed; the batch's sync log is closed `crashed` (its process is
    gone)."""
    from datetime import timedelta

    from flows.runner import run_flow
    from flows.scheduled import sync_all_bookings
    from innsync.reaper import crash_overdue_task_runs, reap

    hotel = make_hotel(committed, units=20, days=30, channels=(ChannelName.BOOKING_COM,))
    committed.commit()
    cid = hotel.channels[ChannelName.BOOKING_COM]
    point_channel_at(committed, cid, hung_partner)
    log = tmp_path / "pull-worker.log"
    worker = _start_worker(background, log, "pulls", INNSYNC_PARTNER_TIMEOUT="120")
    try:
        out = run_flow(sync_all_bookings, dispatch_runs=True)
        assert out.ok, out.error
        [line] = out.value["channels"]
        task_run = line["task_run_id"]
        assert _eventually(lambda: _task_run_state(task_run) == "RUNNING", 60), \
            log.read_text()[-3000:]

        def running_log() -> bool:
            committed.expire_all()
            found = committed.execute(text(
                "SELECT count(*) FROM channel_sync_logs WHERE channel_id = :c "
                "AND status = 'running'"), {"c": cid}).scalar_one()
            committed.rollback()
            return bool(found)

        assert _eventually(running_log, 60), log.read_text()[-3000:]
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert crash_overdue_task_runs() == 0  # younger than its bound: may still be working
    assert _task_run_state(task_run) == "RUNNING"
    report = reap()
    assert [v.status for v in report.sync_logs.values()] == ["crashed"]
    time.sleep(1.5)
    assert crash_overdue_task_runs(timedelta(seconds=1)) == 1
    assert _task_run_state(task_run) == "CRASHED"
    assert crash_overdue_task_runs(timedelta(seconds=1)) == 0  # final now: left alone


def test_an_api_sync_runs_at_once_on_the_task_worker_and_waits_for_one(
    background: PrefectServer, committed: Session, tmp_path: Path,  # noqa: F811 - fixture
) -> None:
    """`POST /api/channels/{id}/sync-bookings?wait=true` under `innsync up`: the flow run is
    created by the API (its id answered) and run by the webhook/API task worker in its warm
    process, not by a deployment's new process; the answer carries the run's counts. With
    no worker serving, the call answers 202 within its wait bound and the run goes as soon as
    a worker subscribes."""
    from api.auth import create_api_key
    from innsync.settings import get_settings

    hotel = make_hotel(committed, units=20, days=400, channels=(ChannelName.BOOKING_COM,))
    key = create_api_key(committed, "t-operator", "operator")[1]
    committed.commit()
    cid = hotel.channels[ChannelName.BOOKING_COM]
    sim = build_app(ChannelName.BOOKING_COM, bookings=7, seed=3)
    log = tmp_path / "task-worker.log"
    headers = {"X-API-Key": key}
    with running_server(sim) as url:
        point_channel_at(committed, cid, url)
        worker = _start_worker(background, log)
        try:
            with TestClient(create_app()) as api:
                resp = api.post(f"/api/channels/{cid}/sync-bookings?wait=true", json={},
                                headers=headers)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert body["success"] and body["finished"], body
            assert body["recordsSuccess"] >= 7 and sim.state.sim.queue.stats()["pending"] == 0
            assert _eventually(
                lambda: _states("run-started-flow", _task_runs) == ["COMPLETED"], 30)
        finally:
            stop_group(worker)
        [run] = _runs("sync-bookings")
        assert str(run.id) == body["flowRunId"]
        assert run.deployment_id is None  # the worker ran it: no deployment, no new process

        sim.state.sim.book(3, changes=False)
        os.environ["INNSYNC_API_WAIT_SECONDS"] = "2"
        get_settings.cache_clear()
        try:
            with TestClient(create_app()) as api:
                resp = api.post(f"/api/channels/{cid}/sync-bookings?wait=true", json={},
                                headers=headers)
                assert resp.status_code == 202, resp.text
                location = resp.headers["Location"]
                worker = _start_worker(background, log)
                try:
                    assert _eventually(
                        lambda: api.get(location, headers=headers).json()["finished"], 90), \
                        log.read_text()[-3000:]
                    done = api.get(location, headers=headers).json()
                finally:
                    stop_group(worker)
        finally:
            del os.environ["INNSYNC_API_WAIT_SECONDS"]
            get_settings.cache_clear()
        assert done["success"] and done["recordsSuccess"] >= 3, done
        assert sim.state.sim.queue.stats()["pending"] == 0


def test_a_started_run_the_worker_cannot_run_ends_failed_not_pending(
    background: PrefectServer,
) -> None:
    """The worker runs only declared on-demand flows; a run handed over with anything else
    is marked failed (a caller following its state gets an answer) and the task fails."""
    from prefect.client.orchestration import get_client

    from flows.background import run_started_flow
    from flows.channel_sync import sync_bookings

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(sync_bookings, parameters={"channel_id": 1})
    with pytest.raises(LookupError, match="no on-demand flow"):
        run_started_flow.fn("flows/queue.py:process_queue", run.id, {"channel_id": 1})
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state is not None and state.is_failed() and "no on-demand flow" in (state.message or "")
