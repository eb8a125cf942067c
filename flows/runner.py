"""Run a flow for a caller (API, CLI) and get its result plus the Prefect flow-run id.

`run_flow` runs in-process (the run still appears in the Prefect UI of the configured
server). `start_flow` goes through the flow's deployment when deployments are in use
(PREFECT_API_URL set and INNSYNC_RUN_VIA_DEPLOYMENTS=1, as `innsync up` sets for the API):
it returns the flow-run id at once, or waits for the result with `wait=True`. When a task
worker serves (`innsync up`), a flow whose on-demand deployment has no concurrency limit
runs there instead, on a flow run created here: it starts at once in a warm process.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from prefect import Flow
from prefect.exceptions import MissingResult
from prefect.states import State

from tasks.results import Result

if TYPE_CHECKING:
    from deployments.specs import DeploymentSpec

R = TypeVar("R", bound=Result)


@dataclass
class FlowOutcome:
    """What a caller gets back: the flow's return value (or error) and its run id.

    `value` is what the flow returned: for every innsync flow a typed result
    (tasks/results.py); `value_as` hands it over as the type the caller expects."""

    flow_run_id: UUID | None
    ok: bool
    value: Any = None
    error: BaseException | None = None
    #: False when the run was only scheduled through a deployment (result not known yet).
    finished: bool = True

    def value_as(self, kind: type[R]) -> R:
        """The flow's result as `kind`; TypeError when the flow returned something else."""
        if not isinstance(self.value, kind):
            raise TypeError(f"flow run {self.flow_run_id} returned "
                            f"{type(self.value).__name__}, not {kind.__name__}")
        return self.value


def run_flow(flow: Flow[..., Any], **parameters: Any) -> FlowOutcome:
    """Run `flow` in-process (sync or async flow, from code with no running event loop);
    a failed run becomes ok=False with the exception, not a raise."""
    state: Any = flow(**parameters, return_state=True)
    if inspect.isawaitable(state):
        state = asyncio.run(_await(state))
    return outcome_of(state)


def run_on_flow_run(flow: Flow[..., Any], flow_run: Any, parameters: dict[str, Any]
                    ) -> State[Any]:
    """Run `flow` on a flow run created beforehand (its id already known to a caller), in
    this process; the run's final state."""
    from prefect.flow_engine import run_flow as run_on

    state: Any = run_on(flow, flow_run=flow_run, parameters=parameters, return_type="state")
    if inspect.isawaitable(state):
        state = asyncio.run(_await(state))
    return state  # type: ignore[no-any-return]


async def run_flow_async(flow: Flow[..., Any], **parameters: Any) -> FlowOutcome:
    """`run_flow` for callers inside an event loop."""
    state: Any = flow(**parameters, return_state=True)
    if inspect.isawaitable(state):
        state = await state
    # In a thread: with a running loop, State.result() would hand back a coroutine.
    return await asyncio.to_thread(outcome_of, state)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def outcome_of(state: State[Any]) -> FlowOutcome:
    """The FlowOutcome of a finished flow-run state."""
    run_id = state.state_details.flow_run_id
    if state.is_completed():
        return FlowOutcome(flow_run_id=run_id, ok=True, value=state.result())
    data = state.result(raise_on_failure=False)
    if isinstance(data, BaseException):
        return FlowOutcome(flow_run_id=run_id, ok=False, error=data)
    # A flow that returned Failed(data=...) still hands back its result (counts, errors).
    return FlowOutcome(
        flow_run_id=run_id,
        ok=False,
        value=data,
        error=RuntimeError(state.message or f"flow run {state.name}"),
    )


def via_deployments() -> bool:
    """True when work should go through deployments: a Prefect server plus the opt-in."""
    from prefect.settings import get_current_settings

    from innsync.settings import get_settings

    return get_settings().run_via_deployments and bool(get_current_settings().api.url)


def via_task_worker() -> bool:
    """True when background tasks (flows/background.py) go to a task worker: deployments
    are in use and a worker serves them (INNSYNC_BACKGROUND_TASKS, set by `innsync up`)."""
    from innsync.settings import get_settings

    return get_settings().background_tasks and via_deployments()


def _deployment_name(flow: Flow[..., Any], deployment_name: str | None) -> str:
    if deployment_name is None:
        from deployments.specs import deployment_for

        return deployment_for(flow)
    return deployment_name if "/" in deployment_name else f"{flow.name}/{deployment_name}"


def _outcome_of_run(run: Any, wait: bool) -> FlowOutcome:
    if not wait:
        return FlowOutcome(flow_run_id=run.id, ok=True, finished=False)
    state = run.state
    if state is None or not state.is_final():
        return FlowOutcome(
            flow_run_id=run.id,
            ok=False,
            finished=False,
            error=TimeoutError(f"flow run {run.id} did not finish"),
        )
    try:
        outcome = outcome_of(state)
    except MissingResult:
        # Completed, but the serving process did not persist the result
        # (PREFECT_RESULTS_PERSIST_BY_DEFAULT): the state is all we know.
        return FlowOutcome(
            flow_run_id=run.id,
            ok=state.is_completed(),
            error=None if state.is_completed() else RuntimeError(state.message),
        )
    outcome.flow_run_id = run.id
    return outcome


def start_flow(
    flow: Flow[..., Any],
    deployment_name: str | None = None,
    wait: bool = False,
    timeout: float | None = None,
    **parameters: Any,
) -> FlowOutcome:
    """Start `flow` through its deployment (flow-run id at once; the result with `wait`,
    waiting at most `timeout` seconds when given: then finished=False), or run it in-process
    when deployments are not in use."""
    if not via_deployments():
        return run_flow(flow, **parameters)
    if deployment_name is None and via_task_worker():
        spec = _task_worker_spec(flow)
        if spec is not None:
            return _start_on_task_worker(flow, spec.entrypoint, wait, timeout, parameters)
    from prefect.deployments import run_deployment

    run = run_deployment(  # type: ignore[call-arg]
        _deployment_name(flow, deployment_name),
        parameters=parameters,
        timeout=timeout if wait else 0,
        poll_interval=1,
        _sync=True,  # also when called from inside an async flow
    )
    return _outcome_of_run(run, wait)


def _task_worker_spec(flow: Flow[..., Any]) -> DeploymentSpec | None:
    """The on-demand deployment of `flow` if its runs may go to a task worker instead: one
    with a concurrency limit or collision strategy (a restore, the queue) keeps going
    through the deployment, whose limit is the guarantee."""
    from deployments.specs import spec_for

    try:
        spec = spec_for(flow)
    except LookupError:
        return None
    if spec.name != "on-demand" or spec.concurrency_limit or spec.collision_strategy:
        return None
    return spec


def _start_on_task_worker(flow: Flow[..., Any], entrypoint: str, wait: bool,
                          timeout: float | None, parameters: dict[str, Any]) -> FlowOutcome:
    """Create the flow run here (its id is known at once, the run is in the Prefect UI as
    a deployment's would be), hand it to the webhook/API task worker
    (flows/background.run_started_flow), and with `wait` follow its state until it is final
    or `timeout` passed."""
    import time

    from fastapi.encoders import jsonable_encoder
    from prefect import get_client

    from flows.background import run_started_flow

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(flow, parameters=jsonable_encoder(parameters))
    run_started_flow.delay(entrypoint, run.id, parameters)
    if not wait:
        return FlowOutcome(flow_run_id=run.id, ok=True, finished=False)
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.05
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(pause)
            pause = min(pause * 1.5, 0.5)
    return _outcome_of_run(run, wait=True)


async def start_flow_async(
    flow: Flow[..., Any],
    deployment_name: str | None = None,
    wait: bool = False,
    **parameters: Any,
) -> FlowOutcome:
    """`start_flow` for callers inside an event loop."""
    if not via_deployments():
        return await run_flow_async(flow, **parameters)
    from prefect.deployments import run_deployment

    run = await run_deployment(  # type: ignore[misc]
        _deployment_name(flow, deployment_name),
        parameters=parameters,
        timeout=None if wait else 0,
        poll_interval=1,
    )
    # In a thread: with a running loop, State.result() would hand back a coroutine.
    return await asyncio.to_thread(_outcome_of_run, run, wait)


def close_sync_logs_hook(flow: Any, flow_run: Any, state: State[Any]) -> None:
    """Flow state hook (on_failure, on_crashed, on_cancellation): the run's sync logs still
    `running` become `failed` (`crashed` for a crashed run) with the state's reason.

    A timed-out run is cancelled between two statements and never reaches its own
    finish_log; this closes its row at once (the reaper would, later)."""
    from db.engine import session_scope
    from db.repositories.sync_logs import close_unfinished_of_flow_run

    status = "crashed" if state.is_crashed() else "failed"
    reason = f"flow run {state.name}" + (f": {state.message}" if state.message else "")
    with session_scope() as session:
        close_unfinished_of_flow_run(session, flow_run.id, status, reason)


#: Hooks of every flow that opens sync logs.
SYNC_LOG_HOOKS: dict[str, Any] = {
    "on_failure": [close_sync_logs_hook],
    "on_crashed": [close_sync_logs_hook],
    "on_cancellation": [close_sync_logs_hook],
}
