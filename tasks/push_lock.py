"""One ARI push at a time per channel and month, across every process and machine.

A push reads the delta against what the partner acknowledged, sends it and records what
was accepted. Two pushes of the same night side by side (a scheduled batch's close and a
queue item, two batches, two API calls) can reach the partner in either order: the older
value landing last while the newer one is recorded as acknowledged leaves the partner
selling a room that is gone until the next change. So the whole read-send-record holds the
channel's push leases of the months it covers (db/repositories/push_leases.py): taken all
at once or waited for, renewed while the push runs, and checked before the acknowledgement
is recorded. A push that lost its leases (its process stalled past their expiry) drops the
acknowledged state of what it sent, so the next delta sends the current values again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date

from channels.base import ARIUpdate, TransientChannelError
from db.engine import session_scope
from db.repositories.ari import forget_acked, save_acked
from db.repositories.push_leases import (
    held,
    months_of,
    release_push_leases,
    renew_push_leases,
    take_push_leases,
)
from tasks.leases import renewed

#: A lease lasts this long unless renewed; a live push renews it every RENEW_SECONDS.
LEASE_SECONDS = 45.0
RENEW_SECONDS = 10.0
#: A push waits at most this long for another push of the same months, then fails
#: transiently (its retries wait again).
WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class PushLock:
    """The leases one push holds: its channel, the months of its window, its holder id."""

    channel_id: int
    months: tuple[date, ...]
    holder: str


def _take(lock: PushLock) -> bool:
    with session_scope() as session:
        return take_push_leases(session, lock.channel_id, lock.months, lock.holder,
                                LEASE_SECONDS)


def _renew(lock: PushLock) -> None:
    with session_scope() as session:
        renew_push_leases(session, lock.channel_id, lock.holder, LEASE_SECONDS)


def _release(lock: PushLock) -> None:
    with session_scope() as session:
        release_push_leases(session, lock.channel_id, lock.holder)


@contextlib.asynccontextmanager
async def push_lock(
    channel_id: int, channel_name: str, start: date, end: date, *,
    wait_seconds: float = WAIT_SECONDS,
) -> AsyncIterator[PushLock]:
    """Hold the channel's push leases of start..end's months for the block."""
    lock = PushLock(channel_id, tuple(months_of(start, end)),
                    f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}")
    deadline = time.monotonic() + wait_seconds
    pause = 0.02
    while not _take(lock):
        if time.monotonic() >= deadline:
            raise TransientChannelError(
                channel_name, f"ARI push of {start}..{end} waited {wait_seconds:.0f}s for "
                "another push of the same months of this channel")
        await asyncio.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 0.5)
    try:
        async with renewed(lambda: _renew(lock), RENEW_SECONDS,
                           f"the ARI push leases of {channel_name} {start}..{end}"):
            yield lock
    finally:
        _release(lock)


def record_acked(lock: PushLock, updates: Iterable[ARIUpdate]) -> bool:
    """Record what the partner accepted if the push still holds its leases (True); if it
    lost them, drop those days' acknowledged state instead, so the next delta resends
    them (False)."""
    updates = list(updates)
    with session_scope() as session:
        if held(session, lock.channel_id, lock.holder, lock.months):
            save_acked(session, lock.channel_id, updates)
            return True
        forget_acked(session, lock.channel_id, updates)
        return False
