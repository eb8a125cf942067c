"""ARI tasks: one window (about a month) of one channel's calendar, pushed as a delta."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.concurrency.asyncio import rate_limit

from channels.ari import compress, delta
from channels.base import ARIUpdate, ChannelError, TransientChannelError, UpdateResult
from db.engine import session_scope
from db.repositories import ari as ari_repo
from tasks.bookings import partner_limit
from tasks.resources import adapter_for, channel_info
from tasks.retry import PARTNER_TASK_OPTIONS, honour_retry_after

Kind = Literal["availability", "rates", "both"]


def month_windows(start: date, end: date) -> list[tuple[date, date]]:
    """Calendar-month windows covering start..end (inclusive): the unit of one ARI task."""
    windows = []
    cur = start
    while cur <= end:
        nxt = (cur.replace(day=1) + timedelta(days=32)).replace(day=1)
        windows.append((cur, min(end, nxt - timedelta(days=1))))
        cur = nxt
    return windows


def _describe(u: ARIUpdate) -> str:
    rate = f"/{u.partner_rate_plan_code}" if u.partner_rate_plan_code else ""
    return f"{u.partner_room_type_code}{rate} {u.start}..{u.end}"


def summarize(results: list[UpdateResult]) -> dict[str, Any]:
    ok = [r for r in results if r.ok]
    bad = [r for r in results if not r.ok]
    return {
        "updates": len(results),
        "ok": len(ok),
        "failed": len(bad),
        "transient_failed": sum(1 for r in bad if r.transient),
        "errors": [
            f"{_describe(r.update) if r.update else '?'}: {r.error_code or ''} {r.error}"
            for r in bad
        ],
        "warnings": [w for r in results for w in r.warnings],
    }


async def push_updates(
    channel_id: int, updates: list[ARIUpdate], overrides: dict[str, str] | None = None
) -> dict[str, Any]:
    """Send updates; record the accepted ones as the channel's acknowledged state."""
    if not updates:
        return summarize([])
    info = channel_info(channel_id)
    adapter = adapter_for(channel_id, overrides)
    await rate_limit(partner_limit(info.channel_name), strict=False)
    results = await adapter.push_ari(updates)
    accepted = [r.update for r in results if r.ok and r.update is not None]
    with session_scope() as session:
        ari_repo.save_acked(session, channel_id, accepted)
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
) -> dict[str, Any]:
    """Push what changed in one window since the channel last acknowledged it."""
    logger = get_run_logger()
    info = channel_info(channel_id)
    with session_scope() as session:
        changed: dict[Any, Any] = {}
        if kind in ("availability", "both"):
            changed.update(
                delta(
                    ari_repo.availability(
                        session, channel_id, start, end, room_type_ids, source="acked"
                    ),
                    ari_repo.availability(session, channel_id, start, end, room_type_ids),
                )
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
        return {**summarize([]), "window": [start.isoformat(), end.isoformat()]}
    try:
        summary = await push_updates(channel_id, updates, overrides)
    except ChannelError as exc:
        logger.warning("channel %s: ARI push %s..%s failed: %s", info.name, start, end, exc)
        if exc.transient:
            await honour_retry_after(exc)
        raise
    summary["window"] = [start.isoformat(), end.isoformat()]
    for err in summary["errors"]:
        logger.warning("channel %s: ARI update refused: %s", info.name, err)
    if summary["transient_failed"]:
        # Accepted updates are recorded; the retry recomputes the delta: only failures go again.
        raise TransientChannelError(
            info.channel_name, f"{summary['transient_failed']} ARI updates failed transiently"
        )
    logger.info(
        "channel %s: ARI %s..%s: %d updates, %d accepted, %d refused",
        info.name,
        start,
        end,
        summary["updates"],
        summary["ok"],
        summary["failed"],
    )
    return summary
