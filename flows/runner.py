"""Run a flow for a caller (API, CLI) and get its result plus the Prefect flow-run id.

Today flows run in-process (they still appear in the Prefect UI of the configured server);
issue 6 routes them through deployments when a Prefect server is configured.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect import Flow
from prefect.states import State


@dataclass
class FlowOutcome:
    """What a caller gets back: the flow's return value (or error) and its run id."""

    flow_run_id: UUID | None
    ok: bool
    result: Any = None
    error: BaseException | None = None


def run_flow(flow: Flow[..., Any], **parameters: Any) -> FlowOutcome:
    """Run `flow` in-process (sync or async flow, from code with no running event loop);
    a failed run becomes ok=False with the exception, not a raise."""
    state = flow(**parameters, return_state=True)
    if inspect.isawaitable(state):
        state = asyncio.run(_await(state))
    return outcome_of(state)


async def run_flow_async(flow: Flow[..., Any], **parameters: Any) -> FlowOutcome:
    """`run_flow` for callers inside an event loop."""
    state = flow(**parameters, return_state=True)
    if inspect.isawaitable(state):
        state = await state
    return outcome_of(state)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def outcome_of(state: State[Any]) -> FlowOutcome:
    """The FlowOutcome of a finished flow-run state."""
    run_id = state.state_details.flow_run_id
    if state.is_completed():
        return FlowOutcome(flow_run_id=run_id, ok=True, result=state.result())
    data = state.result(raise_on_failure=False)
    if isinstance(data, BaseException):
        return FlowOutcome(flow_run_id=run_id, ok=False, error=data)
    # A flow that returned Failed(data=...) still hands back its result (counts, errors).
    return FlowOutcome(
        flow_run_id=run_id,
        ok=False,
        result=data,
        error=RuntimeError(state.message or f"flow run {state.name}"),
    )
