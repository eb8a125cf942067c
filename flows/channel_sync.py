"""Channel sync flows: bookings in, ARI out, booking status out.

Each flow is a recipe: the work is in tasks/ (bookings, ari, status; one implementation
each, shared with the queue's handlers), the run bookkeeping in tasks/runs.py, the SQL in
db/repositories. Every run leaves a channel_sync_logs row plus artifacts in the Prefect UI,
and returns a typed result (tasks/results.py) whose counts are the sync log's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.states import Failed, State

from channels.base import ARIUpdate, BookingStatus, ChannelError
from db.engine import session_scope
from db.repositories.accounts import account_connections
from db.repositories.bookings import booking_ref
from db.repositories.channels import enabled_channel_ids
from db.repositories.sync_logs import last_success_started
from db.repositories.webhooks import finish_event
from flows.runner import SYNC_LOG_HOOKS
from innsync.settings import get_settings
from tasks.ari import Kind, close_sold_nights, push_channel, push_updates
from tasks.bookings import pull_account_page, pull_bookings_page, store_and_ack
from tasks.closers import HotelClosers
from tasks.resources import (
    ChannelInfo,
    adapter_for,
    adapter_pool,
    channel_info,
    channel_infos,
    clean_overrides,
)
from tasks.results import (
    AccountPageResult,
    AriOutcome,
    BookingFetchOutcome,
    BookingsOutcome,
    ChannelPushBrief,
    PageResult,
    PushSummary,
    StatusOutcome,
    StoreResult,
    ValuesOutcome,
)
from tasks.retry import with_partner_retries
from tasks.runs import SyncRun, flow_result, sync_run, sync_runs
from tasks.status import push_status_task, record_status

DEFAULT_HORIZON_DAYS = 365
MAX_FAILED_PAGES_IN_A_ROW = 3
PROGRESS_EVERY_SECONDS = 5.0
#: How far before the last fully successful pull an incremental pull reaches back: covers the
#: partner's clock against the database's and a change committed at the partner while that
#: pull ran. Re-reading a few minutes of changes costs little; ingest drops what it has.
CHANGE_WINDOW_MARGIN = timedelta(minutes=10)
#: Time bounds (settings): a hung partner ends the run as TimedOut, its sync log `failed`.
SYNC_TIMEOUT = get_settings().sync_run_timeout_seconds
ARI_TIMEOUT = get_settings().ari_run_timeout_seconds


def _artifact_key(*parts: object) -> str:
    raw = "-".join(str(p) for p in parts).lower()
    return "".join(c if c.isalnum() or c == "-" else "-" for c in raw)[:100]


# ---------------------------------------------------------------- bookings in


@flow(name="sync-bookings", persist_result=True, log_prints=True, timeout_seconds=SYNC_TIMEOUT,
      **SYNC_LOG_HOOKS)
async def sync_bookings(
    channel_id: int,
    start_date: date | None = None,
    end_date: date | None = None,
    max_pages: int = 500,
    push_availability: bool = True,
    config_overrides: dict[str, str] | None = None,
) -> BookingsOutcome | State[Any]:
    """Pull new/modified/cancelled bookings page by page: store exactly once, ack after commit,
    then close sold nights on every channel of the property.

    Without dates or config overrides the pull is incremental where the partner filters by
    change time (Airbnb): what changed since the last fully successful pull started, less
    CHANGE_WINDOW_MARGIN. The first pull reads everything; after a failed or partial pull the
    window stays at the last success, so what that pull missed is read again. Queue partners
    deliver only what is unacknowledged anyway.
    """
    out, status = await pull_bookings(
        channel_id, start_date, end_date, max_pages, push_availability, config_overrides
    )
    return flow_result(out, status)


async def pull_bookings(
    channel_id: int,
    start_date: date | None = None,
    end_date: date | None = None,
    max_pages: int = 500,
    push_availability: bool = True,
    config_overrides: dict[str, str] | None = None,
    *,
    in_batch: bool = False,
    first_slot_taken: bool = False,
    info: ChannelInfo | None = None,
) -> tuple[BookingsOutcome, str]:
    """The one implementation of a channel's booking pull (see sync_bookings), returning the
    outcome and the sync log's status. `in_batch` (a scheduled batch of many channels,
    flows/scheduled.py): pages are plain calls, not a Prefect task run each (with the tasks'
    retry policy for transient partner errors: _page_with_retries), and no progress or summary
    artifact is made per channel (the batch makes one table); overbookings still get theirs.
    `first_slot_taken`: the batch took the first fetch's rate-limit slot already; `info`: it
    read the channel's facts already (with its other channels', in one query)."""
    logger = get_run_logger()
    info = info or channel_info(channel_id)
    overrides = clean_overrides(config_overrides)
    if not info.enabled:
        raise ValueError(f"channel {info.name} is disabled")
    fetch_page: Any = (functools.partial(_page_with_retries, info=info) if in_batch
                       else pull_bookings_page)
    out = BookingsOutcome(success=False)
    touched: set[tuple[int, date]] = set()
    progress = None if in_batch else await acreate_progress_artifact(
        0.0,
        key=_artifact_key("sync-bookings", info.channel_name, channel_id),
        description=f"bookings pulled from {info.name}",
    )
    async with sync_run(channel_id, "sync_bookings") as run:
        # An override (another endpoint or hotel) is not the channel whose history we have.
        incremental = start_date is None and end_date is None and not overrides
        since = _change_window(channel_id) if incremental else None
        if since is not None:
            run.details["changed_since"] = since.isoformat()
        cursor: str | None = None
        seen_messages: set[str] = set()
        failed_in_a_row = 0
        last_progress = time.monotonic()
        for page_no in range(1, max_pages + 1):
            try:
                page = await fetch_page(channel_id, start_date, end_date, cursor, overrides,
                                        since, slot_taken=first_slot_taken and page_no == 1)
            except Exception as exc:  # transient errors were already retried by the task
                _page_failed([run], page_no, exc)
                failed_in_a_row += 1
                # A garbled page is re-delivered by the partner: try again, a few times.
                if failed_in_a_row >= MAX_FAILED_PAGES_IN_A_ROW:
                    break
                continue
            failed_in_a_row = 0
            _absorb(run, out, touched, page)
            if progress is not None and time.monotonic() - last_progress >= PROGRESS_EVERY_SECONDS:
                # Partners don't say how many are pending: the bar creeps towards 99 % and
                # the description carries the real counts.
                last_progress = time.monotonic()
                await aupdate_progress_artifact(
                    progress,
                    99.0 * page_no / (page_no + 10),
                    description=f"{info.name}: {run.totals.processed} bookings in {page_no} pages",
                )
            if page.has_more and page.cursor:
                # Cursor-paginated partners: follow the cursor, old bookings included.
                cursor = page.cursor
                continue
            cursor = None
            if page.final:  # a listing partner's traversal is complete
                break
            # Queue-style partners release the next messages (a modification after its
            # booking, the next 125) once these were acked: pull again while that helps.
            if not (page.acked > 0 or page.new + page.updated > 0):
                # Empty, or only re-deliveries of acked messages; ack failures are in errors.
                break
            # Only messages this run has already had (same booking, same content): partner
            # re-deliveries, whose stamp may be newer (Booking.com's root TimeStamp makes
            # them look like updates). Pulling on could go on for ever; stop here.
            fresh = set(page.message_keys) - seen_messages
            seen_messages.update(page.message_keys)
            if not fresh:
                break
        if progress is not None:
            await aupdate_progress_artifact(
                progress, 100.0, description=f"{info.name}: {run.totals.processed} bookings"
            )
        if push_availability and touched and info.property_id is not None:
            out.availability_pushed = await close_sold_nights(info.property_id, touched,
                                                              plain=in_batch)
        _details(run, out)
    _conclude(run, out)
    if not in_batch:
        await _bookings_summary(info.name, info.channel_name, channel_id, run.status, out)
    if out.overbooked:
        await _overbooking_artifact(info.name, info.channel_name, channel_id, out.overbooked)
    logger.info("sync-bookings %s: %s", info.name, run.status)
    return out, run.status


async def _overbooking_artifact(name: str, partner: str, channel_id: int,
                                overbooked: list[str]) -> None:
    await acreate_table_artifact(
        key=_artifact_key("overbookings", partner, channel_id),
        table=[{"channel": name, "booking": ext} for ext in overbooked],
        description="bookings accepted on sold-out nights: relocate or contact the guest",
    )


def _absorb(run: SyncRun, out: BookingsOutcome, touched: set[tuple[int, date]] | None,
            page: PageResult) -> None:
    """Count one stored page into the run's totals and the outcome (and its sold nights
    into `touched`, for a caller that closes them later)."""
    run.totals.add(page.processed, page.new + page.updated + page.duplicates, page.unmapped)
    out.new += page.new
    out.updated += page.updated
    out.duplicates += page.duplicates
    out.unmapped += page.unmapped
    out.acked += page.acked
    run.errors += page.errors + page.page_errors
    out.overbooked += page.overbooked
    if touched is not None:
        touched.update(page.touched)


def _page_failed(runs: Iterable[SyncRun], page_no: int, exc: Exception) -> None:
    for run in runs:
        run.errors.append(f"page {page_no}: {exc}")
        run.totals.add(failed=1)


def _details(run: SyncRun, out: BookingsOutcome) -> None:
    run.details.update(
        new=out.new, updated=out.updated, duplicates=out.duplicates, unmapped=out.unmapped,
        acked=out.acked, overbooked=out.overbooked,
        availability={k: v.wire() for k, v in out.availability_pushed.items()},
    )


def _conclude(run: SyncRun, out: BookingsOutcome) -> None:
    out.success = not run.errors or run.totals.success > 0
    out.records_processed = run.totals.processed
    out.records_success = run.totals.success
    out.records_failed = run.totals.failed
    out.errors = run.errors


async def pull_account_bookings(
    account_id: int, channel_ids: list[int], max_pages: int = 500, *,
    first_slot_taken: bool = False,
) -> dict[int, tuple[BookingsOutcome, str]]:
    """The scheduled pull of an account-wide partner's channels (issue 13): one fetch per
    page for the whole account, not one per hotel, routed to `channel_ids` by hotel code
    (tasks/bookings.pull_account_page). Each channel keeps its own sync log, counts and
    availability push; bookings for hotels the account maps to no channel are recorded as
    unroutable and not acknowledged.

    The first page asks for every connected hotel, so unroutable bookings are seen; once a
    page held bookings that are not for these channels, the next pages ask for these
    channels' hotels only (`hotel_ids`), so bookings nobody acknowledges never fill the
    pages (the partner moves them to e-mail after ~30 minutes)."""
    logger = get_run_logger()
    infos = channel_infos(channel_ids)
    partner = next(iter(infos.values())).channel_name
    with session_scope() as session:
        connections = account_connections(session, account_id)
    code_of = {c.channel_id: c.hotel_code for c in connections}
    route = {code_of[cid]: cid for cid in channel_ids if cid in code_of}
    outs = {cid: BookingsOutcome(success=False) for cid in channel_ids}
    async with contextlib.AsyncExitStack() as stack:
        opened = await stack.enter_async_context(sync_runs(channel_ids, "sync_bookings"))
        runs = {run.channel_id: run for run in opened if run.channel_id is not None}
        for cid in channel_ids:
            if cid not in code_of:
                runs[cid].errors.append("no hotelId: the account cannot route bookings to it")
        adapter = adapter_for(channel_ids[0])
        # Hotels' sold nights are closed on their other channels, several hotels at once,
        # one close at a time per hotel (the pages that came meanwhile go in its next push).
        closers: HotelClosers[dict[str, ChannelPushBrief]] = HotelClosers(
            lambda prop, nights: close_sold_nights(prop, nights, plain=True),
            lambda cid, pushed: outs[cid].availability_pushed.update(pushed),
            get_settings().pull_batch_parallel)
        # Ended early (its time bound, an error): the closes still in flight stop with it.
        stack.callback(closers.cancel)

        hotel_ids: list[str] | None = None
        seen: set[str] = set()
        unroutable: set[str] = set()
        failed_in_a_row = 0
        for page_no in range(1, max_pages + 1):
            tries = [first_slot_taken and page_no == 1]  # the first try's slot is taken

            async def once(ids: list[str] | None = hotel_ids,
                           taken: list[bool] = tries) -> AccountPageResult:
                slot = taken.pop() if taken else False
                return await pull_account_page(account_id, partner, adapter, route, code_of,
                                               ids, slot_taken=slot)

            try:
                page = await with_partner_retries(once)
            except Exception as exc:  # transient errors were already retried
                _page_failed(runs.values(), page_no, exc)
                failed_in_a_row += 1
                if failed_in_a_row >= MAX_FAILED_PAGES_IN_A_ROW:
                    break
                continue
            failed_in_a_row = 0
            for cid, part in page.channels.items():
                _absorb(runs[cid], outs[cid], None, part)  # closed per page below
                # Each page's sold nights are closed at once, while the next page is fetched:
                # a pull that ends at its time bound has closed what it stored.
                prop = infos[cid].property_id
                if part.touched and prop is not None:
                    closers.add(cid, prop, set(part.touched))
            for run in runs.values():
                run.errors += page.page_errors
            unroutable.update(page.unroutable)
            narrowed = hotel_ids is None and bool(page.unroutable or page.left_for_later)
            if narrowed:
                hotel_ids = sorted(route)
            progress = any(p.acked or p.new + p.updated for p in page.channels.values())
            keys = {k for p in page.channels.values() for k in p.message_keys}
            fresh = keys - seen
            seen |= keys
            if narrowed and page.has_more:
                continue  # a full page of others' bookings: ours may be behind them
            # Queue semantics as in pull_bookings: pull again while acks release more.
            if not (progress and fresh):
                break
        if unroutable:
            logger.warning("account %s: %d bookings for hotels no channel maps (not "
                           "acknowledged; see /api/partner-accounts/%s/unroutable): %s",
                           account_id, len(unroutable), account_id,
                           ", ".join(sorted(unroutable)[:10]))
        await closers.wait()
        for cid in channel_ids:
            _details(runs[cid], outs[cid])
    result = {}
    for cid, run in runs.items():
        _conclude(run, outs[cid])
        result[cid] = (outs[cid], run.status)
        if outs[cid].overbooked:
            await _overbooking_artifact(infos[cid].name, infos[cid].channel_name, cid,
                                        outs[cid].overbooked)
    return result


async def _bookings_summary(
    name: str, channel_name: str, channel_id: int, status: str, out: BookingsOutcome
) -> None:
    await acreate_markdown_artifact(
        key=_artifact_key("bookings-summary", channel_name, channel_id),
        description=f"bookings from {name}",
        markdown=(
            f"## Bookings from {name}: {status}\n\n"
            f"- processed: **{out.records_processed}** (new {out.new}, updated "
            f"{out.updated}, duplicates {out.duplicates}, unmapped "
            f"{out.unmapped})\n- acknowledged: {out.acked}\n"
            f"- overbooked (accepted, flagged): {len(out.overbooked) or 'none'}"
            f"{': ' + ', '.join(out.overbooked[:20]) if out.overbooked else ''}"
            f"{' ... (the overbookings artifact lists all)' if len(out.overbooked) > 20 else ''}\n"
            f"- errors: {len(out.errors)}\n" + "".join(f"  - {e}\n" for e in out.errors[:20])
        ),
    )


async def _page_with_retries(
    channel_id: int, start: date | None, end: date | None, cursor: str | None,
    overrides: dict[str, str] | None, changed_since: datetime | None, slot_taken: bool = False,
    info: ChannelInfo | None = None,
) -> Any:
    """`pull-bookings-page` as a plain call with the task's retry policy; a retry takes its
    own rate-limit slot."""
    tries = 0

    async def once() -> Any:
        nonlocal tries
        tries += 1
        return await pull_bookings_page.fn(channel_id, start, end, cursor, overrides,
                                           changed_since, slot_taken=slot_taken and tries == 1,
                                           info=info)

    return await with_partner_retries(once)


def _change_window(channel_id: int) -> datetime | None:
    """Start of an incremental pull's window (None: read everything)."""
    with session_scope() as session:
        last = last_success_started(session, channel_id, "sync_bookings")
    return last - CHANGE_WINDOW_MARGIN if last is not None else None


@flow(name="sync-booking-by-id", persist_result=True, timeout_seconds=SYNC_TIMEOUT,
      **SYNC_LOG_HOOKS)
async def sync_booking_by_id(
    channel_id: int, external_id: str, webhook_event_id: int | None = None
) -> BookingFetchOutcome | State[Any]:
    """Fetch one booking a partner pushed a hint for, store it, ack it, close sold nights."""
    logger = get_run_logger()
    info = channel_info(channel_id)
    stored: StoreResult | None = None
    async with sync_run(channel_id, "webhook_booking") as run:
        run.details.update(booking=external_id, webhook_event_id=webhook_event_id)
        try:
            record = await adapter_for(channel_id).fetch_booking(external_id)
            if record is None:
                run.errors.append(f"{info.name}: booking {external_id} not found at the partner")
            else:
                stored = await store_and_ack(channel_id, [record])
                run.errors += stored.errors
                if stored.touched and info.property_id is not None:
                    await close_sold_nights(info.property_id, set(stored.touched))
        except ChannelError as exc:
            run.errors.append(str(exc))
        ok = stored is not None and not run.errors
        run.totals.add(processed=1, success=int(ok), failed=int(not ok))
    if webhook_event_id is not None:
        with session_scope() as session:
            finish_event(session, webhook_event_id, ok=ok, errors=run.errors)
    logger.info("webhook booking %s on %s: %s", external_id, info.name, run.status)
    out = BookingFetchOutcome(
        success=ok,
        booking=external_id,
        records_processed=1,
        records_success=int(ok),
        records_failed=int(not ok),
        errors=run.errors,
        new=stored.new if stored else 0,
        updated=stored.updated if stored else 0,
        overbooked=stored.overbooked if stored else [],
    )
    return flow_result(out, run.status)


# ---------------------------------------------------------------- ARI out


async def _push(
    channel_ids: list[int],
    kind: Kind,
    start: date | None,
    end: date | None,
    operation: str,
    room_type_ids: list[int] | None = None,
    rate_plan_ids: list[int] | None = None,
    overrides: dict[str, str] | None = None,
) -> AriOutcome | State[Any]:
    """Each channel's delta over the range (one sync log per channel), one artifact."""
    start = start or date.today()
    end = end or start + timedelta(days=DEFAULT_HORIZON_DAYS - 1)
    if end < start:
        raise ValueError("end_date is before start_date")
    async with adapter_pool():  # one pool for every channel's push of this run
        per_channel = await asyncio.gather(
            *[
                push_channel(cid, kind, start, end, operation, room_type_ids, rate_plan_ids,
                             overrides)
                for cid in channel_ids
            ]
        )
    rows = [r.wire() for pc in per_channel for r in pc.rows]
    await acreate_table_artifact(
        key=_artifact_key(operation, "result"),
        table=rows or [{"result": "nothing changed"}],
        description=f"{operation} {start}..{end}: what was sent and what the partners said",
    )
    out = AriOutcome(
        success=all(pc.status != "failed" for pc in per_channel),
        records_processed=sum(pc.processed for pc in per_channel),
        records_success=sum(pc.success for pc in per_channel),
        records_failed=sum(pc.failed for pc in per_channel),
        errors=[f"{pc.channel}: {e}" for pc in per_channel for e in pc.errors],
        channels=list(per_channel),
    )
    if per_channel and not out.success and not out.records_success:
        return Failed(message="; ".join(out.errors[:3]) or f"{operation} failed", data=out)
    return out


@flow(name="push-availability", persist_result=True, timeout_seconds=ARI_TIMEOUT, **SYNC_LOG_HOOKS)
async def push_availability(
    channel_id: int,
    room_type_ids: list[int] | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    config_overrides: dict[str, str] | None = None,
) -> AriOutcome | State[Any]:
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


@flow(name="push-rates", persist_result=True, timeout_seconds=ARI_TIMEOUT, **SYNC_LOG_HOOKS)
async def push_rates(
    channel_id: int,
    rate_plan_ids: list[int] | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
    config_overrides: dict[str, str] | None = None,
) -> AriOutcome | State[Any]:
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


@flow(name="full-ari-sync", persist_result=True, timeout_seconds=ARI_TIMEOUT, **SYNC_LOG_HOOKS)
async def full_ari_sync(
    property_id: int | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    channel_ids: list[int] | None = None,
) -> AriOutcome | State[Any]:
    """Availability, rates and restrictions of every enabled channel over the horizon."""
    with session_scope() as session:
        ids = enabled_channel_ids(session, property_id)
    if channel_ids:
        ids = [i for i in ids if i in set(channel_ids)]
    start = date.today()
    return await _push(
        ids, "both", start, start + timedelta(days=horizon_days - 1), "full_ari_sync"
    )


@flow(name="push-ari-values", persist_result=True, timeout_seconds=ARI_TIMEOUT, **SYNC_LOG_HOOKS)
async def push_ari_values(
    channel_id: int, updates: list[ARIUpdate], config_overrides: dict[str, str] | None = None
) -> ValuesOutcome | State[Any]:
    """Push explicit values (the seed's sync-availability/sync-rates with a value given)."""
    info = channel_info(channel_id)
    async with sync_run(channel_id, "push_values") as run:
        try:
            summary = await push_updates(
                channel_id,
                [ARIUpdate.model_validate(u) for u in updates],  # also when called directly
                clean_overrides(config_overrides),
            )
        except ChannelError as exc:
            summary = PushSummary(updates=len(updates), failed=len(updates), errors=[str(exc)])
        run.totals.add(summary.updates, summary.ok, summary.failed)
        run.errors += summary.errors
    out = ValuesOutcome(
        success=run.status == "success",
        channel=info.name,
        records_processed=run.totals.processed,
        records_success=run.totals.success,
        records_failed=run.totals.failed,
        errors=run.errors,
    )
    return flow_result(out, run.status)


# ---------------------------------------------------------------- status out


@flow(name="update-booking-status", persist_result=True, timeout_seconds=SYNC_TIMEOUT,
      **SYNC_LOG_HOOKS)
async def update_booking_status(
    channel_booking_id: int, status: str
) -> StatusOutcome | State[Any]:
    """Push a PMS status change (cancelled, no-show, ...) of one booking to its channel
    (idempotent: a partner that already shows the status counts as done)."""
    BookingStatus(status)  # an unknown status fails before anything starts
    with session_scope() as session:
        ref = booking_ref(session, channel_booking_id)
    if ref is None:
        raise LookupError(f"channel booking {channel_booking_id} not found")
    channel_id, external_ref = ref
    async with sync_run(channel_id, "update_booking_status") as run:
        result = await push_status_task(channel_id, external_ref, status)
        record_status(run, result, external_ref, status)
    out = StatusOutcome(
        success=result.ok or result.not_applicable,
        not_applicable=result.not_applicable,
        records_processed=run.totals.processed,
        records_success=run.totals.success,
        records_failed=run.totals.failed,
        errors=run.errors,
    )
    return flow_result(out, run.status)
