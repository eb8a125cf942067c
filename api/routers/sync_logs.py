"""Reads of what the syncs did: the sync logs (one row per run and channel) and the
overbookings they accepted."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import SessionDep, ViewerDep
from api.paging import LIST_DOCS, PageDep, capped_count
from api.schemas import APIModel, CamelDict
from api.validators import Day, Id
from db.repositories.overbookings import OverbookingRow
from db.repositories.overbookings import list_overbookings as overbookings
from db.repositories.sync_log_reads import sync_logs_query

router = APIRouter(tags=["channel sync"])


class SyncLogOut(APIModel):
    id: int
    channel_id: int | None
    operation: str
    status: str
    records_processed: int
    records_success: int
    records_failed: int
    error_messages: list[Any]
    details: CamelDict
    started_at: datetime
    finished_at: datetime | None
    flow_run_id: UUID | None


@router.get("/channel-sync-logs", response_model=list[SyncLogOut], **LIST_DOCS)
def list_sync_logs(
    session: SessionDep,
    principal: ViewerDep,
    page: PageDep,
    channel_id: Annotated[Id | None, Query(alias="channelId")] = None,
    property_id: Annotated[Id | None, Query(alias="propertyId")] = None,
    operation: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    flow_run_id: Annotated[UUID | None, Query(alias="flowRunId")] = None,
    started_from: Annotated[Day | None, Query(alias="from")] = None,
    started_to: Annotated[Day | None, Query(alias="to")] = None,
) -> list[SyncLogOut]:
    """One row per sync run and channel: counts, errors, the Prefect flow-run id."""
    stmt = sync_logs_query(
        channel_id=channel_id,
        property_ids=principal.property_filter(property_id),
        operation=operation,
        status=status,
        flow_run_id=flow_run_id,
        started_from=started_from,
        started_to=started_to,
    )
    total, capped = capped_count(session, stmt)
    rows = session.scalars(stmt.limit(page.limit).offset(page.offset)).all()
    return page.answer([SyncLogOut.model_validate(r) for r in rows], total, capped)


class OverbookingOut(APIModel, OverbookingRow):
    """A flagged reservation (the repository's row, camelCase)."""


@router.get("/overbookings", response_model=list[OverbookingOut], **LIST_DOCS)
def list_overbookings(
    session: SessionDep,
    principal: ViewerDep,
    page: PageDep,
    property_id: Annotated[Id | None, Query(alias="propertyId")] = None,
) -> list[OverbookingOut]:
    """Open reservations accepted on sold-out nights: relocate or contact these guests."""
    rows, total = overbookings(
        session, principal.property_filter(property_id), page.limit, page.offset
    )
    return page.answer([OverbookingOut.model_validate(r) for r in rows], total)
