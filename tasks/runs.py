"""One run wrapper for every sync operation: sync log start/finish, adapters, failure state.

    async with sync_run(channel_id, "push_rates") as run:
        run.totals.add(...); run.errors += [...]; run.details[...] = ...
    run.status  # 'success' | 'partial' | 'failed' | 'not_applicable'

The run owns a partner-adapter pool (tasks/resources.py): the adapters its tasks use are
closed when it ends. On normal exit the log is closed with the counts (and a successful run stamps the channel's
last sync); an exception closes it `failed` with the error, then propagates. A cancelled
or timed-out run leaves the row to the flow's state hooks (flows/runner.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from prefect.states import Failed, State

from db.engine import session_scope
from db.repositories.channels import mark_syncs_success
from db.repositories.sync_logs import LogClose, finish_logs, start_logs
from tasks.resources import adapter_pool
from tasks.results import SyncOutcome, Totals

OutcomeT = TypeVar("OutcomeT", bound=SyncOutcome)


def current_flow_run_id() -> UUID | None:
    """The running flow's id (None outside a flow run)."""
    from prefect.runtime import flow_run

    raw = flow_run.get_id()
    return UUID(str(raw)) if raw else None


@dataclass
class SyncRun:
    """The bookkeeping of one run on one channel (or none: a queue batch)."""

    channel_id: int | None
    operation: str
    log_id: int
    totals: Totals = field(default_factory=Totals)
    errors: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    #: Forces the final status (e.g. 'not_applicable'); otherwise derived from the counts.
    forced_status: str | None = None
    #: The status the log was closed with (set on exit).
    status: str = "running"


def finish(runs: Iterable[SyncRun]) -> None:
    """Close the runs' logs with their counts, in one transaction; a success stamps its
    channel's last sync."""
    runs = list(runs)
    with session_scope() as session:
        statuses = finish_logs(session, [
            LogClose(run.log_id, run.totals.processed, run.totals.success, run.totals.failed,
                     run.errors, run.details, run.forced_status)
            for run in runs])
        by_operation: dict[str, list[int]] = {}
        for run, status in zip(runs, statuses, strict=True):
            run.status = status
            if status == "success" and run.channel_id is not None:
                by_operation.setdefault(run.operation, []).append(run.channel_id)
        now = datetime.now(UTC)
        for operation, ids in by_operation.items():
            mark_syncs_success(session, ids, operation, now)


@asynccontextmanager
async def sync_run(
    channel_id: int | None,
    operation: str,
    flow_run_id: UUID | None = None,
) -> AsyncIterator[SyncRun]:
    """Open the run's sync log and its partner-adapter pool (or join the enclosing run's
    pool); close both on exit (see module doc)."""
    async with sync_runs([channel_id], operation, flow_run_id) as runs:
        yield runs[0]


@asynccontextmanager
async def sync_runs(
    channel_ids: Sequence[int | None],
    operation: str,
    flow_run_id: UUID | None = None,
) -> AsyncIterator[list[SyncRun]]:
    """sync_run of several channels that run together (an account's pull): their logs are
    opened in one statement and closed in one transaction; an exception fails them all."""
    with session_scope() as session:
        log_ids = start_logs(session, channel_ids, operation,
                             flow_run_id or current_flow_run_id())
    runs = [SyncRun(channel_id=cid, operation=operation, log_id=log_id)
            for cid, log_id in zip(channel_ids, log_ids, strict=True)]
    try:
        async with adapter_pool():
            yield runs
    except Exception as exc:
        for run in runs:
            run.errors.append(f"{type(exc).__name__}: {exc}"[:1000])
            run.forced_status = "failed"
        finish(runs)
        raise
    finish(runs)


def flow_result(outcome: OutcomeT, status: str) -> OutcomeT | State[Any]:
    """The flow's return: the outcome, or a Failed state carrying it when nothing worked."""
    if status == "failed":
        return Failed(message="; ".join(outcome.errors[:3]) or "sync failed", data=outcome)
    return outcome
