"""Partner request budgets (Prefect global rate limits) and taking their slots.

Tasks call `take_partner_slot(channel)` before each partner request;
deployments/limits.py creates the limits on the Prefect server. `limit` is the burst,
`slot_decay_per_second` the sustained requests per second across every worker.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError, rate_limit

from channels.base import ChannelName


def partner_limit(channel_name: str) -> str:
    """Name of the Prefect global rate limit for one partner's API."""
    return f"partner-{channel_name.replace('.', '-')}"


class _SlotBatcher:
    """The callers of one event loop waiting for a partner's slot, served together: Prefect's
    client takes rate-limit slots one acquisition at a time per process (its
    ConcurrencySlotAcquisitionService handles its queue serially, and sleeps out a 423's
    Retry-After before the next), so a hundred pushes asking one slot each wait for a
    hundred round trips in a row. Here the callers waiting at one moment share one
    acquisition of as many slots (up to the partner's burst): the same budget, fewer
    round trips."""

    def __init__(self, channel_name: str) -> None:
        self.channel_name = channel_name
        #: The most slots one acquisition asks for: the partner's burst, 1 once the server
        #: refused a block (its limit set smaller by hand, or not yet rescaled).
        self.cap = burst_of(channel_name)
        self.refused = False
        self.waiting: list[asyncio.Future[None]] = []
        self.serving = False
        self.server: asyncio.Task[None] | None = None  # held: the loop keeps weak refs only

    async def take(self, count: int = 1) -> None:
        loop = asyncio.get_running_loop()
        slots: list[asyncio.Future[None]] = [loop.create_future() for _ in range(count)]
        self.waiting += slots
        if not self.serving:
            self.serving = True
            self.server = asyncio.create_task(self._serve())  # ends when nobody waits
        try:
            await asyncio.gather(*slots)
        except BaseException:
            for slot in slots:  # one refused (or this caller cancelled): nobody takes the rest
                slot.cancel()
            raise

    def allow(self, burst: int) -> None:
        """Ask for up to `burst` slots at once (the limit as scaled for the partner's
        channels), unless the server refused a block already."""
        if not self.refused:
            self.cap = max(self.cap, burst)

    async def _serve(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:self.cap], self.waiting[self.cap:]
                batch = [f for f in batch if not f.done()]  # a caller cancelled meanwhile
                if not batch:
                    continue
                try:
                    await rate_limit(partner_limit(self.channel_name), occupy=len(batch),
                                     strict=False)
                except ConcurrencySlotAcquisitionError as refused:
                    if len(batch) == 1:
                        if not batch[0].done():  # its caller may have given it up meanwhile
                            batch[0].set_exception(refused)
                        continue
                    # A block larger than the server's limit: one slot per request from now.
                    self.cap, self.refused = 1, True
                    self.waiting = batch + self.waiting
                    continue
                except Exception as exc:
                    for f in batch:
                        if not f.done():
                            f.set_exception(exc)
                    continue
                except BaseException:
                    for f in batch:
                        f.cancel()
                    raise
                for f in batch:
                    if not f.done():
                        f.set_result(None)
        finally:
            self.serving = False
            self.server = None  # no reference to the loop once idle (the dict is weak-keyed)
            for f in self.waiting:  # only when this task itself was cancelled
                if not f.done():
                    f.cancel()
            self.waiting = []


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _SlotBatcher]] = (
    weakref.WeakKeyDictionary())


def _batcher(channel_name: str) -> _SlotBatcher:
    per_loop = _batchers.setdefault(asyncio.get_running_loop(), {})
    batcher = per_loop.get(channel_name)
    if batcher is None:
        batcher = per_loop[channel_name] = _SlotBatcher(channel_name)
    return batcher


async def take_partner_slot(channel_name: str, count: int = 1) -> None:
    """Wait for `count` slots of the partner's rate limit (before as many partner requests:
    a page, a batch's first fetches, a page of acknowledgements); the requests of this event
    loop waiting at the same moment share acquisitions of up to the partner's burst (Prefect
    refuses more slots than the limit holds at once)."""
    if count > 0:
        await _batcher(channel_name).take(count)


def allow_partner_burst(channel_name: str, burst: int) -> None:
    """Let this event loop's slot acquisitions for the partner ask for up to `burst` slots
    at once (the burst as upserted for the partner's channels; the floor's by default)."""
    _batcher(channel_name).allow(burst)


@dataclass(frozen=True)
class PartnerLimit:
    """A partner's request budget: a burst and a sustained rate (requests per second)."""

    channel: ChannelName
    limit: int
    slot_decay_per_second: float

    @property
    def name(self) -> str:
        return partner_limit(self.channel.value)


# Partners publish few hard numbers (ota-protocols.md): Booking.com asks for one poll per
# ~20 s per hotel and no concurrent calls per hotel, Channex-style managers allow ~10 ARI calls
# a minute per property, Airbnb's limits are private (429 + Retry-After). These budgets are
# per innsync install (many properties), well under what a partner throttles.
PARTNER_LIMITS: tuple[PartnerLimit, ...] = (
    PartnerLimit(ChannelName.BOOKING_COM, limit=10, slot_decay_per_second=2.0),
    PartnerLimit(ChannelName.AGODA, limit=10, slot_decay_per_second=2.0),
    PartnerLimit(ChannelName.EXPEDIA, limit=10, slot_decay_per_second=2.0),
    PartnerLimit(ChannelName.AIRBNB, limit=5, slot_decay_per_second=1.0),
)


def burst_of(channel_name: str) -> int:
    """The partner limit's burst: the most slots one acquisition may take."""
    for item in PARTNER_LIMITS:
        if item.channel.value == channel_name:
            return item.limit
    raise KeyError(f"no rate limit for partner {channel_name}")


#: Requests one poll unit (a channel: a hotel's connection to a partner; for the ROOM_WISE_PULL
#: partners each of its listings) may add per minute to its partner's budget: its scheduled
#: pull, an acknowledgement, a further page, an ARI push and a status push. Partners word
#: their guidance per hotel (Booking.com: a poll about every 20 s per hotel, never two at once
#: for one hotel; innsync pulls once a minute and a pull lease keeps one at a time), so an
#: install's budget grows with its hotels; the fixed PARTNER_LIMITS above are the floor (one
#: hotel).
PER_CHANNEL_PER_MINUTE = 6
#: The burst holds this many seconds of the sustained rate (a batch takes its first
#: requests' slots in blocks of up to a burst).
BURST_SECONDS = 5
#: Partners whose reservations are listed per room: Airbnb answers reservations per listing
#: (one listing is one room type), so a host with 4 listings costs 4 requests per poll and
#: counts as 4 units of budget (counted per channel, 1,000 hosts x 4 listings could never be
#: polled in a minute: the budget would allow 100 of the 400 requests a second).
ROOM_WISE_PULL: tuple[str, ...] = (ChannelName.AIRBNB.value,)


def scaled_limits(units: Mapping[str, int]) -> tuple[PartnerLimit, ...]:
    """Every partner's budget for `units` (partner -> poll requests of its enabled channels:
    channels, or listings for ROOM_WISE_PULL): the floor, or PER_CHANNEL_PER_MINUTE per unit
    when that is more."""
    out = []
    for item in PARTNER_LIMITS:
        rate = max(item.slot_decay_per_second,
                   units.get(item.channel.value, 0) * PER_CHANNEL_PER_MINUTE / 60)
        burst = max(item.limit, math.ceil(rate * BURST_SECONDS))
        out.append(PartnerLimit(item.channel, limit=burst, slot_decay_per_second=rate))
    return tuple(out)


def current_limits() -> tuple[PartnerLimit, ...]:
    """The budgets for the enabled channels in the database now (one query)."""
    from db.engine import session_scope
    from db.repositories.channels import pull_requests_per_poll

    with session_scope() as session:
        return scaled_limits(pull_requests_per_poll(session, ROOM_WISE_PULL))
