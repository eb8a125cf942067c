"""The data-sync queue flow (the seed's auto-sync): drain due items batch by batch.

Several runs may work at once (more workers on the pool): claims use SKIP LOCKED and leases,
so no item is taken twice, and an item whose worker died is taken again when its lease ends.
"""

from __future__ import annotations

import os
import socket
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.runtime import flow_run

from tasks.queue import claim_batch, handle_batch
from tasks.resources import adapter_pool
from tasks.results import QueueOutcome, QueueRow

DEFAULT_BATCH_SIZE = 100
DEFAULT_MAX_BATCHES = 50
DEFAULT_LEASE_SECONDS = 300.0


def worker_name(run_id: object) -> str:
    """A lease owner unique to this host, process and flow run."""
    return f"{socket.gethostname()}:{os.getpid()}:{str(run_id)[:8]}"


@flow(name="process-queue", persist_result=True)
async def process_queue(
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int = DEFAULT_MAX_BATCHES,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> QueueOutcome:
    """Claim and handle due queue items until the queue is drained or `max_batches` ran."""
    logger = get_run_logger()
    raw_id = flow_run.get_id()
    run_id = UUID(raw_id) if raw_id else None
    worker = worker_name(run_id)
    rows: list[QueueRow] = []
    batches = 0
    async with adapter_pool():  # the batches of this run share their partner connections
        for _ in range(max_batches):
            items = claim_batch(worker, batch_size, lease_seconds)
            if not items:
                break
            batches += 1
            rows += await handle_batch(worker, items, run_id, lease_seconds)
    summary = QueueOutcome(
        batches=batches,
        processed=len(rows),
        completed=sum(r.result == "completed" for r in rows),
        not_applicable=sum(r.result == "not applicable" for r in rows),
        retrying=sum(r.result == "retrying" for r in rows),
        failed=sum(r.result == "failed" for r in rows),
    )
    if not rows:
        # An empty run every 30 s (auto-sync) would bury the useful artifacts.
        logger.info("process-queue: nothing was due")
        return summary
    await acreate_table_artifact(
        key="sync-queue-result",
        table=[r.wire() for r in rows],
        description=(
            f"sync queue: {summary.processed} items in {batches} batches, "
            f"{summary.completed} completed, {summary.not_applicable} not applicable, "
            f"{summary.retrying} retrying, {summary.failed} dead-lettered"
        ),
    )
    logger.info("process-queue: %s", summary)
    return summary
