"""The reaper against real processes and rows: a killed run leaves nothing `running`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import text

from innsync.reaper import (
    UNKNOWN,
    Owned,
    RunInfo,
    judge,
    process_alive,
    process_started_at,
    reap,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = socket.gethostname()


@pytest.fixture
def backup_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from innsync.settings import get_settings

    root = tmp_path / "backups"
    root.mkdir()
    monkeypatch.setenv("INNSYNC_BACKUP_ROOT", str(root))
    get_settings.cache_clear()
    yield root
    get_settings.cache_clear()


def _hold(root: Path, scratch: Path) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ops.hold_run", str(root), str(scratch)],
        cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line and line[0] == "ready", f"hold_run did not start: {line}"
    return proc, line[1:]


def _status(committed, table: str, row_id: int) -> tuple[str, object]:  # type: ignore[no-untyped-def]
    column = "error_messages" if table == "channel_sync_logs" else "error_message"
    row = committed.execute(text(f"SELECT status, {column} AS err FROM {table} WHERE id = :i"),
                            {"i": row_id}).one()
    committed.rollback()
    return row.status, row.err


def test_a_killed_run_is_reaped_with_its_files(committed, backup_root: Path,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    killed, (log_id, backup_id, path, work) = _hold(backup_root, scratch)
    alive, (live_log, live_backup, live_path, live_work) = _hold(backup_root, scratch)
    try:
        assert list(Path(path).glob(".*.partial")), "the held process writes a .partial file"
        # While both live, the reaper leaves everything alone.
        report = reap(str(scratch), scratch_idle=timedelta(0))
        assert int(log_id) not in report.sync_logs and int(backup_id) not in report.backups
        assert Path(work).exists()
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        report = reap(str(scratch), scratch_idle=timedelta(0))
        assert set(report.sync_logs) == {int(log_id)}
        assert set(report.backups) == {int(backup_id)}
        status, errors = _status(committed, "channel_sync_logs", int(log_id))
        assert status == "crashed"
        assert f"pid {killed.pid}" in errors[-1]  # type: ignore[index]
        status, error = _status(committed, "system_backups", int(backup_id))
        assert status == "failed" and "crashed" in str(error) and str(killed.pid) in str(error)
        assert not Path(path).exists(), "the half-written backup directory is removed"
        assert not Path(work).exists(), "the killed process's scratch directory is removed"
        # The living process keeps its rows, its files and its scratch directory.
        assert _status(committed, "channel_sync_logs", int(live_log))[0] == "running"
        assert _status(committed, "system_backups", int(live_backup))[0] == "running"
        assert Path(live_path).exists() and Path(live_work).exists()
        # A second pass finds nothing more to do.
        again = reap(str(scratch), scratch_idle=timedelta(0))
        assert not again.sync_logs and not again.backups and not again.removed_paths
    finally:
        for proc in (killed, alive):
            proc.kill()
            proc.wait()


def test_a_row_that_finished_meanwhile_is_not_reopened(committed) -> None:  # type: ignore[no-untyped-def]
    from db.repositories.sync_logs import close_unfinished, finish_log, start_log

    log_id = start_log(committed, None, "sync_bookings", None)
    finish_log(committed, log_id, processed=1, success=1, failed=0, errors=[])
    committed.commit()
    assert close_unfinished(committed, log_id, "crashed", "late") is False
    committed.commit()
    assert _status(committed, "channel_sync_logs", log_id)[0] == "success"
    with pytest.raises(ValueError):
        close_unfinished(committed, log_id, "success", "not a reaper status")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _owned(**kw) -> Owned:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    base = {"flow_run_id": uuid4(), "host": HERE, "pid": os.getpid(),
            "started_at": now - timedelta(seconds=10), "now": now}
    return Owned.model_validate({**base, **kw})


def test_verdicts() -> None:
    running = RunInfo(state_type="RUNNING", state_name="Running")
    # Alive local owner, running flow run: leave it.
    assert judge(_owned(), running, HERE) is None
    # Dead local owner: crashed, whatever Prefect still shows.
    dead = judge(_owned(pid=_dead_pid()), running, HERE)
    assert dead is not None and dead.status == "crashed" and dead.owner_dead
    # Prefect says the run ended: crashed or failed with its state and message (for an owner
    # on another host; a local owner that still runs is not judged on Prefect's word).
    zombie = RunInfo(state_type="CRASHED", state_name="Crashed", message="missing heartbeats")
    assert judge(_owned(), zombie, HERE) is None
    crashed = judge(_owned(host="worker-2"), zombie, HERE)
    assert crashed is not None and crashed.status == "crashed"
    assert "missing heartbeats" in crashed.reason
    timed_out = judge(_owned(host="worker-2"),
                      RunInfo(state_type="FAILED", state_name="TimedOut",
                              message="Flow run exceeded timeout of 300.0 second(s)"), HERE)
    assert timed_out is not None and timed_out.status == "failed"
    assert "TimedOut" in timed_out.reason and not timed_out.owner_dead
    # Another host's row whose run the server no longer knows: crashed after a grace.
    now = datetime.now(UTC)
    young = _owned(host="elsewhere", started_at=now - timedelta(seconds=30), now=now)
    assert judge(young, None, HERE) is None
    old = _owned(host="elsewhere", started_at=now - timedelta(minutes=10), now=now)
    gone = judge(old, None, HERE)
    assert gone is not None and gone.status == "crashed" and "no longer exists" in gone.reason
    # A live local owner past its time bound is closed too.
    init_started = process_started_at(1)  # pid 1 has run since boot: a long-lived owner
    assert init_started is not None
    opened = datetime.fromtimestamp(init_started, UTC) + timedelta(minutes=1)
    stuck = judge(_owned(pid=1, started_at=opened, now=opened + timedelta(hours=1)), running,
                  HERE, timedelta(minutes=5))
    assert stuck is not None and stuck.status == "failed" and not stuck.owner_dead
    # No Prefect server to ask, owner on another host: only the time bound decides.
    assert judge(old, UNKNOWN, HERE, timedelta(minutes=20)) is None
    overdue = judge(_owned(host="elsewhere", started_at=now - timedelta(hours=1), now=now),
                    UNKNOWN, HERE, timedelta(minutes=5))
    assert overdue is not None and overdue.status == "failed" and "time bound" in overdue.reason


def test_a_reused_pid_is_not_the_owner() -> None:
    # This process started before "now": it owns rows opened now, not rows opened an hour ago.
    assert process_alive(os.getpid(), datetime.now(UTC))
    assert not process_alive(os.getpid(), datetime.now(UTC) - timedelta(days=400))
    assert not process_alive(_dead_pid())


def test_a_cancelled_backup_run_closes_its_record_and_files(committed, backup_root: Path) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from db.backup import records
    from flows.backup import close_backup_hook

    run_id, other_run = uuid4(), uuid4()
    rows = []
    for fr in (run_id, other_run):
        row = records.create_record(committed, location=str(backup_root), created_by="t",
                                    backup_type="full", parent_id=None, flow_run_id=fr,
                                    options={})
        path = backup_root / f"b-{row.id}"
        path.mkdir()
        (path / ".reservations.parquet.partial").write_bytes(b"half")
        records.set_path(committed, row.id, str(path))
        rows.append((row.id, path))
    committed.commit()
    state = SimpleNamespace(name="Cancelled", message="cancelled in the UI")
    close_backup_hook(None, SimpleNamespace(id=run_id), state)
    (mine, mine_path), (other, other_path) = rows
    status, error = _status(committed, "system_backups", mine)
    assert status == "failed" and error == "flow run Cancelled: cancelled in the UI"
    assert not mine_path.exists()
    assert _status(committed, "system_backups", other)[0] == "running" and other_path.exists()


@pytest.mark.usefixtures("prefect_server")
def test_a_killed_sync_flow_is_reaped_and_its_run_crashed(  # type: ignore[no-untyped-def]
        committed, hung_partner: str) -> None:
    """A real sync-bookings flow, in its own process, stuck on a partner that never answers,
    killed with SIGKILL mid-run: its sync log and its Prefect flow run end Crashed."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from channels.base import ChannelName
    from tests.sync.conftest import make_hotel, point_channel_at

    hotel = make_hotel(committed, days=2, channels=(ChannelName.AGODA,))
    committed.commit()
    cid = hotel.channels[ChannelName.AGODA]
    point_channel_at(committed, cid, hung_partner)
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()),
           "INNSYNC_PARTNER_TIMEOUT": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from flows.runner import run_flow; "
         "from flows.channel_sync import sync_bookings; "
         f"run_flow(sync_bookings, channel_id={cid})"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        row = None
        while row is None:
            assert time.monotonic() < deadline and proc.poll() is None, "the flow never started"
            row = committed.execute(text(
                "SELECT id, flow_run_id, pid FROM channel_sync_logs "
                "WHERE channel_id = :c AND status = 'running'"), {"c": cid}).first()
            committed.rollback()
            time.sleep(0.3)
        assert row.pid == proc.pid and row.flow_run_id is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        report = reap()
    finally:
        proc.kill()
        proc.wait()
    assert report.sync_logs[row.id].status == "crashed"
    assert _status(committed, "channel_sync_logs", row.id)[0] == "crashed"
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(row.flow_run_id).state
    assert state is not None and state.is_crashed()
    assert report.crashed_flow_runs == 1


def test_result_files_past_the_retention_are_deleted_hourly(tmp_path: Path) -> None:
    """innsync up persists every flow result (~10,000 files a day): the maintenance flow
    deletes those older than the flow-run retention, walking the store at most hourly."""
    import os
    import time
    from datetime import timedelta

    from innsync.reaper import PRUNE_MARKER, prune_result_files

    now = time.time()
    old, fresh = tmp_path / "old-result", tmp_path / "fresh-result"
    for path, age_days in ((old, 8), (fresh, 6)):
        path.write_text("{}")
        os.utime(path, (now - age_days * 86400,) * 2)
    (tmp_path / "a-directory").mkdir()
    week = timedelta(days=7)
    assert prune_result_files(tmp_path, week, now=now) == 1
    assert not old.exists() and fresh.exists() and (tmp_path / "a-directory").is_dir()
    # Within the hour: not walked again, even though `fresh` has aged past the retention.
    os.utime(fresh, (now - 9 * 86400,) * 2)
    assert prune_result_files(tmp_path, week, now=now + 600) is None
    assert fresh.exists()
    assert prune_result_files(tmp_path, week, now=now + 3601) == 1
    assert not fresh.exists() and (tmp_path / PRUNE_MARKER).exists()
    assert prune_result_files(tmp_path / "missing", week, now=now) is None


def test_every_run_reads_every_page_before_any_is_changed() -> None:
    """The reaper reads all stuck runs first (page by page, the server caps a page at 200),
    then changes them: changing one moves it out of the filter and would shift the pages."""
    from types import SimpleNamespace

    from innsync.reaper import PAGE, every_run

    stored = [SimpleNamespace(id=i) for i in range(2 * PAGE + 50)]
    offsets: list[int] = []

    def read(offset: int) -> list[SimpleNamespace]:
        offsets.append(offset)
        # a run added meanwhile shifts the next page by one: it is seen twice, kept once
        shift = 1 if offset else 0
        return stored[max(0, offset - shift):offset - shift + PAGE]

    runs = every_run(read)
    assert [r.id for r in runs] == list(range(2 * PAGE + 50))
    assert offsets == [0, PAGE, 2 * PAGE]
    assert every_run(lambda offset: []) == []


@pytest.mark.usefixtures("prefect_server")
def test_a_restart_crashes_every_running_background_task_run_and_nothing_else() -> None:
    """`innsync up` restarting its own Prefect server: every background task run still
    Running belongs to a worker of the last run, which is gone; they are set Crashed at
    once, whatever their age, on-demand flows carried by the webhook worker included; a task
    run of any other task, and a final one, are left alone."""
    from prefect import task
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Running

    from innsync.reaper import crash_overdue_task_runs

    @task(name="run-started-flow")
    def carried() -> None: ...

    @task(name="pull-channel-batch")
    def batch() -> None: ...

    @task(name="fetch-pushed-booking")
    def pushed() -> None: ...

    @task(name="somebody-elses-task")
    def other() -> None: ...

    with get_client(sync_client=True) as client:
        def make(t: object, state: object, counter: bool = True) -> str:
            # named as Prefect names background task runs: the task's name, and a counter
            # when delayed inside a flow run (the cycle's batches), none when not (the API's)
            name = f"{t.name}-3" if counter else t.name  # type: ignore[attr-defined]
            run = client.create_task_run(t, flow_run_id=None, dynamic_key=uuid4().hex,  # type: ignore[arg-type]
                                         name=name, state=state)  # type: ignore[arg-type]
            return str(run.id)

        runs = {"carried": make(carried, Running(), counter=False),
                "batch": make(batch, Running()), "other": make(other, Running()),
                "done": make(batch, Completed())}

        def state(key: str) -> str:
            run = client.read_task_run(runs[key])
            return run.state.type.value if run.state else "NONE"

        assert crash_overdue_task_runs() == 0  # young: their workers may be alive
        # a webhook's fetch (delayed by the API: no counter) past its bound is reaped
        # without a restart; the API's on-demand flows have no bound of their own
        runs["pushed"] = make(pushed, Running(), counter=False)
        time.sleep(1.2)
        assert crash_overdue_task_runs(timedelta(seconds=1)) >= 2
        assert {k: state(k) for k in ("pushed", "batch", "carried")} == {
            "pushed": "CRASHED", "batch": "CRASHED", "carried": "RUNNING"}
        assert crash_overdue_task_runs(every=True) >= 1
        assert {k: state(k) for k in runs} == {
            "carried": "CRASHED", "batch": "CRASHED", "other": "RUNNING", "done": "COMPLETED",
            "pushed": "CRASHED"}
        message = client.read_task_run(runs["batch"]).state.message  # type: ignore[union-attr]
        assert "task worker" in (message or "")
