"""Benchmark: data-sync queue drain rate, 1 and 4 worker processes, no-op handlers.

    .venv/bin/python bench/queue_drain.py [--items 40000] [--batch 100] [--rounds 1]

In one run, on a scratch database on the local server (migrated with db.migrate.upgrade,
dropped afterwards), for 1 and 4 worker processes:
- `repository`: innsync's queue (db.repositories.queue): claim a batch under a lease
  (UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING), no-op
  handler, complete: two transactions per batch, as process-queue does;
- `bare`: the plain SKIP LOCKED dequeue loop with the same batch size: one transaction
  that selects FOR UPDATE SKIP LOCKED and marks the rows completed (no lease, no attempts).
Prints items/s, the ratios, and the target (>= 5,000 items/s with 4 workers).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ comes first on sys.path: keep the project root first instead
# (bench scripts are named so that none shadows a stdlib or project module).
HERE, ROOT = Path(__file__).resolve().parent, Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if p and Path(p).resolve() != HERE]

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402

ADMIN = os.environ.get("INNSYNC_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET = 5000.0

BARE_SQL = """
    WITH picked AS (
        SELECT id FROM data_sync_queue
        WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY id FOR UPDATE SKIP LOCKED LIMIT %(n)s
    )
    UPDATE data_sync_queue q SET status = 'completed', processed_at = now()
    FROM picked WHERE q.id = picked.id
    RETURNING q.id
"""


def _url(name: str) -> str:
    return ADMIN.rsplit("/", 1)[0] + "/" + name


def _fill(url: str, items: int) -> None:
    """An empty queue, then `items` pending items for distinct entities, vacuumed."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE data_sync_queue RESTART IDENTITY")
        conn.execute(
            "INSERT INTO data_sync_queue (entity_type, entity_id, operation, data) "
            "SELECT 'inventory', g::text, 'update', jsonb_build_object('start', '2030-01-01') "
            "FROM generate_series(1, %s) g",
            (items,),
        )
        conn.execute("VACUUM ANALYZE data_sync_queue")


def _bare_worker(url: str, batch: int, barrier: Any, out: Any) -> None:
    with psycopg.connect(url) as conn:
        barrier.wait()
        start, done = time.perf_counter(), 0
        while True:
            with conn.transaction():
                n = len(conn.execute(BARE_SQL, {"n": batch}).fetchall())
            if n == 0:
                break
            done += n
        out.put((start, time.perf_counter(), done))


def _repo_worker(url: str, batch: int, barrier: Any, out: Any) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from db.engine import to_sqlalchemy_url
    from db.repositories import queue

    engine = create_engine(to_sqlalchemy_url(url), pool_size=1, max_overflow=0)
    owner = f"bench-{os.getpid()}"
    with Session(engine) as session:
        session.connection()  # connect before the clock starts
        session.commit()
        barrier.wait()
        start, done = time.perf_counter(), 0
        while True:
            with session.begin():
                items = queue.claim(session, owner, batch)
            if not items:
                break
            ids = [i.id for i in items]  # the no-op handler
            with session.begin():
                queue.complete(session, ids, owner)
            done += len(ids)
        out.put((start, time.perf_counter(), done))
    engine.dispose()


def _run(kind: str, url: str, workers: int, items: int, batch: int) -> float:
    """Items per second for one kind and worker count (wall clock, first start to last end)."""
    _fill(url, items)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    target = _bare_worker if kind == "bare" else _repo_worker
    procs = [ctx.Process(target=target, args=(url, batch, barrier, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
    drained = sum(r[2] for r in results)
    if drained != items:
        raise RuntimeError(f"{kind} x{workers}: drained {drained} of {items}")
    with psycopg.connect(url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM data_sync_queue WHERE status <> 'completed'").fetchone()
    if left and left[0]:
        raise RuntimeError(f"{kind} x{workers}: {left[0]} items not completed")
    elapsed = max(r[1] for r in results) - min(r[0] for r in results)
    return items / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1, help="best of N rounds per cell")
    args = parser.parse_args()

    from db import migrate
    from db.engine import to_sqlalchemy_url

    name = f"innsync_bench_queue_{secrets.token_hex(3)}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _url(name)
    try:
        migrate.upgrade("head", to_sqlalchemy_url(url))
        rates: dict[tuple[str, int], float] = {}
        for workers in (1, 4):
            for kind in ("bare", "repository"):
                rates[(kind, workers)] = max(
                    _run(kind, url, workers, args.items, args.batch) for _ in range(args.rounds)
                )
                print(f"  {kind:<10} x{workers}: {rates[(kind, workers)]:>9,.0f} items/s",
                      flush=True)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(f"\nqueue drain, {args.items:,} items, batch {args.batch}, no-op handler, "
          f"{os.cpu_count()} CPUs (best of {args.rounds})\n")
    print(f"{'workers':>7}  {'bare SKIP LOCKED':>17}  {'innsync queue':>14}  {'queue/bare':>10}")
    for workers in (1, 4):
        bare, repo = rates[("bare", workers)], rates[("repository", workers)]
        print(f"{workers:>7}  {bare:>13,.0f} /s  {repo:>10,.0f} /s  {repo / bare:>10.2f}")
    print(f"\nscaling 1 -> 4 workers: bare x{rates[('bare', 4)] / rates[('bare', 1)]:.2f}, "
          f"queue x{rates[('repository', 4)] / rates[('repository', 1)]:.2f}")
    four = rates[("repository", 4)]
    verdict = "meets" if four >= TARGET else "MISSES"
    print(f"target >= {TARGET:,.0f} items/s with 4 workers: {four:,.0f} items/s ({verdict})")


if __name__ == "__main__":
    main()
