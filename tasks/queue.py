"""Queue tasks: claim a batch under a lease, then handle the whole batch in one task (ARI
grouped per channel, booking statuses per booking) and record each item's outcome."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import date
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from db.engine import session_scope
from db.repositories import queue as queue_repo
from db.repositories.queue import ClaimedItem
from db.repositories.queue_targets import enabled_channels, load_facts, mark_outcomes
from db.repositories.sync_logs import finish_log, start_log
from tasks.ari import push_channel
from tasks.queue_plan import Plan, Push, StatusPush, plan_batch, property_ids_of
from tasks.results import ChannelPush, QueueRow, StatusPushResult
from tasks.runs import sync_run
from tasks.status import push_status, record_status

log = logging.getLogger(__name__)

LOG_OPERATIONS = {"availability": "queue_availability", "rates": "queue_rates"}


@task(name="claim-queue-batch", cache_policy=NONE)
def claim_batch(worker: str, batch_size: int, lease_seconds: float) -> list[ClaimedItem]:
    """Lease up to `batch_size` due items to `worker` (dead-lettering exhausted leases first)."""
    with session_scope() as session:
        queue_repo.expire_exhausted_leases(session)
        items = queue_repo.claim(session, worker, batch_size, lease_seconds)
    return items


def build_plan(items: list[ClaimedItem], today: date) -> Plan:
    """Look up what the items point at (a few set-wise queries) and plan the partner work."""
    with session_scope() as session:
        by_type: dict[str, list[str]] = {}
        for item in items:
            by_type.setdefault(item.entity_type, []).append(item.entity_id)
        ids = [i for item in items for i in item.data.get("room_type_ids") or []]
        rates = [i for item in items for i in item.data.get("rate_plan_ids") or []]
        facts = load_facts(
            session,
            reservation_ids=by_type.get("reservation", []),
            room_type_ids=[*by_type.get("inventory", []), *by_type.get("room_type", []), *ids],
            rate_plan_ids=[*by_type.get("rate", []), *rates],
            room_ids=by_type.get("room", []),
        )
        facts.channels_of_property = enabled_channels(session, property_ids_of(items, facts))
    return plan_batch(items, facts, today)


async def _push_ari(push: Push, flow_run_id: UUID | None) -> ChannelPush:
    """Send one channel's delta for the push's range."""
    ids = sorted(push.ids)
    result = await push_channel(
        push.channel_id,
        push.kind,
        push.start,
        push.end,
        LOG_OPERATIONS[push.kind],
        ids if push.kind == "availability" else None,
        ids if push.kind == "rates" else None,
        flow_run_id=flow_run_id,
        # Each window once: the queue's backoff retries the items.
        retry_windows=False,
        details={"ids": ids, "range": [push.start.isoformat(), push.end.isoformat()],
                 "items": sorted(push.items)},
    )
    return result


async def _push_status(push: StatusPush, flow_run_id: UUID | None) -> StatusPushResult:
    """Tell the partner a booking's status (idempotent), under its own sync log."""
    async with sync_run(push.channel_id, "queue_booking_status", flow_run_id) as run:
        result = await push_status(push.channel_id, push.external_ref, push.status)
        record_status(run, result, push.external_ref, push.status)
        run.details["items"] = sorted(push.items)
    return result


@asynccontextmanager
async def leases_kept(worker: str, ids: list[int], lease_seconds: float) -> AsyncIterator[None]:
    """Renew the batch's leases every third of their length while the batch runs."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(lease_seconds / 3)
            try:
                await asyncio.to_thread(_extend, worker, ids, lease_seconds)
            except Exception as exc:  # noqa: BLE001 - a missed renewal must not fail the batch
                # The work goes on and its outcome is still recorded; at worst the lease runs
                # out and another worker repeats the batch (handlers are idempotent).
                log.warning("queue: renewing %d leases failed: %s", len(ids), exc)

    keeper = asyncio.create_task(beat())
    try:
        yield
    finally:
        keeper.cancel()
        with suppress(asyncio.CancelledError):
            await keeper


def _extend(worker: str, ids: list[int], lease_seconds: float) -> None:
    with session_scope() as session:
        queue_repo.extend_leases(session, ids, worker, lease_seconds)


@task(name="handle-queue-batch", cache_policy=NONE)
async def handle_batch(
    worker: str, items: list[ClaimedItem], flow_run_id: UUID | None = None,
    lease_seconds: float = queue_repo.DEFAULT_LEASE_SECONDS,
) -> list[QueueRow]:
    """Do a claimed batch's partner work (its leases renewed meanwhile), then complete, back
    off or dead-letter each item; returns one row per item for the run's artifact."""
    logger = get_run_logger()
    plan = build_plan(items, date.today())
    pushes = list(plan.pushes.values())
    statuses = list(plan.statuses.values())
    async with leases_kept(worker, [i.id for i in items], lease_seconds):
        ari_results, status_results = await asyncio.gather(
            asyncio.gather(*[_push_ari(p, flow_run_id) for p in pushes]),
            asyncio.gather(*[_push_status(s, flow_run_id) for s in statuses]),
        )
    errors: dict[int, list[str]] = {i: [e] for i, e in plan.errors.items()}
    waits: dict[int, float] = {}  # items the partner's token endpoint asked to hold back
    notes = dict(plan.notes)
    for push, res in zip(pushes, ari_results, strict=True):
        err = "; ".join(res.errors)[:1000]
        for item in push.items if err else ():
            errors.setdefault(item, []).append(f"{push.kind} to channel {push.channel_id}: {err}")
            if res.wait_seconds is not None:
                waits[item] = max(waits.get(item, 0.0), res.wait_seconds)
    for spush, sres in zip(statuses, status_results, strict=True):
        for item in spush.items:
            if sres.wait_seconds is not None:
                waits[item] = max(waits.get(item, 0.0), sres.wait_seconds)
            if sres.error:
                errors.setdefault(item, []).append(
                    f"status to channel {spush.channel_id}: {sres.error}"
                )
            elif sres.not_applicable:
                notes[item] = f"not applicable: channel {spush.channel_id} takes no status"
    for item_id, note in notes.items():
        logger.info("queue item %s: %s", item_id, note)
    # Held back by a partner's token wait, and failing for no other reason: put back as they
    # were (no attempt counted), due when the partner's window has passed.
    held = {i: ("; ".join(errors.pop(i)), w) for i, w in waits.items()
            if i in errors and i not in plan.errors}
    ok = [i.id for i in items if i.id not in errors and i.id not in held]
    with session_scope() as session:
        mark_outcomes(session, {i: n for i, n in notes.items() if i not in errors and i not in held})
        queue_repo.complete(session, ok, worker)
        queue_repo.defer(session, held, worker)
        counts = queue_repo.fail(session, {i: "; ".join(e) for i, e in errors.items()}, worker)
        _batch_log(session, flow_run_id, len(items), len(ok), errors, counts, held)
    logger.info("queue batch: %d items, %d done, %d failed, %d held back by a partner's token "
                "wait", len(items), len(ok), len(errors), len(held))

    def row(i: ClaimedItem) -> QueueRow:
        if i.id in held:
            result, detail = "retrying", f"held back {held[i.id][1]:.0f} s: {held[i.id][0]}"
        elif i.id in errors:
            result = "failed" if i.attempts >= i.max_attempts else "retrying"
            detail = "; ".join(errors[i.id])
        else:
            note = notes.get(i.id, "")
            result = "not applicable" if note.startswith("not applicable") else "completed"
            detail = note
        return QueueRow(item=i.id, entity=f"{i.entity_type} {i.entity_id}",
                        operation=i.operation, attempt=i.attempts, result=result,
                        detail=detail[:200])

    return [row(i) for i in items]


def _batch_log(session: Any, flow_run_id: UUID | None, processed: int, ok: int,
               errors: dict[int, list[str]], counts: dict[str, int],
               held: dict[int, tuple[str, float]]) -> None:
    log_id = start_log(session, None, "process_queue", flow_run_id)
    finish_log(session, log_id, processed=processed, success=ok, failed=len(errors) + len(held),
               errors=[f"item {i}: {'; '.join(e)}" for i, e in errors.items()]
               + [f"item {i}: held back {w:.0f} s: {e}" for i, (e, w) in held.items()],
               details={"dead_lettered": counts["failed"], "retrying": counts["retrying"],
                        "held_back": len(held)})
