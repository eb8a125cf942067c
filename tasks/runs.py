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

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from prefect.states import Failed, State

from db.engine import session_scope
from db.repositories.channels import mark_sync_success
from db.repositories.sync_logs import finish_log, start_log
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


def finish(run: SyncRun) -> str:
    """Close the run's log with its counts; a success stamps the channel's last sync."""
    with session_scope() as session:
        status = finish_log(
            session,
            run.log_id,
            processed=run.totals.processed,
            success=run.totals.success,
            failed=run.totals.failed,
            errors=run.errors,
            details=run.details,
            status=run.forced_status,
        )
        if status == "success" and run.channel_id is not None:
            mark_sync_success(session, run.channel_id, run.operation, datetime.now(UTC))
    run.status = status
    return status


@asynccontextmanager
async def sync_run(
    channel_id: int | None,
    operation: str,
    flow_run_id: UUID | None = None,
) -> AsyncIterator[SyncRun]:
    """Open the run's sync log and its partner-adapter pool (or join the enclosing run's
    pool); close both on exit (see module doc)."""
    with session_scope() as session:
        log_id = start_log(session, channel_id, operation, flow_run_id or current_flow_run_id())
    run = SyncRun(channel_id=channel_id, operation=operation, log_id=log_id)
    try:
        async with adapter_pool():
            yield run
    except Exception as exc:
        run.errors.append(f"{type(exc).__name__}: {exc}"[:1000])
        run.forced_status = "failed"
        finish(run)
        raise
    finish(run)


def flow_result(outcome: OutcomeT, status: str) -> OutcomeT | State[Any]:
    """The flow's return: the outcome, or a Failed state carrying it when nothing worked."""
    if status == "failed":
        return Failed(message="; ".join(outcome.errors[:3]) or "sync failed", data=outcome)
    return outcome
