"""The data-sync queue (the seed's DataSyncService): enqueue, status, process, dead letter."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, status
from pydantic import Field

from api import audit
from api.crud import get_or_404
from api.deps import OperatorDep, SessionDep, SettingsDep, ViewerDep
from api.errors import Conflict
from api.middleware import public_error
from api.paging import LIST_DOCS, PageDep, page_of
from api.routers.channel_sync import AsyncDep
from api.runs import RUN_RESPONSES, launch, started
from api.schemas import APIInput, APIModel
from api.validators import BoundedText, Id, Int4
from db.models import DataSyncQueueItem
from db.repositories import queue as queue_repo
from db.repositories.base import paginate
from tasks.results import QueueOutcome

router = APIRouter(prefix="/sync", tags=["sync queue"])

EntityType = Literal["reservation", "inventory", "rate", "room", "room_type", "guest"]
Operation = Literal["create", "update", "delete", "status_change"]
ItemStatus = Literal["pending", "processing", "completed", "failed"]
EntityId = Annotated[str, BoundedText(min_length=1, max_length=64)]


class EnqueueIn(APIInput):
    entity_type: EntityType
    entity_id: EntityId | Id
    operation: Operation
    data: dict[str, Any] = Field(default_factory=dict)


class EnqueueOut(APIModel):
    success: bool
    id: int


class QueueStatus(APIModel):
    pending_count: int
    failed_count: int
    is_processing: bool


class ProcessIn(APIInput):
    batch_size: Int4 = Field(default=100, ge=1, le=1000)
    max_batches: Int4 = Field(default=50, ge=1, le=1000)


class QueueRunCounts(APIModel):
    """The counts a process-queue run returns (flows/queue.py), read by their names."""

    processed: int = 0
    completed: int = 0
    not_applicable: int = 0
    retrying: int = 0
    failed: int = 0


class ProcessOut(QueueRunCounts):
    success: bool
    flow_run_id: UUID | None
    error: str | None = None


class QueueItemOut(APIModel):
    id: int
    entity_type: str
    entity_id: str
    operation: str
    data: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    last_error: str | None
    next_attempt_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    processed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class RetryOut(APIModel):
    success: bool
    requeued: int


@router.post("/queue", response_model=EnqueueOut, status_code=status.HTTP_201_CREATED)
def enqueue(body: EnqueueIn, session: SessionDep, principal: OperatorDep) -> EnqueueOut:
    """Queue a change for the partners (coalesced with a pending change of the same entity)."""
    item_id = queue_repo.enqueue(session, body.entity_type, body.entity_id, body.operation,
                                 body.data)
    audit.record(session, principal.actor, "enqueue", "data_sync_queue", item_id, None,
                 body.model_dump(mode="json", by_alias=True))
    return EnqueueOut(success=True, id=item_id)


@router.get("/status", response_model=QueueStatus)
def queue_status(session: SessionDep, _: ViewerDep) -> QueueStatus:
    """Pending and dead-lettered counts; isProcessing while a worker holds a live lease."""
    counts = queue_repo.queue_status(session)
    return QueueStatus(pending_count=counts["pending"], failed_count=counts["failed"],
                       is_processing=counts["processing"])


@router.post("/process", response_model=ProcessOut, responses=RUN_RESPONSES)
def process(session: SessionDep, settings: SettingsDep, principal: OperatorDep,
            body: ProcessIn | None = None, run_async: AsyncDep = False) -> Any:
    """Drain the due queue items now (one process-queue flow run): waits for the run at most
    `api_wait_seconds` and answers its counts; past that, or with `async=true`, 202 with
    the flow-run id and a Location to poll."""
    from flows.queue import process_queue

    params = body or ProcessIn()
    session.commit()  # the flow claims items in its own transactions
    # Through the process-queue deployment when a Prefect server is configured (its
    # concurrency limit then also covers manual runs); in-process otherwise.
    wait = 0.0 if run_async else settings.api_wait_seconds
    outcome = launch(process_queue, wait, batch_size=params.batch_size,
                     max_batches=params.max_batches)
    audit.record(session, principal.actor, "process", "data_sync_queue", None, None,
                 {"flowRunId": str(outcome.flow_run_id), "finished": outcome.finished,
                  "ok": outcome.ok})
    if (run_async or not outcome.finished) and outcome.flow_run_id is not None:
        return started(outcome.flow_run_id)
    counts = QueueRunCounts.model_validate(
        outcome.value.wire() if isinstance(outcome.value, QueueOutcome) else {})
    return ProcessOut(
        success=outcome.ok and outcome.finished, flow_run_id=outcome.flow_run_id,
        **counts.model_dump(),
        error=None if outcome.ok else public_error(str(outcome.error)),
    )


@router.get("/queue", response_model=list[QueueItemOut], **LIST_DOCS)
def list_items(
    session: SessionDep,
    _: ViewerDep,
    page: PageDep,
    item_status: Annotated[ItemStatus | None, Query(alias="status")] = None,
    entity_type: Annotated[EntityType | None, Query(alias="entityType")] = None,
) -> list[QueueItemOut]:
    """Queue items, oldest first (`?status=failed` is the dead letter)."""
    rows, total = paginate(session, queue_repo.items_query(item_status, entity_type),
                           page.limit, page.offset)
    return page_of(QueueItemOut, rows, total, page)


@router.post("/queue/retry-failed", response_model=RetryOut)
def retry_failed(session: SessionDep, principal: OperatorDep) -> RetryOut:
    """Re-queue every dead-lettered item (attempts reset)."""
    count = queue_repo.requeue_failed(session)
    audit.record(session, principal.actor, "retry", "data_sync_queue", None, None,
                 {"requeued": count})
    return RetryOut(success=True, requeued=count)


@router.post("/queue/{item_id}/retry", response_model=RetryOut)
def retry_item(item_id: Id, session: SessionDep, principal: OperatorDep) -> RetryOut:
    """Re-queue one dead-lettered item (409 unless it is failed)."""
    row = get_or_404(session, DataSyncQueueItem, item_id, "queue item")
    if row.status != "failed":
        raise Conflict(f"queue item {item_id} is {row.status}, not failed")
    count = queue_repo.requeue_failed(session, [item_id])
    session.expire(row)
    audit.record(session, principal.actor, "retry", "data_sync_queue", item_id, None,
                 {"requeued": count})
    return RetryOut(success=True, requeued=count)
