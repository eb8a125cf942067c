"""Queue repository: coalescing, claims with leases, backoff, dead letter, re-queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from db.repositories import queue


def _row(session: Session, item_id: int) -> dict:
    return dict(session.execute(text("SELECT * FROM data_sync_queue WHERE id = :i"),
                                {"i": item_id}).mappings().one())


def _count(session: Session, status: str) -> int:
    return session.execute(text("SELECT count(*) FROM data_sync_queue WHERE status = :s"),
                           {"s": status}).scalar_one()


def test_enqueue_coalesces_pending_changes_of_one_entity(db_session):
    a = queue.enqueue(db_session, "inventory", 7, "update",
                      {"room_type_ids": [7], "start": "2027-01-10", "end": "2027-01-12"})
    b = queue.enqueue(db_session, "inventory", 7, "update",
                      {"room_type_ids": [7, 9], "start": "2027-01-05", "end": "2027-01-11",
                       "note": "newest"})
    c = queue.enqueue(db_session, "inventory", 8, "update", {"room_type_ids": [8]})
    d = queue.enqueue(db_session, "inventory", 7, "delete", {})
    assert a == b and len({a, c, d}) == 3
    data = _row(db_session, a)["data"]
    assert data == {"room_type_ids": [7, 9], "start": "2027-01-05", "end": "2027-01-12",
                    "note": "newest"}


def test_enqueue_after_claim_makes_a_new_item(db_session):
    a = queue.enqueue(db_session, "rate", 1, "update", {"start": "2027-01-01"})
    claimed = queue.claim(db_session, "w1", 10)
    assert [i.id for i in claimed] == [a]
    b = queue.enqueue(db_session, "rate", 1, "update", {"start": "2027-02-01"})
    assert b != a and _row(db_session, b)["status"] == "pending"


def test_enqueue_refuses_unknown_kinds(db_session):
    with pytest.raises(ValueError):
        queue.enqueue(db_session, "spaceship", 1, "update")
    with pytest.raises(ValueError):
        queue.enqueue(db_session, "guest", 1, "teleport")


def test_claim_leases_in_id_order_and_counts_attempts(db_session):
    ids = [queue.enqueue(db_session, "guest", i, "update") for i in range(5)]
    first = queue.claim(db_session, "w1", 3, lease_seconds=60)
    assert [i.id for i in first] == ids[:3] and all(i.attempts == 1 for i in first)
    row = _row(db_session, ids[0])
    assert row["status"] == "processing" and row["lease_owner"] == "w1"
    assert row["lease_expires_at"] > row["updated_at"] + timedelta(seconds=50)
    second = queue.claim(db_session, "w2", 10)
    assert [i.id for i in second] == ids[3:]
    assert queue.claim(db_session, "w3", 10) == []
    assert queue.complete(db_session, ids[:3], "w2") == 0  # not w2's lease
    assert queue.complete(db_session, ids[:3], "w1") == 3
    assert _row(db_session, ids[0])["processed_at"] is not None


def test_expired_lease_is_claimed_again(db_session):
    item = queue.enqueue(db_session, "guest", 1, "update")
    assert queue.claim(db_session, "dead-worker", 10)
    assert queue.claim(db_session, "w2", 10) == []  # lease still live
    db_session.execute(text("UPDATE data_sync_queue SET lease_expires_at = now() - interval '1 s'"))
    again = queue.claim(db_session, "w2", 10)
    assert [i.id for i in again] == [item] and again[0].attempts == 2
    assert queue.complete(db_session, [item], "dead-worker") == 0  # the old lease is gone
    assert queue.complete(db_session, [item], "w2") == 1


def test_lease_expired_on_last_attempt_is_dead_lettered(db_session):
    item = queue.enqueue(db_session, "guest", 1, "update")
    db_session.execute(text("UPDATE data_sync_queue SET attempts = 2 WHERE id = :i"), {"i": item})
    queue.claim(db_session, "dead-worker", 10)
    db_session.execute(text("UPDATE data_sync_queue SET lease_expires_at = now() - interval '1 s'"))
    assert queue.claim(db_session, "w2", 10) == []
    assert queue.expire_exhausted_leases(db_session) == 1
    assert _row(db_session, item)["status"] == "failed"


def test_failures_back_off_then_dead_letter(db_session):
    item = queue.enqueue(db_session, "guest", 1, "update")
    for attempt in (1, 2):
        [claimed] = queue.claim(db_session, "w", 10)
        assert claimed.attempts == attempt
        assert queue.fail(db_session, {item: f"boom {attempt}"}, "w") == {"failed": 0,
                                                                           "retrying": 1}
        row = _row(db_session, item)
        assert row["status"] == "pending" and row["last_error"] == f"boom {attempt}"
        wait = (row["next_attempt_at"] - row["updated_at"]).total_seconds()
        base = queue.BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)
        assert base - 1 <= wait <= base * 1.25 + 1
        assert queue.claim(db_session, "w", 10) == []  # not due yet
        db_session.execute(text("UPDATE data_sync_queue SET next_attempt_at = now()"))
    queue.claim(db_session, "w", 10)
    assert queue.fail(db_session, {item: "boom 3"}, "w") == {"failed": 1, "retrying": 0}
    row = _row(db_session, item)
    assert row["status"] == "failed" and row["last_error"] == "boom 3" and row["attempts"] == 3
    assert queue.queue_status(db_session) == {"pending": 0, "failed": 1, "processing": False}
    assert queue.requeue_failed(db_session, [item]) == 1
    row = _row(db_session, item)
    assert row["status"] == "pending" and row["attempts"] == 0


def test_failed_item_merges_into_newer_pending_sibling(db_session):
    old = queue.enqueue(db_session, "inventory", 3, "update",
                        {"room_type_ids": [3], "start": "2027-01-01", "end": "2027-01-02"})
    queue.claim(db_session, "w", 10)
    new = queue.enqueue(db_session, "inventory", 3, "update",
                        {"room_type_ids": [3], "start": "2027-03-01", "end": "2027-03-02"})
    queue.fail(db_session, {old: "partner down"}, "w")
    assert _row(db_session, old)["status"] == "completed"
    assert _row(db_session, new)["data"]["start"] == "2027-01-01"
    assert _count(db_session, "pending") == 1


def test_requeue_all_failed_with_duplicates_keeps_one_pending(db_session):
    a = queue.enqueue(db_session, "room", 5, "update", {"room_type_ids": [1]})
    queue.claim(db_session, "w", 10)
    b = queue.enqueue(db_session, "room", 5, "update", {"room_type_ids": [2]})
    queue.claim(db_session, "w", 10)
    db_session.execute(text("UPDATE data_sync_queue SET status = 'failed', attempts = 3"))
    assert queue.requeue_failed(db_session) == 2
    assert _count(db_session, "pending") == 1 and _count(db_session, "failed") == 0
    assert _row(db_session, b)["data"]["room_type_ids"] == [1, 2]
    assert _row(db_session, a)["status"] == "completed"


def test_queue_status_sees_live_leases(db_session):
    queue.enqueue(db_session, "guest", 1, "update")
    queue.enqueue(db_session, "guest", 2, "update")
    assert queue.queue_status(db_session) == {"pending": 2, "failed": 0, "processing": False}
    queue.claim(db_session, "w", 1)
    assert queue.queue_status(db_session) == {"pending": 1, "failed": 0, "processing": True}
