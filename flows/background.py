"""Background tasks: work that must start at once, handed to a long-lived Prefect task worker.

A deployment run waits for the serve process's next poll (`PREFECT_RUNNER_POLL_FREQUENCY`)
and then for a fresh Python process (~1.5 s of imports) before its first line runs: about
10 s for a webhook's booking fetch, while every other channel still sells the room.
`Task.delay()` hands the task run to a subscribed task worker (`python -m
deployments.task_worker`, started by `innsync up`) over a websocket at once, and the worker
runs the same flow in its own, already warm, process: the flow run, its sync log and its
logs look the same in the Prefect UI, and a task run beside it shows the hand-over.

The Prefect server keeps a delayed task run until a worker takes it (a worker restarting
loses nothing); if the server itself restarts before then, the webhook event stays
unfinished and the channel's next pull stores the booking.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect import task

from flows.channel_sync import sync_booking_by_id
from flows.runner import run_flow, run_on_flow_run
from tasks.results import BookingFetchOutcome, CycleOutcome


@task(name="fetch-pushed-booking", log_prints=False)
def fetch_pushed_booking(
    channel_id: int, external_id: str, webhook_event_id: int | None = None
) -> BookingFetchOutcome:
    """Run `sync-booking-by-id` for a pushed booking in this (task worker) process.

    Synchronous on purpose: the worker runs it in its thread pool, so one fetch's database
    and partner calls never block the worker's websocket loop or another fetch."""
    outcome = run_flow(sync_booking_by_id, channel_id=channel_id, external_id=external_id,
                       webhook_event_id=webhook_event_id)
    if isinstance(outcome.value, BookingFetchOutcome):
        return outcome.value  # a failed fetch is the flow run's failure, shown there
    raise outcome.error or RuntimeError(f"flow run {outcome.flow_run_id} returned nothing")


@task(name="pull-channel-batch", log_prints=False)
def pull_channel_batch(channel_ids: list[int], max_pages: int = 50,
                       holder: str | None = None) -> CycleOutcome:
    """Run a `pull-batch` flow (flows/scheduled.py) in this (pull worker) process: the
    every-minute cycle hands its batches to the pull workers when they serve (`innsync up`),
    so a batch starts at once in a warm process instead of a new process per batch.
    `holder`: the channel leases the cycle took for it when it dispatched it."""
    from flows.scheduled import pull_batch

    outcome = run_flow(pull_batch, channel_ids=channel_ids, max_pages=max_pages, holder=holder)
    if isinstance(outcome.value, CycleOutcome):
        return outcome.value
    raise outcome.error or RuntimeError(f"flow run {outcome.flow_run_id} returned nothing")


def _declared_flow(entrypoint: str) -> Any:
    """The flow of a declared on-demand deployment (nothing else runs from a task's
    parameters)."""
    from deployments.specs import deployment_specs

    for spec in deployment_specs():
        if spec.entrypoint == entrypoint and spec.name == "on-demand":
            return spec.load_flow()
    raise LookupError(f"{entrypoint} is no on-demand flow of innsync")


@task(name="run-started-flow", log_prints=False)
def run_started_flow(entrypoint: str, flow_run_id: UUID, parameters: dict[str, Any]) -> str:
    """Run a flow run an API call created (its id already answered or awaited there) in this
    warm worker process: the run starts at once instead of after the serve process's next
    poll and a new Python process (flows/runner.start_flow). Answers the run's final state.
    A run that cannot start here (not a declared on-demand flow) is marked failed, so the
    caller waiting on it gets an answer instead of a run pending for ever."""
    from prefect import get_client
    from prefect.states import Failed

    with get_client(sync_client=True) as client:
        try:
            flow = _declared_flow(entrypoint)
        except LookupError as exc:
            client.set_flow_run_state(flow_run_id, Failed(message=str(exc)), force=True)
            raise
        flow_run = client.read_flow_run(flow_run_id)
    return str(run_on_flow_run(flow, flow_run, parameters).type.value)


#: The tasks each kind of task worker serves (a delayed task nobody serves waits forever):
#: webhook fetches and API-started runs (someone waits for both) must never wait behind the
#: minute's pulls, so they have their own worker.
WEBHOOK_TASKS = [fetch_pushed_booking, run_started_flow]
PULL_TASKS = [pull_channel_batch]
BACKGROUND_TASKS = [*WEBHOOK_TASKS, *PULL_TASKS]
TASK_KINDS: dict[str, list[Any]] = {"webhooks": WEBHOOK_TASKS, "pulls": PULL_TASKS,
                                   "all": BACKGROUND_TASKS}
