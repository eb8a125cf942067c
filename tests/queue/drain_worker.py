"""A claim-and-complete loop with a no-op handler, run in separate OS processes by the
scale-out test: what several process-queue workers do, minus the partners."""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from db.repositories import queue

LOG_TABLE = "queue_drain_log"


def remaining(session: Session) -> int:
    """Items not finished yet (pending, or processing under some lease)."""
    return session.execute(
        text("SELECT count(*) FROM data_sync_queue WHERE status IN ('pending', 'processing')")
    ).scalar_one()


def drain(url: str, owner: str, batch: int, barrier: Any, deadline_s: float = 90.0) -> int:
    """Claim, record (the no-op handler's side effect), complete; until nothing is left."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    barrier.wait()
    done, deadline = 0, time.monotonic() + deadline_s
    try:
        while time.monotonic() < deadline:
            with Session(engine) as s, s.begin():
                items = queue.claim(s, owner, batch, lease_seconds=30)
            if not items:
                with Session(engine) as s:
                    if remaining(s) == 0:
                        return done
                time.sleep(0.05)  # leases of a dead worker still running
                continue
            ids = [i.id for i in items]
            with Session(engine) as s, s.begin():
                s.execute(text(f"INSERT INTO {LOG_TABLE} (item_id, worker) "
                               "SELECT unnest(CAST(:ids AS bigint[])), :w"), {"ids": ids, "w": owner})
            with Session(engine) as s, s.begin():
                queue.complete(s, ids, owner)
            done += len(ids)
        raise TimeoutError(f"{owner}: queue not drained in {deadline_s}s")
    finally:
        engine.dispose()


def crash_after_claim(url: str, n: int, lease_seconds: float, claimed: Any) -> None:
    """Claim `n` items under a short lease, then die without completing them."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    with Session(engine) as s, s.begin():
        items = queue.claim(s, "crasher", n, lease_seconds=lease_seconds)
    claimed.send([i.id for i in items])  # a pipe write is done when send returns
    os._exit(1)
