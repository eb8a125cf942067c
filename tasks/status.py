"""Booking status out: tell a partner a booking's new status, once (idempotent)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NONE

from channels.base import BookingStatus, ChannelAdapter, ChannelError
from tasks.limits import take_partner_slot
from tasks.resources import adapter_for, channel_info
from tasks.results import StatusPushResult
from tasks.retry import token_wait
from tasks.runs import SyncRun

#: Partner statuses that already mean what we wanted to send (a repeated push is a no-op).
EQUIVALENT: dict[BookingStatus, set[str]] = {
    BookingStatus.CANCELLED: {"cancelled", "denied", "declined", "deny", "cancelled_by_host",
                              "cancelled_by_guest", "cancelled_by_admin", "timeout"},
    BookingStatus.CONFIRMED: {"accepted", "confirmed", "accept"},
}


async def already_shows(adapter: ChannelAdapter, external_ref: str, wanted: BookingStatus) -> bool:
    """True when the partner already shows the wanted status (idempotent re-delivery)."""
    fetch = getattr(adapter, "fetch_booking", None)
    if fetch is None:
        return False
    try:
        current = await fetch(external_ref)
    except ChannelError:
        return False
    return current is not None and current.status in EQUIVALENT.get(wanted, {wanted.value})


async def push_status(channel_id: int, external_ref: str, status: str) -> StatusPushResult:
    """Send one booking's status; a refusal while the partner already shows that status
    counts as done, a partner that takes no status push is `not_applicable`."""
    wanted = BookingStatus(status)
    info = channel_info(channel_id)
    try:
        adapter = adapter_for(channel_id)
        await take_partner_slot(info.channel_name)
        outcome = await adapter.update_booking_status(external_ref, wanted)
    except ChannelError as exc:
        return StatusPushResult(error=str(exc), wait_seconds=token_wait(exc))
    if outcome.ok:
        return StatusPushResult()
    if outcome.error_code == "NOT_SUPPORTED":
        return StatusPushResult(not_applicable=True)
    if await already_shows(adapter, external_ref, wanted):
        return StatusPushResult(already=True)
    return StatusPushResult(error=f"{outcome.error_code or ''} {outcome.error or ''}".strip())


@task(name="push-booking-status", cache_policy=NONE)
async def push_status_task(channel_id: int, external_ref: str, status: str) -> StatusPushResult:
    """Send one booking's status (see push_status)."""
    return await push_status(channel_id, external_ref, status)


def record_status(run: SyncRun, result: StatusPushResult, external_ref: str, status: str) -> None:
    """Put one status push's outcome into its run's sync log."""
    run.totals.add(processed=1, success=int(result.ok), failed=int(result.error is not None))
    if result.error:
        run.errors.append(result.error)
    run.details.update(
        booking=external_ref, status=status, not_applicable=result.not_applicable,
        already=result.already,
    )
    if result.not_applicable:
        run.forced_status = "not_applicable"
