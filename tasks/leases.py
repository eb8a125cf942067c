"""Keeping a database lease alive while the work it guards runs.

The pull leases of a batch (flows/scheduled.py, db/repositories/pull_leases.py) and the ARI
push leases of a channel's months (tasks/push_lock.py, db/repositories/push_leases.py) work
the same way: taken in one statement, renewed in the background at a fraction of their
length while the work runs, released when it ends, left to expire when the process died.
This is the renewal part they share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

log = logging.getLogger("innsync.leases")


async def _renew_every(renew: Callable[[], object], seconds: float, what: str) -> None:
    failures = 0
    while True:
        await asyncio.sleep(seconds)
        try:
            await asyncio.to_thread(renew)
            failures = 0
        except Exception as exc:  # the next try, the expiry or the fencing check settles it
            failures += 1
            log.warning("renewing %s failed (%d in a row): %s: %s", what, failures,
                        type(exc).__name__, exc)


@contextlib.asynccontextmanager
async def renewed(renew: Callable[[], object], seconds: float, what: str
                  ) -> AsyncIterator[None]:
    """Call `renew` (blocking; run in a thread) every `seconds` while the block runs. A
    renewal that fails is logged and tried again at the next turn; what it guards must
    still check that it holds its lease before it records anything."""
    renewer = asyncio.create_task(_renew_every(renew, seconds, what))
    try:
        yield
    finally:
        renewer.cancel()
