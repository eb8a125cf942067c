"""The reaper: nothing stays `running` past its run.

A `channel_sync_logs` or `system_backups` row is opened `running` by the process doing the
work (its host and pid are on the row) and closed by that process. When the process dies
(kill -9, OOM, power), or its Prefect flow run ended without closing the row (a timeout
cancelled the flow between two statements), the row would stay `running` forever. The
reaper closes such rows with the reason:

- the owning process is gone (same host, pid dead or reused)  -> `crashed`
  (while it lives, only the time bound below can close its row);
- the row's Prefect flow run is Crashed                         -> `crashed`;
- the flow run ended otherwise (Failed, TimedOut, Cancelled, even Completed) -> `failed`;
- the flow run no longer exists on the Prefect server (and the owner is on another host,
  so its process cannot be checked)                             -> `crashed`;
- a sync log older than its operation's time bound plus a grace -> `failed`.

A background task run (flows/background.py: a pull batch, a webhook's fetch) still Running
past its flow's time bound lost its task worker; it is set Crashed (Prefect has no task-run
heartbeat).

A reaped backup's directory (a backup without manifest, `.partial` files) is removed, and
restore/verify scratch directories no process uses any more are deleted. The Prefect flow
run of a dead local owner is set Crashed too, so it stops holding a concurrency slot.

Runs at `innsync up` start and in every `maintenance` flow run (flows/maintenance.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel

log = logging.getLogger(__name__)

#: A pid whose process started this long after the row was opened is another process.
PID_START_SLACK = timedelta(seconds=30)
#: A flow run the Prefect server does not know is reaped only after this (it may be young).
MISSING_RUN_GRACE = timedelta(minutes=2)
#: Sync logs live at most their operation's time bound plus this.
OVERDUE_GRACE = timedelta(minutes=5)
#: Prefixes of the scratch directories restore/verify/incremental create under the temp dir.
SCRATCH_PREFIXES = ("innsync-restore-", "innsync-incr-")
#: A scratch directory nobody has open is left alone until untouched for this long.
SCRATCH_IDLE = timedelta(minutes=5)
#: Operations bounded by the ARI timeout (everything else by the sync timeout).
ARI_OPERATIONS = frozenset({"push_availability", "push_rates", "full_ari_sync", "push_values"})
FINAL_TYPES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})


class RunInfo(BaseModel):
    """What the Prefect server says about a flow run."""

    state_type: str
    state_name: str
    message: str | None = None

    @property
    def final(self) -> bool:
        return self.state_type in FINAL_TYPES


class Owned(BaseModel):
    """The part of a running row the verdict needs."""

    flow_run_id: UUID | None
    host: str | None
    pid: int | None
    started_at: datetime
    now: datetime


@dataclass(frozen=True)
class Verdict:
    """How a running row is closed, and why."""

    status: str  # crashed | failed
    reason: str
    #: The owning process is known dead: its Prefect run (if still running) is a zombie.
    owner_dead: bool = False


#: `lookup` found no Prefect server to ask.
UNKNOWN = object()


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def process_started_at(pid: int) -> float | None:
    """Epoch seconds when `pid` started (Linux /proc), None when unknown."""
    boot = _boot_time()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    if boot is None:
        return None
    ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, not_started_after: datetime | None = None) -> bool:
    """True while `pid` runs (not a zombie) and, given a time, started no later than it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True  # no /proc: the signal check is all we have
    if state in {"Z", "X"}:
        return False
    if not_started_after is not None:
        started = process_started_at(pid)
        if started is not None and started > (not_started_after + PID_START_SLACK).timestamp():
            return False  # the pid was reused by a younger process
    return True


def judge(row: Owned, run: RunInfo | None | object, here: str,
          max_age: timedelta | None = None) -> Verdict | None:
    """The verdict on one running row; None while its run may still be going.

    `run` is the flow run's info, None when the Prefect server does not know the run, or
    UNKNOWN when no server could be asked.
    """
    local_owner = row.host == here and row.pid is not None
    age = row.now - row.started_at
    if local_owner:
        assert row.pid is not None
        if not process_alive(row.pid, row.started_at):
            return Verdict("crashed", f"the process that ran it (pid {row.pid} on {row.host}) "
                                      "ended without closing it", owner_dead=True)
        # Its process still runs: only the time bound can end it. Prefect's word is not
        # enough (a run marked Crashed for missing heartbeats may still be working).
        if max_age is not None and age > max_age + OVERDUE_GRACE:
            return _overdue(age, max_age)
        return None
    if isinstance(run, RunInfo) and run.final:
        detail = f": {run.message}" if run.message else ""
        status = "crashed" if run.state_type == "CRASHED" else "failed"
        return Verdict(status, f"its flow run ended {run.state_name}{detail}"[:1000])
    if run is None and row.flow_run_id is not None and age > MISSING_RUN_GRACE:
        return Verdict("crashed", f"its flow run {row.flow_run_id} no longer exists")
    if max_age is not None and age > max_age + OVERDUE_GRACE:
        return _overdue(age, max_age)
    return None


def _overdue(age: timedelta, max_age: timedelta) -> Verdict:
    return Verdict("failed", f"still running {int(age.total_seconds())} s after it started, "
                             f"past its {int(max_age.total_seconds())} s time bound")


def flow_run_infos(ids: Iterable[UUID]) -> dict[UUID, RunInfo] | object:
    """Info of the given flow runs from the configured Prefect server (UNKNOWN without one)."""
    wanted = sorted(set(ids), key=str)
    if not wanted:
        return {}
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        return UNKNOWN  # no server: an ephemeral one would not know these runs anyway
    try:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=wanted)),
                limit=len(wanted),
            )
    except Exception as exc:  # server down: decide on process checks only
        log.warning("reaper: the Prefect server did not answer (%s)", exc)
        return UNKNOWN
    out: dict[UUID, RunInfo] = {}
    for run in runs:
        state = run.state
        out[run.id] = RunInfo(
            state_type=state.type.value if state else "PENDING",
            state_name=state.name if state and state.name else "?",
            message=state.message if state else None,
        )
    return out


def crash_flow_runs(ids: Iterable[UUID], reason: str) -> int:
    """Set still-running Prefect flow runs Crashed (their process is known dead)."""
    wanted = list(set(ids))
    if not wanted:
        return 0
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        return 0
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    done = 0
    try:
        with get_client(sync_client=True) as client:
            for run_id in wanted:
                run = client.read_flow_run(run_id)
                if run.state is None or run.state.is_final():
                    continue
                client.set_flow_run_state(run_id, Crashed(message=reason), force=True)
                done += 1
    except Exception as exc:
        log.warning("reaper: could not mark flow runs crashed (%s)", exc)
    return done


#: Background task runs (flows/background.py) bounded by the sync time bound: a live task
#: worker ends them when the flow they carry ends. `run-started-flow` is not among them: it
#: carries any on-demand flow, backups (no time bound) included; its flow run is judged by
#: the zombie-run automation.
BOUNDED_TASKS = ("pull-channel-batch", "fetch-pushed-booking")


def _task_bound() -> timedelta:
    from innsync.settings import get_settings

    return timedelta(seconds=get_settings().batch_run_timeout_seconds) + OVERDUE_GRACE


def _is_run_of(run_name: str, tasks: set[str]) -> bool:
    """A background task run is named after its task, with a counter when it was delayed
    inside a flow run (`pull-channel-batch-3`, from the cycle) and without one when it was
    not (`run-started-flow`, delayed by the API)."""
    return any(run_name == name or run_name.startswith(f"{name}-") for name in tasks)


def crash_overdue_task_runs(bound: timedelta | None = None, *, every: bool = False) -> int:
    """Set Crashed the background task runs still Running past their time bound: their task
    worker died (kill -9, OOM, a machine gone), and Prefect has no heartbeat for task runs,
    so they would show Running for ever. `every`: every Running background task run, any
    age (`innsync up` restarting its own server: every worker of the last run is gone)."""
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        return 0
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import TaskRunSort
    from prefect.states import Crashed

    limit = bound or _task_bound()
    names = {*BOUNDED_TASKS, *(["run-started-flow"] if every else [])}
    stuck = TaskRunFilter(
        state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.RUNNING])))
    now = datetime.now(UTC)
    reason = ("innsync: the task worker that ran this is gone" if every else
              f"innsync reaper: still Running {int(limit.total_seconds())} s after it "
              "started, past its flow's time bound: its task worker is gone")
    crashed = 0
    with get_client(sync_client=True) as client:
        for run in every_run(lambda offset: client.read_task_runs(
                task_run_filter=stuck, sort=TaskRunSort.ID_DESC, limit=PAGE, offset=offset)):
            if not _is_run_of(run.name, names):
                continue
            # Running since its state's timestamp (a background task run may carry no
            # start time).
            since = run.state.timestamp if run.state is not None else None
            if not every and (since is None or now - since < limit):
                continue
            client.set_task_run_state(run.id, Crashed(message=reason), force=True)
            crashed += 1
            log.warning("reaper: task run %s (%s) -> Crashed", run.id, run.name)
    return crashed


#: Runs read per Prefect API call (the server's default cap).
PAGE = 200
RunT = TypeVar("RunT", bound=Any)


def every_run(read: Callable[[int], list[RunT]]) -> list[RunT]:
    """Every run a filtered read (`read(offset)`, sorted by id) returns, read page by page
    before any of them is changed (changing a run's state moves it out of the filter, and
    the pages after it would shift)."""
    runs: dict[Any, RunT] = {}
    offset = 0
    while page := read(offset):
        runs.update((run.id, run) for run in page)
        offset += len(page)
        if len(page) < PAGE:
            break
    return list(runs.values())


def _max_age(operation: str) -> timedelta:
    from innsync.settings import get_settings

    settings = get_settings()
    seconds = (settings.ari_run_timeout_seconds if operation in ARI_OPERATIONS
               else settings.sync_run_timeout_seconds)
    return timedelta(seconds=seconds)


@dataclass
class ReapReport:
    """What one reaper pass did."""

    sync_logs: dict[int, Verdict] = field(default_factory=dict)
    backups: dict[int, Verdict] = field(default_factory=dict)
    removed_paths: list[str] = field(default_factory=list)
    crashed_flow_runs: int = 0
    crashed_task_runs: int = 0


def reap(scratch_dir: str | None = None, scratch_idle: timedelta = SCRATCH_IDLE) -> ReapReport:
    """One pass over every running sync log and backup, then the scratch directories."""
    from db.backup import records
    from db.engine import session_scope
    from db.repositories.sync_logs import close_unfinished, running_logs

    here = socket.gethostname()
    report = ReapReport()
    with session_scope() as session:
        logs = running_logs(session)
        backups = [(Owned(flow_run_id=b.flow_run_id, host=b.host, pid=b.pid,
                          started_at=b.created_at, now=now), b.id, b.file_path)
                   for b, now in records.running_records(session)]
    infos = flow_run_infos([r.flow_run_id for r in logs if r.flow_run_id]
                           + [o.flow_run_id for o, _, _ in backups if o.flow_run_id])
    zombies: set[UUID] = set()

    def info_of(run_id: UUID | None) -> RunInfo | None | object:
        if infos is UNKNOWN or run_id is None:
            return UNKNOWN
        assert isinstance(infos, dict)
        return infos.get(run_id)

    for row in logs:
        owned = Owned.model_validate(row.model_dump())
        verdict = judge(owned, info_of(row.flow_run_id), here, _max_age(row.operation))
        if verdict is None:
            continue
        with session_scope() as session:
            if close_unfinished(session, row.id, verdict.status, verdict.reason):
                report.sync_logs[row.id] = verdict
                log.warning("reaper: sync log %s -> %s (%s)", row.id, verdict.status,
                            verdict.reason)
        if verdict.owner_dead and row.flow_run_id:
            zombies.add(row.flow_run_id)
    for owned, backup_id, file_path in backups:
        verdict = judge(owned, info_of(owned.flow_run_id), here)
        if verdict is None:
            continue
        with session_scope() as session:
            closed = records.mark_failed(session, backup_id,
                                         f"{verdict.status}: {verdict.reason}", only_running=True)
        if not closed:
            continue
        report.backups[backup_id] = verdict
        log.warning("reaper: backup %s -> failed (%s)", backup_id, verdict.reason)
        if verdict.owner_dead and owned.flow_run_id:
            zombies.add(owned.flow_run_id)
        if file_path and remove_backup_files(file_path):
            report.removed_paths.append(file_path)
    if zombies:
        report.crashed_flow_runs = crash_flow_runs(
            zombies, "innsync reaper: the process running this flow run is gone")
    try:
        report.crashed_task_runs = crash_overdue_task_runs()
    except Exception as exc:  # the next pass tries again
        log.warning("reaper: could not check background task runs (%s)", exc)
    report.removed_paths += remove_stray_scratch(scratch_dir, scratch_idle)
    return report


def remove_backup_files(file_path: str) -> bool:
    """Delete a reaped backup's directory (no manifest: unusable), inside allowed roots only."""
    from db.backup.storage import Store, resolve_backup_path
    from innsync.settings import get_settings

    settings = get_settings()
    try:
        path = resolve_backup_path(file_path, settings.resolved_backup_root,
                                   settings.backup_remotes)
        store = Store.open(path)
        if not store.fs.exists(store.path):
            return False
        store.remove()
    except Exception as exc:  # the row already says failed; leave the files, say why
        log.warning("reaper: could not remove %s (%s)", file_path, exc)
        return False
    return True


def _open_paths() -> set[str]:
    """Paths some process has open or as its working directory (Linux /proc)."""
    seen: set[str] = set()
    proc = Path("/proc")
    if not proc.is_dir():
        return seen
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            seen.add(os.readlink(entry / "cwd"))
            for fd in (entry / "fd").iterdir():
                try:
                    seen.add(os.readlink(fd))
                except OSError:
                    continue
        except OSError:
            continue
    return seen


def _newest_mtime(path: Path) -> float:
    newest = path.stat().st_mtime
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
            except OSError:
                continue
    return newest


def remove_stray_scratch(scratch_dir: str | None = None,
                         idle: timedelta = SCRATCH_IDLE) -> list[str]:
    """Delete restore/verify scratch directories that no process has open and nobody
    touched for `idle` (a killed restore leaves them behind)."""
    base = Path(scratch_dir or tempfile.gettempdir())
    candidates = [p for p in base.iterdir() if p.is_dir() and p.name.startswith(SCRATCH_PREFIXES)] \
        if base.is_dir() else []
    if not candidates:
        return []
    in_use = _open_paths()
    removed = []
    for path in candidates:
        prefix = str(path) + os.sep
        if any(p == str(path) or p.startswith(prefix) for p in in_use):
            continue
        try:
            if time.time() - _newest_mtime(path) < idle.total_seconds():
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
        log.warning("reaper: removed stray scratch directory %s", path)
    return removed


def crash_orphan_flow_runs(reason: str, *, deployed_only: bool = False) -> int:
    """Set every Pending/Running/Cancelling flow run Crashed. Only for a Prefect server whose
    runs are all executed by processes known dead (`innsync up` restarting its own server
    before it starts the serve process); they would hold concurrency slots forever.
    `deployed_only`: just the runs of deployments (what a dead serve process was executing;
    a CLI's own flow runs on the same server are left alone)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.states import Crashed

    stuck = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
        any_=[StateType.PENDING, StateType.RUNNING, StateType.CANCELLING])))
    crashed = 0
    with get_client(sync_client=True) as client:
        for run in every_run(lambda offset: client.read_flow_runs(
                flow_run_filter=stuck, sort=FlowRunSort.ID_DESC, limit=PAGE, offset=offset)):
            if deployed_only and run.deployment_id is None:
                continue
            client.set_flow_run_state(run.id, Crashed(message=reason), force=True)
            crashed += 1
    return crashed


# ---------------------------------------------------------------- Prefect result files

#: The result store is walked at most this often (the maintenance flow runs every minute).
PRUNE_EVERY = timedelta(hours=1)
PRUNE_MARKER = ".innsync-pruned"


def prune_result_files(storage: Path, max_age: timedelta, *, every: timedelta = PRUNE_EVERY,
                       now: float | None = None) -> int | None:
    """Delete Prefect's persisted result files older than `max_age` (by then the server's
    vacuum has deleted their flow runs; innsync up persists every result, ~10,000 files a
    day). At most once per `every` (a marker file's time); None when not due."""
    now = time.time() if now is None else now
    marker = storage / PRUNE_MARKER
    try:
        if now - marker.stat().st_mtime < every.total_seconds():
            return None
    except FileNotFoundError:
        pass
    if not storage.is_dir():
        return None
    cutoff = now - max_age.total_seconds()
    removed = 0
    with os.scandir(storage) as entries:
        for entry in entries:
            if entry.name == PRUNE_MARKER or not entry.is_file(follow_symlinks=False):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
    marker.touch()
    os.utime(marker, (now, now))
    return removed
