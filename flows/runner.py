"""Run a flow for a caller (API, CLI) and get its result plus the Prefect flow-run id.

Today flows run in-process (they still appear in the Prefect UI of the configured server);
issue 6 routes them through deployments when a Prefect server is configured.
"""

from __future__ import annotations

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
    """Run `flow` in-process; a failed run becomes ok=False with the exception, not a raise."""
    state: State[Any] = flow(**parameters, return_state=True)
    run_id = state.state_details.flow_run_id
    if state.is_completed():
        return FlowOutcome(flow_run_id=run_id, ok=True, result=state.result())
    try:
        state.result()
    except BaseException as exc:  # the flow's own exception, re-raised by Prefect
        return FlowOutcome(flow_run_id=run_id, ok=False, error=exc)
    return FlowOutcome(flow_run_id=run_id, ok=False, error=RuntimeError(f"flow run {state.name}"))
