"""Poll a flow run an API call started: its state and, once finished, the same result model
the call answers when it waits (`SyncResult`)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from api.deps import SessionDep, ViewerDep
from api.errors import NotFound
from api.runs import SyncResult, read_state, sync_result
from db.repositories.sync_log_reads import logs_of_flow_run

router = APIRouter(prefix="/flow-runs", tags=["flow runs"])


@router.get("/{flow_run_id}", response_model=SyncResult)
def get_flow_run(flow_run_id: UUID, session: SessionDep, principal: ViewerDep) -> SyncResult:
    """The run's `state`; `finished` and the counts once it ended (`success` is false until
    then). A property-scoped key sees only runs of its properties' channels."""
    state = read_state(flow_run_id)
    if state is None:
        raise NotFound(f"flow run {flow_run_id} not found")
    if principal.scoped:
        from db.models import Channel

        for row in logs_of_flow_run(session, flow_run_id):
            channel = session.get(Channel, row.channel_id) if row.channel_id else None
            principal.require_property(
                channel.property_id if channel else None, f"flow run {flow_run_id}"
            )
    name, final = state
    result = sync_result(session, flow_run_id, name, final, ok=name == "completed")
    if not final:
        # counts so far are partial: never a success before the end
        result.success = False
    return result
