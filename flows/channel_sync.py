"""Channel sync flows: bookings in, ARI out, booking status out.

Each flow reads like a recipe: tasks do a page or a month each, repositories hold the SQL,
and every run leaves a channel_sync_logs row plus artifacts in the Prefect UI.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.runtime import flow_run
from prefect.states import Failed, State
from sqlalchemy import text

from channels.base import BookingStatus, ChannelError
from db.engine import session_scope
from db.repositories.channels import mark_sync_success
from db.repositories.sync_logs import finish_log, start_log
from flows.runner import SYNC_LOG_HOOKS
from innsync.settings import get_settings
from tasks.ari import Kind, month_windows, push_ari_window, push_updates
from tasks.bookings import partner_limit, pull_bookings_page
from tasks.resources import adapter_for, channel_info, clean_overrides, close_adapters

DEFAULT_HORIZON_DAYS = 365
MAX_FAILED_PAGES_IN_A_ROW = 3
PROGRESS_EVERY_SECONDS = 5.0
#: Time bounds (settings): a hung partner ends the run as TimedOut, its sync log `failed`.
SYNC_TIMEOUT = get_settings().sync_run_timeout_seconds
ARI_TIMEOUT = get_settings().ari_run_timeout_seconds


def _run_id() -> Any:
    return flow_run.get_id()


def _now_utc() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _artifact_key(*parts: object) -> str:
    raw = "-".join(str(p) for p in parts).lower()
    return "".join(c if c.isalnum() or c == "-" else "-" for c in raw)[:100]


def _finish(
    channel_id: int | None,
    log_id: int,
    operation: str,
    totals: dict[str, Any],
    errors: list[str],
    details: dict[str, Any],
) -> str:
    with session_scope() as session:
        status = finish_log(
            session,
            log_id,
            processed=totals["processed"],
            success=totals["success"],
            failed=totals["failed"],
            errors=errors,
            details=details,
        )
        if status == "success" and channel_id is not None:
            mark_sync_success(session, channel_id, operation, _now_utc())
    return status


def _outcome(result: dict[str, Any], status: str) -> dict[str, Any] | State[Any]:
    """Completed when something worked; Failed (with the same result) when nothing did."""
    if status == "failed":
        return Failed(message="; ".join(result["errors"][:3]) or "sync failed", data=result)
    return result


# ---------------------------------------------------------------- bookings in


@flow(name="sync-bookings", log_prints=True, timeout_seconds=SYNC_TIMEOUT, **SYNC_LOG_HOOKS)
async def sync_bookings(
    channel_id: int,
    start_date: date | None = None,
    end_date: date | None = None,
    max_pages: int = 500,
    push_availability: bool = True,
    config_overrides: dict[str, str] | None = None,
) -> Any:
    """Pull new/modified/cancelled bookings page by page: store exactly once, ack after commit,
    then close sold nights on every channel of the property."""
    logger = get_run_logger()
    info = channel_info(channel_id)
    overrides = clean_overrides(config_overrides)
    if not info.enabled:
        raise ValueError(f"channel {info.name} is disabled")
    with session_scope() as session:
        log_id = start_log(session, channel_id, "sync_bookings", _run_id())
    totals = {"processed": 0, "success": 0, "failed": 0}
    counts = {"new": 0, "updated": 0, "duplicates": 0, "unmapped": 0, "acked": 0}
    errors: list[str] = []
    overbooked: list[str] = []
    touched: set[tuple[int, str]] = set()
    progress = await acreate_progress_artifact(
        0.0,
        key=_artifact_key("sync-bookings", info.channel_name, channel_id),
        description=f"bookings pulled from {info.name}",
    )
    cursor: str | None = None
    ari_summary: dict[str, Any] = {}
    try:
        failed_in_a_row = 0
        last_progress = time.monotonic()
        for page_no in range(1, max_pages + 1):
            try:
                page = await pull_bookings_page(channel_id, start_date, end_date, cursor, overrides)
            except Exception as exc:  # transient errors were already retried by the task
                errors.append(f"page {page_no}: {exc}")
                totals["failed"] += 1
                failed_in_a_row += 1
                # A garbled page is re-delivered by the partner: try again, a few times.
                if failed_in_a_row >= MAX_FAILED_PAGES_IN_A_ROW:
                    break
                continue
            failed_in_a_row = 0
            totals["processed"] += page["processed"]
            totals["success"] += page["new"] + page["updated"] + page["duplicates"]
            totals["failed"] += page["unmapped"]
            for k in counts:
                counts[k] += page[k] if k != "acked" else page["acked"]
            errors += page["errors"] + page["page_errors"]
            overbooked += page["overbooked"]
            touched.update((rt, d) for rt, d in page["touched"])
            if time.monotonic() - last_progress >= PROGRESS_EVERY_SECONDS:
                # Partners don't say how many are pending: the bar creeps towards 99 % and
                # the description carries the real counts.
                last_progress = time.monotonic()
                await aupdate_progress_artifact(
                    progress,
                    99.0 * page_no / (page_no + 10),
                    description=f"{info.name}: {totals['processed']} bookings in {page_no} pages",
                )
            # Queue-style partners release the next messages (a modification after its
            # booking) once the previous ones were acked: pull until a page brings nothing.
            if page["has_more"] and page["cursor"]:
                # Cursor-paginated partners: follow the cursor, old bookings included.
                cursor = page["cursor"]
                continue
            cursor = None
            # Queue-style partners release the next messages (a modification after its
            # booking, the next 125) once these were acked: pull again while that helps.
            progressed = page["acked"] > 0 or page["new"] + page["updated"] > 0
            if not progressed:
                # Empty, or only re-deliveries of acked messages; ack failures are in errors.
                break
        await aupdate_progress_artifact(
            progress, 100.0, description=f"{info.name}: {totals['processed']} bookings"
        )
        if push_availability and touched and info.property_id is not None:
            ari_summary = await _close_sold_nights(info.property_id, touched)
    finally:
        await close_adapters()
    result = {
        "success": not errors or totals["success"] > 0,
        "recordsProcessed": totals["processed"],
        "recordsSuccess": totals["success"],
        "recordsFailed": totals["failed"],
        "errors": errors,
        **counts,
        "overbooked": overbooked,
        "availabilityPushed": ari_summary,
    }
    status = _finish(
        channel_id,
        log_id,
        "sync_bookings",
        totals,
        errors,
        {**counts, "overbooked": overbooked, "availability": ari_summary},
    )
    await acreate_markdown_artifact(
        key=_artifact_key("bookings-summary", info.channel_name, channel_id),
        description=f"bookings from {info.name}",
        markdown=(
            f"## Bookings from {info.name}: {status}\n\n"
            f"- processed: **{totals['processed']}** (new {counts['new']}, updated "
            f"{counts['updated']}, duplicates {counts['duplicates']}, unmapped "
            f"{counts['unmapped']})\n- acknowledged: {counts['acked']}\n"
            f"- overbooked (accepted, flagged): {', '.join(overbooked) or 'none'}\n"
            f"- errors: {len(errors)}\n" + "".join(f"  - {e}\n" for e in errors[:20])
        ),
    )
    if overbooked:
        await acreate_table_artifact(
            key=_artifact_key("overbookings", info.channel_name, channel_id),
            table=[{"channel": info.name, "booking": ext} for ext in overbooked],
            description="bookings accepted on sold-out nights: relocate or contact the guest",
        )
    logger.info("sync-bookings %s: %s", info.name, status)
    return _outcome(result, status) if status == "failed" else result


async def _close_sold_nights(property_id: int, touched: set[tuple[int, str]]) -> dict[str, Any]:
    """Push the availability of the nights a booking changed to every enabled channel."""
    room_types = sorted({rt for rt, _ in touched})
    days = sorted(date.fromisoformat(d) if isinstance(d, str) else d for _, d in touched)
    with session_scope() as session:
        channel_ids = list(
            session.execute(
                text("SELECT id FROM channels WHERE property_id = :p AND enabled ORDER BY id"),
                {"p": property_id},
            ).scalars()
        )
    results = await asyncio.gather(
        *[
            push_ari_window(cid, "availability", days[0], days[-1], room_types, None)
            for cid in channel_ids
        ],
        return_exceptions=True,
    )
    out: dict[str, Any] = {}
    for cid, res in zip(channel_ids, results, strict=True):
        out[str(cid)] = (
            {"error": str(res)}
            if isinstance(res, BaseException)
            else {"updates": res["updates"], "ok": res["ok"], "failed": res["failed"]}
        )
    return out


@flow(name="sync-booking-by-id", timeout_seconds=SYNC_TIMEOUT, **SYNC_LOG_HOOKS)
async def sync_booking_by_id(
    channel_id: int, external_id: str, webhook_event_id: int | None = None
) -> Any:
    """Fetch one booking a partner pushed a hint for, store it, ack it, close sold nights."""
    from tasks.bookings import store_and_ack

    logger = get_run_logger()
    info = channel_info(channel_id)
    with session_scope() as session:
        log_id = start_log(session, channel_id, "webhook_booking", _run_id())
    errors: list[str] = []
    result: dict[str, Any] = {}
    try:
        record = await adapter_for(channel_id).fetch_booking(external_id)
        if record is None:
            errors.append(f"{info.name}: booking {external_id} not found at the partner")
        else:
            result = await store_and_ack(channel_id, [record])
            errors += result["errors"]
            if result["touched"] and info.property_id is not None:
                await _close_sold_nights(info.property_id, set(map(tuple, result["touched"])))
    except ChannelError as exc:
        errors.append(str(exc))
    finally:
        await close_adapters()
    ok = bool(result) and not errors
    totals = {"processed": 1, "success": int(ok), "failed": int(not ok)}
    status = _finish(
        channel_id,
        log_id,
        "webhook_booking",
        totals,
        errors,
        {"booking": external_id, "webhook_event_id": webhook_event_id},
    )
    if webhook_event_id is not None:
        with session_scope() as session:
            session.execute(
                text(
                    "UPDATE webhook_events SET status = :st, error = :err, processed_at = now() "
                    "WHERE id = :id"
                ),
                {
                    "id": webhook_event_id,
                    "st": "processed" if ok else "failed",
                    "err": "; ".join(errors)[:2000] or None,
                },
            )
    logger.info("webhook booking %s on %s: %s", external_id, info.name, status)
    out = {
        "success": ok,
        "booking": external_id,
        "errors": errors,
        "new": result.get("new", 0),
        "updated": result.get("updated", 0),
        "overbooked": result.get("overbooked", []),
    }
    return _outcome(out, status) if status == "failed" else out


# ---------------------------------------------------------------- ARI out


async def _push_channel(
    channel_id: int,
    kind: Kind,
    start: date,
    end: date,
    operation: str,
    room_type_ids: list[int] | None,
    rate_plan_ids: list[int] | None,
    overrides: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Month by month for one channel, with its own sync log."""
    info = channel_info(channel_id)
    with session_scope() as session:
        log_id = start_log(session, channel_id, operation, _run_id())
    windows = month_windows(start, end)
    results = await asyncio.gather(
        *[
            push_ari_window(channel_id, kind, s, e, room_type_ids, rate_plan_ids, overrides)
            for s, e in windows
        ],
        return_exceptions=True,
    )
    totals = {"processed": 0, "success": 0, "failed": 0}
    errors: list[str] = []
    rows = []
    for (s, e), res in zip(windows, results, strict=True):
        if isinstance(res, BaseException):
            errors.append(f"{s}..{e}: {res}")
            totals["failed"] += 1
            rows.append(
                {
                    "channel": info.name,
                    "window": f"{s}..{e}",
                    "updates": "?",
                    "accepted": 0,
                    "refused": "all",
                    "error": str(res)[:200],
                }
            )
            continue
        totals["processed"] += res["updates"]
        totals["success"] += res["ok"]
        totals["failed"] += res["failed"]
        errors += res["errors"]
        if res["updates"]:
            rows.append(
                {
                    "channel": info.name,
                    "window": f"{s}..{e}",
                    "updates": res["updates"],
                    "accepted": res["ok"],
                    "refused": res["failed"],
                    "error": "; ".join(res["errors"])[:200],
                }
            )
    status = _finish(channel_id, log_id, operation, totals, errors, {"windows": len(windows)})
    return {
        "channel_id": channel_id,
        "channel": info.name,
        "status": status,
        **totals,
        "errors": errors,
        "rows": rows,
    }


async def _push(
    channel_ids: list[int],
    kind: Kind,
    start: date | None,
    end: date | None,
    operation: str,
    room_type_ids: list[int] | None = None,
    rate_plan_ids: list[int] | None = None,
    overrides: dict[str, str] | None = None,
) -> Any:
    start = start or date.today()
    end = end or start + timedelta(days=DEFAULT_HORIZON_DAYS - 1)
    if end < start:
        raise ValueError("end_date is before start_date")
    try:
        per_channel = await asyncio.gather(
            *[
                _push_channel(
                    cid, kind, start, end, operation, room_type_ids, rate_plan_ids, overrides
                )
                for cid in channel_ids
            ]
        )
    finally:
        await close_adapters()
    rows = [r for pc in per_channel for r in pc.pop("rows")]
    await acreate_table_artifact(
        key=_artifact_key(operation, "result"),
        table=rows or [{"result": "nothing changed"}],
        description=f"{operation} {start}..{end}: what was sent and what the partners said",
    )
    errors = [f"{pc['channel']}: {e}" for pc in per_channel for e in pc["errors"]]
    result = {
        "success": all(pc["status"] != "failed" for pc in per_channel),
        "recordsProcessed": sum(pc["processed"] for pc in per_channel),
        "recordsSuccess": sum(pc["success"] for pc in per_channel),
        "recordsFailed": sum(pc["failed"] for pc in per_channel),
        "errors": errors,
        "channels": per_channel,
    }
    if per_channel and not result["success"] and not result["recordsSuccess"]:
        return Failed(message="; ".join(errors[:3]) or f"{operation} failed", data=result)
    return result


@flow(name="push-availability", timeout_seconds=ARI_TIMEOUT, **SYNC_LOG_HOOKS)
async def push_availability(
    channel_id: int,
    room_type_ids: list[int] | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    config_overrides: dict[str, str] | None = None,
) -> Any:
    """Push availability changes (rooms to sell, stop-sell) of one channel as a delta."""
    return await _push(
        [channel_id],
        "availability",
        start_date,
        end_date,
        "push_availability",
        room_type_ids=room_type_ids,
        overrides=clean_overrides(config_overrides),
    )


@flow(name="push-rates", timeout_seconds=ARI_TIMEOUT, **SYNC_LOG_HOOKS)
async def push_rates(
    channel_id: int,
    rate_plan_ids: list[int] | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    config_overrides: dict[str, str] | None = None,
) -> Any:
    """Push rate and restriction changes of one channel as a delta."""
    return await _push(
        [channel_id],
        "rates",
        start_date,
        end_date,
        "push_rates",
        rate_plan_ids=rate_plan_ids,
        overrides=clean_overrides(config_overrides),
    )


@flow(name="full-ari-sync", timeout_seconds=ARI_TIMEOUT, **SYNC_LOG_HOOKS)
async def full_ari_sync(
    property_id: int | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    channel_ids: list[int] | None = None,
) -> Any:
    """Availability, rates and restrictions of every enabled channel over the horizon."""
    with session_scope() as session:
        ids = list(
            session.execute(
                text(
                    "SELECT id FROM channels WHERE enabled "
                    "AND (CAST(:p AS bigint) IS NULL OR property_id = :p) ORDER BY id"
                ),
                {"p": property_id},
            ).scalars()
        )
    if channel_ids:
        ids = [i for i in ids if i in set(channel_ids)]
    start = date.today()
    return await _push(
        ids, "both", start, start + timedelta(days=horizon_days - 1), "full_ari_sync"
    )


@flow(name="push-ari-values", timeout_seconds=ARI_TIMEOUT, **SYNC_LOG_HOOKS)
async def push_ari_values(
    channel_id: int, updates: list[dict[str, Any]], config_overrides: dict[str, str] | None = None
) -> Any:
    """Push explicit values (the seed's sync-availability/sync-rates with a value given)."""
    from channels.base import ARIUpdate

    info = channel_info(channel_id)
    with session_scope() as session:
        log_id = start_log(session, channel_id, "push_values", _run_id())
    try:
        summary = await push_updates(
            channel_id,
            [ARIUpdate.model_validate(u) for u in updates],
            clean_overrides(config_overrides),
        )
    except ChannelError as exc:
        summary = {"updates": len(updates), "ok": 0, "failed": len(updates), "errors": [str(exc)]}
    finally:
        await close_adapters()
    totals = {
        "processed": summary["updates"],
        "success": summary["ok"],
        "failed": summary["failed"],
    }
    status = _finish(channel_id, log_id, "push_values", totals, summary["errors"], {})
    result = {
        "success": status == "success",
        "channel": info.name,
        **totals,
        "errors": summary["errors"],
    }
    return _outcome(result, status) if status == "failed" else result


# ---------------------------------------------------------------- status out


@flow(name="update-booking-status", timeout_seconds=SYNC_TIMEOUT, **SYNC_LOG_HOOKS)
async def update_booking_status(channel_booking_id: int, status: str) -> Any:
    """Push a PMS status change (cancelled, no-show, ...) of one booking to its channel."""
    wanted = BookingStatus(status)
    with session_scope() as session:
        row = session.execute(
            text("SELECT channel_id, external_booking_id FROM channel_bookings WHERE id = :id"),
            {"id": channel_booking_id},
        ).first()
    if row is None:
        raise LookupError(f"channel booking {channel_booking_id} not found")
    info = channel_info(row.channel_id)
    with session_scope() as session:
        log_id = start_log(session, row.channel_id, "update_booking_status", _run_id())
    from prefect.concurrency.asyncio import rate_limit

    try:
        await rate_limit(partner_limit(info.channel_name), strict=False)
        outcome = await adapter_for(row.channel_id).update_booking_status(
            row.external_booking_id, wanted
        )
        errors = [] if outcome.ok else [f"{outcome.error_code or ''} {outcome.error or ''}".strip()]
    except ChannelError as exc:
        outcome, errors = None, [str(exc)]
    finally:
        await close_adapters()
    ok = outcome is not None and outcome.ok
    not_applicable = outcome is not None and outcome.error_code == "NOT_SUPPORTED"
    totals = {"processed": 1, "success": int(ok), "failed": int(not ok and not not_applicable)}
    with session_scope() as session:
        log_status = finish_log(
            session,
            log_id,
            processed=1,
            success=totals["success"],
            failed=totals["failed"],
            errors=[] if not_applicable else errors,
            details={
                "booking": row.external_booking_id,
                "status": status,
                "not_applicable": not_applicable,
                "partner_said": errors,
            },
            status="not_applicable" if not_applicable else None,
        )
    result = {"success": ok or not_applicable, "notApplicable": not_applicable, "errors": errors}
    return _outcome(result, log_status) if log_status == "failed" else result
