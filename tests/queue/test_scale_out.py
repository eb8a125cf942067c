"""Four worker processes drain one queue: no item is processed twice, and the items of a
worker that died are taken over once its lease ends."""

from __future__ import annotations

import multiprocessing as mp

from sqlalchemy import text

from tests.queue.drain_worker import LOG_TABLE, crash_after_claim, drain

ITEMS = 2000
WORKERS = 4


def test_four_processes_drain_once_and_take_over_a_dead_workers_lease(database_url, committed):
    committed.execute(text(f"CREATE TABLE {LOG_TABLE} (item_id bigint NOT NULL, "
                           "worker text NOT NULL)"))
    committed.execute(text("INSERT INTO data_sync_queue (entity_type, entity_id, operation) "
                           "SELECT 'guest', g::text, 'update' FROM generate_series(1, :n) g"),
                      {"n": ITEMS})
    committed.commit()
    ctx = mp.get_context("spawn")
    try:
        receiver, sender = ctx.Pipe(duplex=False)
        crasher = ctx.Process(target=crash_after_claim, args=(database_url, 50, 2.0, sender))
        crasher.start()
        assert receiver.poll(60), "the crashing worker never claimed"
        crashed_ids = receiver.recv()
        crasher.join(60)
        assert crasher.exitcode == 1 and len(crashed_ids) == 50

        barrier = ctx.Barrier(WORKERS)
        procs = [ctx.Process(target=drain, args=(database_url, f"w{i}", 25, barrier))
                 for i in range(WORKERS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(180)
        assert [p.exitcode for p in procs] == [0] * WORKERS

        total, distinct, workers = committed.execute(text(
            f"SELECT count(*), count(DISTINCT item_id), count(DISTINCT worker) FROM {LOG_TABLE}"
        )).one()
        assert (total, distinct) == (ITEMS, ITEMS), "an item was processed twice or never"
        assert workers >= 2, "the workers did not share the queue"
        status = dict(committed.execute(text(
            "SELECT status, count(*) FROM data_sync_queue GROUP BY status")).tuples().all())
        assert status == {"completed": ITEMS}
        retaken = committed.execute(text(
            "SELECT count(*) FROM data_sync_queue WHERE id = ANY(CAST(:ids AS bigint[])) "
            "AND attempts = 2 AND lease_owner IS NULL"), {"ids": crashed_ids}).scalar_one()
        assert retaken == 50  # the dead worker's items: claimed again after its lease
    finally:
        committed.rollback()
        committed.execute(text(f"DROP TABLE IF EXISTS {LOG_TABLE}"))
        committed.commit()
