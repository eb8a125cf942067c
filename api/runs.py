"""Flow runs started by the API: a bounded wait for the result, else 202 and a poll URL.

A sync call starts its flow and waits for it at most `api_wait_seconds` (setting, 60 s):
finished in time, it answers the run's `SyncResult`; past the bound, or with `?async=true`,
it answers 202 with the flow-run id and `Location: /api/flow-runs/{id}`.

Through deployments (`innsync up`) the run happens in the serve process; otherwise the API
runs the flow itself in a worker thread, on a flow run created first so its id is known at
once (the run is in the Prefect UI either way).

The counts of a `SyncResult` are the run's channel_sync_logs rows (one per channel and
operation), read by flow-run id: what the API answers is what the sync log says.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Literal
from uuid import UUID

import httpx
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from prefect import Flow
from pydantic import Field
from sqlalchemy.orm import Session

from api.errors import ServiceUnavailable
from api.middleware import public_error
from api.schemas import APIModel, CamelDict
from db.engine import session_scope
from db.repositories.sync_log_reads import logs_of_flow_run
from flows.runner import FlowOutcome, outcome_of, run_on_flow_run, start_flow, via_deployments

#: Sync-log statuses that mean the channel's work did not succeed.
FAILED_STATUSES = frozenset({"failed", "crashed"})

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="innsync-api-flow")

RunState = Literal["scheduled", "pending", "running", "completed", "failed", "crashed",
                   "cancelled", "cancelling", "paused", "unknown"]


class ChannelRunResult(APIModel):
    """One channel's part of a run: its sync-log row."""

    channel_id: int | None
    operation: str
    status: str
    records_processed: int
    records_success: int
    records_failed: int
    errors: list[str]
    details: CamelDict


class SyncResult(APIModel):
    """What a sync call answers (the seed's fields plus the run): `success` is true only for
    a finished run whose channels did not fail; the counts are the sums of the run's sync
    logs (`channels` has each one)."""

    success: bool
    finished: bool
    state: RunState
    flow_run_id: UUID | None = None
    records_processed: int = 0
    records_success: int = 0
    records_failed: int = 0
    errors: list[str] = Field(default_factory=list)
    channels: list[ChannelRunResult] = Field(default_factory=list)


class RunStarted(APIModel):
    """202: the run goes on; poll `location` (also the Location header) for its result."""

    success: Literal[False] = False
    finished: Literal[False] = False
    state: RunState
    flow_run_id: UUID
    location: str


def _state_name(state_type: Any) -> RunState:
    name = str(getattr(state_type, "value", state_type) or "unknown").lower()
    allowed = RunState.__args__  # type: ignore[attr-defined]
    return name if name in allowed else "unknown"  # type: ignore[return-value]


def sync_result(
    session: Session,
    flow_run_id: UUID | None,
    state: RunState,
    finished: bool,
    ok: bool,
    error: BaseException | str | None = None,
) -> SyncResult:
    """The result of a run from its sync-log rows and its state."""
    rows = logs_of_flow_run(session, flow_run_id) if flow_run_id else []
    channels = [
        ChannelRunResult(
            channel_id=r.channel_id,
            operation=r.operation,
            status=r.status,
            records_processed=r.records_processed,
            records_success=r.records_success,
            records_failed=r.records_failed,
            errors=[public_error(str(e)) for e in r.error_messages or []],
            details=r.details or {},
        )
        for r in rows
    ]
    errors = [e for c in channels for e in c.errors]
    if error is not None and not errors:
        errors = [public_error(str(error))]
    success = (
        finished and ok and state == "completed"
        and not any(c.status in FAILED_STATUSES or c.status == "running" for c in channels)
    )
    return SyncResult(
        success=success,
        finished=finished,
        state=state,
        flow_run_id=flow_run_id,
        records_processed=sum(c.records_processed for c in channels),
        records_success=sum(c.records_success for c in channels),
        records_failed=sum(c.records_failed for c in channels),
        errors=errors,
        channels=channels,
    )


def _run_in_thread(flow: Flow[..., Any], flow_run: Any, parameters: dict[str, Any]) -> FlowOutcome:
    return outcome_of(run_on_flow_run(flow, flow_run, parameters))


def launch(flow: Flow[..., Any], wait_seconds: float, **parameters: Any) -> FlowOutcome:
    """Start `flow` and wait for it at most `wait_seconds`; finished=False past that."""
    if via_deployments():
        return start_flow(flow, wait=wait_seconds > 0, timeout=wait_seconds, **parameters)
    from prefect import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run(flow, parameters=jsonable_encoder(parameters))
    future = _pool.submit(_run_in_thread, flow, flow_run, parameters)
    try:
        return future.result(timeout=wait_seconds)
    except FutureTimeout:
        return FlowOutcome(flow_run_id=flow_run.id, ok=False, finished=False)


def read_state(flow_run_id: UUID) -> tuple[RunState, bool] | None:
    """The run's state and whether it is final, or None for an unknown run."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)
    except ObjectNotFound:
        return None
    except (httpx.HTTPError, RuntimeError) as exc:
        raise ServiceUnavailable(
            f"the Prefect server did not answer: {type(exc).__name__}", code="prefect_unavailable"
        ) from None
    if run.state is None:
        return "unknown", False
    return _state_name(run.state.type), run.state.is_final()


def started(flow_run_id: UUID, state: RunState | None = None) -> JSONResponse:
    """202 for a run still going: its id, state and `Location: /api/flow-runs/{id}`."""
    if state is None:
        read = read_state(flow_run_id)
        state = read[0] if read else "scheduled"
    location = f"/api/flow-runs/{flow_run_id}"
    body = RunStarted(state=state, flow_run_id=flow_run_id, location=location)
    return JSONResponse(
        body.model_dump(mode="json", by_alias=True),
        status_code=202,
        headers={"Location": location},
    )


def answer(outcome: FlowOutcome, force_async: bool = False) -> SyncResult | JSONResponse:
    """200 with the SyncResult of a finished run; 202 with the run id and a Location for
    a run not finished (or any run when the caller asked for `async`)."""
    if (force_async or not outcome.finished) and outcome.flow_run_id is not None:
        state = read_state(outcome.flow_run_id)
        if force_async or state is None or not state[1]:
            return started(outcome.flow_run_id, state[0] if state else "scheduled")
        outcome = FlowOutcome(flow_run_id=outcome.flow_run_id, ok=state[0] == "completed")
    state_name: RunState = "completed" if outcome.ok else "failed"
    if outcome.flow_run_id is not None:
        read = read_state(outcome.flow_run_id)
        if read is not None:
            state_name = read[0]
    with session_scope() as session:
        return sync_result(
            session, outcome.flow_run_id, state_name, True, outcome.ok, outcome.error
        )


#: OpenAPI of every flow-triggering route: 200 the result, 202 started.
RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": RunStarted,
        "description": "the run did not finish within the wait bound (or `async=true`): "
        "poll the `Location` (GET /api/flow-runs/{id})",
        "headers": {"Location": {"description": "/api/flow-runs/{id}",
                                 "schema": {"type": "string"}}},
    }
}
