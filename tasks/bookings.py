"""Booking tasks: one page fetched, stored in one transaction, then acknowledged."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import date, datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from pydantic import ValidationError

from channels.base import (
    AccountWideAdapter,
    AckResult,
    BookingRecord,
    ChannelAdapter,
    ChannelError,
    MalformedPayloadError,
    failed_acks,
)
from db.engine import session_scope
from db.repositories.accounts import Unroutable, channels_of_bookings, record_unroutable
from db.repositories.bookings import IngestResult, ack_key, ingest_page, mark_acknowledged
from innsync.settings import get_settings
from tasks.limits import take_partner_slot
from tasks.resources import ChannelInfo, adapter_for, channel_info
from tasks.results import AccountPageResult, PageResult, StoreResult
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
    results = await store_and_ack_many(
        info.channel_name, {channel_id: records},
        lambda: adapter or adapter_for(channel_id, overrides))
    return results[channel_id]


async def store_and_ack_many(
    partner: str,
    groups: dict[int, list[BookingRecord]],
    adapter: Callable[[], ChannelAdapter],
) -> dict[int, StoreResult]:
    """Ingest each channel's records (one transaction for them all), then acknowledge every
    message not acknowledged before in one go through `adapter` (made only when there is
    something to ack): an account-wide partner takes one ack request per message type for
    all its hotels. Results per channel."""
    with session_scope() as session:
        ingested = {cid: ingest_page(session, cid, partner, recs) for cid, recs in groups.items()}
    # Every message is acknowledged once: a re-delivered, already-acked one is not acked again.
    to_ack: dict[tuple[str, str, str | None], tuple[int, BookingRecord]] = {}
    for cid, recs in groups.items():
        for rec in recs:
            key = ack_key(rec)
            if key not in ingested[cid].acked_before:
                to_ack.setdefault(key, (cid, rec))
    ack_errors: dict[int, list[str]] = {cid: [] for cid in groups}
    acked: dict[int, list[BookingRecord]] = {cid: [] for cid in groups}
    if to_ack:
        partner_adapter = adapter()
        batch = [rec for _, rec in to_ack.values()]
        requests = partner_adapter.ack_requests(batch)
        if requests:
            await take_partner_slot(partner, requests)
        verdicts = await _acknowledge(partner_adapter, batch)
        for cid, rec in to_ack.values():
            verdict = verdicts.get(rec.external_id)
            if verdict is not None and verdict.ok:
                acked[cid].append(rec)
            else:
                reason = verdict.error if verdict else "no acknowledgement result"
                ack_errors[cid].append(f"ack {rec.external_id}: {reason} (stored; acknowledged "
                                       "when the partner delivers it again)")
        if any(acked.values()):
            with session_scope() as session:
                for cid, recs in acked.items():
                    if recs:
                        mark_acknowledged(session, cid, recs)
    return {cid: _result(ingested[cid], acked=len(acked[cid]), errors=ack_errors[cid])
            for cid in groups}


#: Bookings or problems named one by one in a page's log; the rest are counted.
LOGGED_PER_PAGE = 20

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
    info: ChannelInfo | None = None,
) -> PageResult:
    """Fetch one page of bookings, store it, acknowledge it; returns counts and cursor.
    `slot_taken`: the fetch's partner rate-limit slot was taken already (a batch takes its
    channels' first slots in blocks); `info`: the caller read the channel's facts already."""
    logger = get_run_logger()
    info = info or channel_info(channel_id)
    adapter = adapter_for(channel_id, overrides)
    # The fetch's requests (several for Airbnb's listings), less the one the batch took.
    await take_partner_slot(info.channel_name,
                            adapter.fetch_requests(cursor) - (1 if slot_taken else 0))
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
    if result.overbooked:
        # One line per page, not per booking (10,000 log records to the Prefect API cost a
        # third of a large pull); the run's overbookings artifact lists every one.
        shown = result.overbooked[:LOGGED_PER_PAGE]
        more = len(result.overbooked) - len(shown)
        logger.warning(
            "channel %s: %d bookings landed on sold-out nights: accepted, flagged overbooked: "
            "%s%s", info.name, len(result.overbooked), ", ".join(shown),
            f" and {more} more (see the overbookings artifact)" if more else "")
    problems = result.errors + page.errors
    for err in problems[:LOGGED_PER_PAGE]:
        logger.warning("channel %s: %s", info.name, err)
    if len(problems) > LOGGED_PER_PAGE:
        logger.warning("channel %s: %d more problems on this page (the sync log has all)",
                       info.name, len(problems) - LOGGED_PER_PAGE)
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


async def pull_account_page(
    account_id: int,
    partner: str,
    adapter: ChannelAdapter,
    route: dict[str, int],
    connections: dict[int, str],
    hotel_ids: Sequence[str] | None,
    slot_taken: bool = False,
) -> AccountPageResult:
    """One page of an account-wide partner's queue (issue 13): fetch every connected hotel's
    pending bookings at once (or those of `hotel_ids`), route each by its hotel code
    (`route`: hotel code -> channel pulled now; a message without a hotel code, such as a
    cancellation, goes to the channel of the account (`connections`: channel id -> hotel
    code) that stored its booking), store and acknowledge them together. A booking of a
    hotel the account maps to no channel is recorded as unroutable and NOT acknowledged: the
    partner falls back to e-mail, as it intends. One of a connection not pulled now
    (disabled, or another run holds it) is left for later."""
    if not isinstance(adapter, AccountWideAdapter):
        raise TypeError(f"{partner} keeps no account-wide queue")
    if not slot_taken:
        await take_partner_slot(partner)  # the fetch
    try:
        page = await adapter.fetch_account_bookings(hotel_ids)
    except ChannelError as exc:
        if exc.transient:
            await honour_retry_after(exc)
        raise
    pulled = set(route.values())
    code_of = {code: cid for cid, code in connections.items()}
    nameless = [r.external_id for r in page.bookings if not r.hotel_code]
    owner: dict[str, int] = {}
    if nameless:
        with session_scope() as session:
            owner = channels_of_bookings(session, list(connections), nameless)
    groups: dict[int, list[BookingRecord]] = {}
    unroutable: list[BookingRecord] = []
    left = 0
    for rec in page.bookings:
        cid = code_of.get(rec.hotel_code) if rec.hotel_code else owner.get(rec.external_id)
        if cid in pulled:
            groups.setdefault(cid, []).append(rec)
        elif cid is not None:
            left += 1
        else:
            unroutable.append(rec)
    if unroutable:
        with session_scope() as session:
            record_unroutable(session, account_id, [
                Unroutable(r.hotel_code or "", r.external_id, str(r.event), r.check_in,
                           r.check_out) for r in unroutable])
    try:
        stored = await store_and_ack_many(partner, groups, lambda: adapter)
    except ValidationError as exc:
        raise MalformedPayloadError(partner, f"invalid booking data: {exc}") from exc
    return AccountPageResult(
        channels={cid: PageResult(
            **result.model_dump(),
            message_keys=[message_key(b) for b in groups[cid]],
            booking_ids=[b.external_id for b in groups[cid]],
        ) for cid, result in stored.items()},
        unroutable=sorted({f"{r.hotel_code or '?'}:{r.external_id}" for r in unroutable}),
        left_for_later=left,
        has_more=page.has_more,
        page_errors=page.errors,
    )
