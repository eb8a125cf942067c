"""ARI out: diff, compress, push and record per-update outcomes.

`push_ari_window` is one window (about a month) of one channel's calendar, pushed as a
delta; `push_channel` is one channel over a range, month by month, under its own sync log
(flows and the queue's handlers both call it); `close_sold_nights` pushes the nights a
booking changed to every channel of the property.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date, timedelta
from typing import Any, Literal
from uuid import UUID

from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.exceptions import MissingContextError

from channels.ari import compress, delta
from channels.base import ARIUpdate, ChannelError, TransientChannelError, UpdateResult
from db.engine import session_scope
from db.repositories import ari as ari_repo
from db.repositories.push_leases import months_of
from tasks.limits import take_partner_slot
from tasks.push_lock import PushLock, push_lock, record_acked
from tasks.resources import ChannelInfo, adapter_for, channel_info, property_channel_infos
from tasks.results import ChannelPush, ChannelPushBrief, PushSummary, WindowRow
from tasks.retry import PARTNER_TASK_OPTIONS, honour_retry_after, token_wait, with_partner_retries
from tasks.runs import sync_run

Kind = Literal["availability", "rates", "both"]
#: A push that waited this long for its partner's rate-limit slot says so in its log.
BUDGET_WAIT_LOGGED_S = 2.0


def month_windows(start: date, end: date) -> list[tuple[date, date]]:
    """Calendar-month windows covering start..end (inclusive): the unit of one ARI task."""
    return [(max(start, month), min(end, (month + timedelta(days=32)).replace(day=1)
                                     - timedelta(days=1)))
            for month in months_of(start, end)]


def _logger() -> Any:
    try:
        return get_run_logger()
    except MissingContextError:  # called outside a flow or task run
        return logging.getLogger("innsync.ari")


def _describe(u: ARIUpdate) -> str:
    rate = f"/{u.partner_rate_plan_code}" if u.partner_rate_plan_code else ""
    return f"{u.partner_room_type_code}{rate} {u.start}..{u.end}"


def summarize(results: list[UpdateResult]) -> PushSummary:
    """Per-update outcomes folded into counts and error lines."""
    bad = [r for r in results if not r.ok]
    return PushSummary(
        updates=len(results),
        ok=len(results) - len(bad),
        failed=len(bad),
        transient_failed=sum(1 for r in bad if r.transient),
        errors=[
            f"{_describe(r.update) if r.update else '?'}: {r.error_code or ''} {r.error}"
            for r in bad
        ],
        warnings=[w for r in results for w in r.warnings],
    )


async def push_updates(
    channel_id: int,
    updates: list[ARIUpdate],
    overrides: dict[str, str] | None = None,
    lock: PushLock | None = None,
    info: ChannelInfo | None = None,
) -> PushSummary:
    """Send updates; record the accepted ones as the channel's acknowledged state. Without
    the caller's `lock`, the push holds the leases of the updates' months itself."""
    if not updates:
        return summarize([])
    info = info or channel_info(channel_id)
    if lock is None:
        async with push_lock(channel_id, info.channel_name, min(u.start for u in updates),
                             max(u.end for u in updates)) as held:
            return await push_updates(channel_id, updates, overrides, held, info)
    adapter = adapter_for(channel_id, overrides)
    asked = time.monotonic()
    await take_partner_slot(info.channel_name)
    if (waited := time.monotonic() - asked) >= BUDGET_WAIT_LOGGED_S:
        _logger().info("channel %s: ARI push waited %.1f s for a slot of %s's request "
                       "budget", info.name, waited, info.channel_name)
    results = await adapter.push_ari(updates)
    if not record_acked(lock, [r.update for r in results if r.ok and r.update is not None]):
        _logger().warning(
            "channel %s: ARI push lost its lease while it ran; what it sent is not recorded "
            "as acknowledged and goes again with the next push", info.name)
    return summarize(results)


@task(name="push-ari-window", cache_policy=NONE, **PARTNER_TASK_OPTIONS)
async def push_ari_window(
    channel_id: int,
    kind: Kind,
    start: date,
    end: date,
    room_type_ids: list[int] | None = None,
    rate_plan_ids: list[int] | None = None,
    overrides: dict[str, str] | None = None,
    info: ChannelInfo | None = None,
) -> PushSummary:
    """Push what changed in one window since the channel last acknowledged it (`info`: the
    caller read the channel's facts already)."""
    info = info or channel_info(channel_id)
    try:
        async with push_lock(channel_id, info.channel_name, start, end) as lock:
            return await _push_window(info, kind, start, end, room_type_ids,
                                      rate_plan_ids, overrides, lock)
    except ChannelError as exc:
        if exc.transient:  # outside the lock: another push may go meanwhile
            await honour_retry_after(exc)
        raise


async def _push_window(
    info: ChannelInfo, kind: Kind, start: date, end: date,
    room_type_ids: list[int] | None, rate_plan_ids: list[int] | None,
    overrides: dict[str, str] | None, lock: PushLock,
) -> PushSummary:
    channel_id, logger = info.id, _logger()
    with session_scope() as session:
        changed: dict[Any, Any] = {}
        if kind in ("availability", "both"):
            changed.update(
                ari_repo.availability_changes(session, channel_id, start, end, room_type_ids)
            )
        if kind in ("rates", "both"):
            changed.update(
                delta(
                    ari_repo.rates(session, channel_id, start, end, rate_plan_ids, source="acked"),
                    ari_repo.rates(session, channel_id, start, end, rate_plan_ids),
                )
            )
    adapter = adapter_for(channel_id, overrides)
    updates = compress(changed, weekday_patterns=getattr(adapter, "supports_weekdays", False))
    if not updates:
        return PushSummary(window=(start, end))
    try:
        summary = await push_updates(channel_id, updates, overrides, lock, info)
    except ChannelError as exc:
        logger.warning("channel %s: ARI push %s..%s failed: %s", info.name, start, end, exc)
        raise
    summary.window = (start, end)
    for err in summary.errors:
        logger.warning("channel %s: ARI update refused: %s", info.name, err)
    if summary.transient_failed:
        # Accepted updates are recorded; the retry recomputes the delta: only failures go again.
        raise TransientChannelError(
            info.channel_name, f"{summary.transient_failed} ARI updates failed transiently"
        )
    logger.info(
        "channel %s: ARI %s..%s: %d updates, %d accepted, %d refused",
        info.name,
        start,
        end,
        summary.updates,
        summary.ok,
        summary.failed,
    )
    return summary


async def push_channel(
    channel_id: int,
    kind: Kind,
    start: date,
    end: date,
    operation: str,
    room_type_ids: list[int] | None = None,
    rate_plan_ids: list[int] | None = None,
    overrides: dict[str, str] | None = None,
    *,
    flow_run_id: UUID | None = None,
    retry_windows: bool = True,
    details: dict[str, Any] | None = None,
) -> ChannelPush:
    """One channel's delta over start..end, month by month, under its own sync log.

    `retry_windows=False` runs each window once (the queue's backoff retries its items)."""
    info = channel_info(channel_id)
    windows = month_windows(start, end)
    push = push_ari_window if retry_windows else push_ari_window.fn
    rows: list[WindowRow] = []
    waits: list[float] = []
    async with sync_run(channel_id, operation, flow_run_id) as run:
        run.details.update(details or {"windows": len(windows)})
        results = await asyncio.gather(
            *[
                push(channel_id, kind, s, e, room_type_ids, rate_plan_ids, overrides)
                for s, e in windows
            ],
            return_exceptions=True,
        )
        for (s, e), res in zip(windows, results, strict=True):
            if isinstance(res, BaseException):
                if (wait := token_wait(res)) is not None:
                    waits.append(wait)
                run.errors.append(f"{s}..{e}: {res}")
                run.totals.add(failed=1)
                rows.append(WindowRow(channel=info.name, window=f"{s}..{e}", updates="?",
                                      accepted=0, refused="all", error=str(res)[:200]))
                continue
            run.totals.add(res.updates, res.ok, res.failed)
            run.errors += res.errors
            if res.updates:
                rows.append(WindowRow(channel=info.name, window=f"{s}..{e}",
                                      updates=res.updates, accepted=res.ok, refused=res.failed,
                                      error="; ".join(res.errors)[:200]))
    return ChannelPush(
        channel_id=channel_id,
        channel=info.name,
        status=run.status,
        processed=run.totals.processed,
        success=run.totals.success,
        failed=run.totals.failed,
        errors=run.errors,
        rows=rows,
        wait_seconds=max(waits) if waits else None,
    )


async def close_sold_nights(
    property_id: int, touched: set[tuple[int, date]], *, plain: bool = False
) -> dict[str, ChannelPushBrief]:
    """Push the availability of the nights a booking changed to every enabled channel of
    the property; one brief per channel id. `plain` (a scheduled batch of many channels):
    each push is a plain call with the task's retry policy, not a Prefect task run each."""
    if not touched:
        return {}
    room_types = sorted({rt for rt, _ in touched})
    days = sorted(d for _, d in touched)
    infos = property_channel_infos(property_id)  # one query, not one per push
    channel_ids = list(infos)

    async def push(cid: int) -> PushSummary:
        if not plain:
            return await push_ari_window(cid, "availability", days[0], days[-1], room_types,
                                         None, info=infos.get(cid))
        return await with_partner_retries(lambda: push_ari_window.fn(
            cid, "availability", days[0], days[-1], room_types, None, info=infos.get(cid)))

    results = await asyncio.gather(*[push(cid) for cid in channel_ids], return_exceptions=True)
    return {
        str(cid): ChannelPushBrief(error=str(res))
        if isinstance(res, BaseException)
        else ChannelPushBrief(updates=res.updates, ok=res.ok, failed=res.failed)
        for cid, res in zip(channel_ids, results, strict=True)
    }
