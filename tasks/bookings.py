"""Booking tasks: one page fetched, stored in one transaction, then acknowledged."""

from __future__ import annotations

import asyncio
from datetime import date, datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from prefect.concurrency.asyncio import rate_limit
from pydantic import ValidationError

from channels.base import (
    AckResult,
    BookingRecord,
    ChannelAdapter,
    ChannelError,
    MalformedPayloadError,
    failed_acks,
)
from db.engine import session_scope
from db.repositories.bookings import IngestResult, ack_key, ingest_page, mark_acknowledged
from innsync.settings import get_settings
from tasks.limits import partner_limit, take_partner_slots
from tasks.resources import ChannelInfo, adapter_for, channel_info
from tasks.results import PageResult, StoreResult
from tasks.retry import PARTNER_TASK_OPTIONS, honour_retry_after


def message_key(record: BookingRecord) -> str:
    """The booking id and a digest of the message's content (its masked raw payload)."""
    return f"{record.external_id}:{record.message_digest() or record.revision}"


async def store_and_ack(
    channel_id: int,
    records: list[BookingRecord],
    overrides: dict[str, str] | None = None,
    *,
    info: ChannelInfo | None = None,
    adapter: ChannelAdapter | None = None,
) -> StoreResult:
    """Ingest records in one transaction; acknowledge to the partner only after commit.

    The ack takes one partner rate-limit slot per request it sends (none when the partner
    needs no acknowledgement of these). Callers that already hold the channel's info and
    adapter pass them to save round trips.
    """
    info = info or channel_info(channel_id)
    with session_scope() as session:
        result = ingest_page(session, channel_id, info.channel_name, records)
    # Every message is acknowledged once: a re-delivered, already-acked one is not acked again.
    to_ack: dict[tuple[str, str, str | None], BookingRecord] = {}
    for rec in records:
        key = ack_key(rec)
        if key not in result.acked_before:
            to_ack.setdefault(key, rec)
    ack_errors: list[str] = []
    acked: list[BookingRecord] = []
    if to_ack:
        adapter = adapter or adapter_for(channel_id, overrides)
        batch = list(to_ack.values())
        requests = adapter.ack_requests(batch)
        if requests:
            await take_partner_slots(info.channel_name, requests)
        verdicts = await _acknowledge(adapter, batch)
        for rec in batch:
            verdict = verdicts.get(rec.external_id)
            if verdict is not None and verdict.ok:
                acked.append(rec)
            else:
                reason = verdict.error if verdict else "no acknowledgement result"
                ack_errors.append(f"ack {rec.external_id}: {reason} (stored; acknowledged when "
                                  "the partner delivers it again)")
        if acked:
            with session_scope() as session:
                mark_acknowledged(session, channel_id, acked)
    return _result(result, acked=len(acked), errors=ack_errors)


#: Tries of one acknowledgement (the page is stored; only the ack is repeated).
ACK_TRIES = 4


async def _acknowledge(adapter: ChannelAdapter, batch: list[BookingRecord]
                       ) -> dict[str, AckResult]:
    """Acknowledge a stored batch; the verdicts by booking id.

    Acknowledging again is harmless at every partner, so the bookings whose ack call failed
    (a 5xx, a timeout, an unreadable answer: it may have been applied) are acknowledged again
    here, a few times, without fetching or storing the page again. A page that was stored is
    counted as stored whatever its ack did (issue 12); an ack applied at the partner whose
    answer never arrived would otherwise never be recorded (the partner does not re-deliver).
    """
    verdicts: dict[str, AckResult] = {}
    pending = batch
    for attempt in range(ACK_TRIES):
        try:
            answers = await adapter.acknowledge(pending)
        except ChannelError as exc:  # an adapter that fails the batch as a whole
            answers = failed_acks([r.external_id for r in pending], exc)
        verdicts.update((a.external_id, a) for a in answers)
        again = {a.external_id for a in answers if not a.ok and a.retry}
        pending = [r for r in pending if r.external_id in again]
        if not pending or attempt + 1 == ACK_TRIES:
            break
        await asyncio.sleep(get_settings().retry_backoff_seconds * 2 ** attempt)
    return verdicts


def _result(ingested: IngestResult, *, acked: int, errors: list[str]) -> StoreResult:
    return StoreResult(
        processed=ingested.processed,
        new=ingested.new,
        updated=ingested.updated,
        duplicates=ingested.duplicates,
        unmapped=ingested.unmapped,
        acked=acked,
        overbooked=ingested.overbooked,
        errors=ingested.errors + errors,
        touched=ingested.touched,
    )


@task(name="pull-bookings-page", cache_policy=NONE, **PARTNER_TASK_OPTIONS)
async def pull_bookings_page(
    channel_id: int,
    start: date | None,
    end: date | None,
    cursor: str | None,
    overrides: dict[str, str] | None = None,
    changed_since: datetime | None = None,
    slot_taken: bool = False,
) -> PageResult:
    """Fetch one page of bookings, store it, acknowledge it; returns counts and cursor.
    `slot_taken`: the fetch's partner rate-limit slot was taken already (a batch takes its
    channels' first slots in blocks)."""
    logger = get_run_logger()
    info = channel_info(channel_id)
    adapter = adapter_for(channel_id, overrides)
    if not slot_taken:
        await rate_limit(partner_limit(info.channel_name), strict=False)  # the fetch
    try:
        page = await adapter.fetch_bookings(start, end, cursor, changed_since)
    except MalformedPayloadError as exc:
        # Nothing half-parsed was stored; the partner will re-deliver. Fail this page visibly.
        logger.error("channel %s: malformed bookings page: %s", info.name, exc)
        raise
    except ChannelError as exc:
        logger.warning("channel %s: fetching bookings failed: %s", info.name, exc)
        if exc.transient:
            await honour_retry_after(exc)
        raise
    try:
        # An ack that fails is retried inside; past that it is an error of a stored page.
        stored = await store_and_ack(channel_id, page.bookings, overrides, info=info, adapter=adapter)
    except ValidationError as exc:
        raise MalformedPayloadError(info.channel_name, f"invalid booking data: {exc}") from exc
    result = PageResult(
        **stored.model_dump(),
        page_errors=page.errors,
        has_more=page.has_more,
        cursor=page.cursor,
        final=page.final,
        booking_ids=[b.external_id for b in page.bookings],
        message_keys=[message_key(b) for b in page.bookings],
    )
    for ext in result.overbooked:
        logger.warning(
            "channel %s: booking %s landed on a sold-out night: accepted, flagged overbooked",
            info.name,
            ext,
        )
    for err in result.errors + page.errors:
        logger.warning("channel %s: %s", info.name, err)
    logger.info(
        "channel %s: page of %d bookings: %d new, %d updated, %d duplicates, %d acked",
        info.name,
        result.processed,
        result.new,
        result.updated,
        result.duplicates,
        result.acked,
    )
    return result
