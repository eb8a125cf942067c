"""The data-sync queue (outbox): enqueue next to a PMS write, claim with SKIP LOCKED and a
lease, complete, back off, dead-letter, re-queue.

Enqueue never commits: the caller's transaction holds the PMS write and its queue item
together. Many changes to one entity coalesce into its one pending item (a partial unique
index on entity_type, entity_id, operation WHERE status = 'pending'); `data` is merged:
`start` takes the earliest date, `end` the latest, id lists are united, other keys take the
newest value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import DataSyncQueueItem, Reservation, Room

ENTITY_TYPES = ("reservation", "inventory", "rate", "room", "room_type", "guest")
OPERATIONS = ("create", "update", "delete", "status_change")
STATUSES = ("pending", "processing", "completed", "failed")
LIST_KEYS = ("room_type_ids", "rate_plan_ids")
BACKOFF_BASE_SECONDS = 30.0
DEFAULT_LEASE_SECONDS = 300.0
MAX_ERROR_CHARS = 2000


def merge_sql(old: str, new: str) -> str:
    """SQL merging two `data` jsonb values (newest wins, date range widens, id lists unite)."""
    lists = ", ".join(
        f"'{k}', (SELECT jsonb_agg(DISTINCT v ORDER BY v) FROM jsonb_array_elements("
        f"COALESCE({old} -> '{k}', '[]') || COALESCE({new} -> '{k}', '[]')) AS v)"
        for k in LIST_KEYS
    )
    return (
        f"({old} || {new} || jsonb_strip_nulls(jsonb_build_object("
        f"'start', LEAST({old} ->> 'start', {new} ->> 'start'), "
        f"'end', GREATEST({old} ->> 'end', {new} ->> 'end'), {lists})))"
    )


_ENQUEUE = text(f"""
    INSERT INTO data_sync_queue AS q (entity_type, entity_id, operation, data)
    VALUES (:t, :i, :op, CAST(:d AS jsonb))
    ON CONFLICT (entity_type, entity_id, operation) WHERE status = 'pending'
    DO UPDATE SET data = {merge_sql("q.data", "EXCLUDED.data")}, updated_at = now()
    RETURNING id
""")


def _count(result: Any) -> int:
    """Rows an UPDATE touched."""
    return int(result.rowcount or 0)


def _json(data: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(data or {}), default=str, sort_keys=True)


def enqueue(
    session: Session,
    entity_type: str,
    entity_id: object,
    operation: str,
    data: Mapping[str, Any] | None = None,
) -> int:
    """Queue (or coalesce into the pending item of) one entity change; returns the item id.
    Never commits: the caller's transaction decides."""
    if entity_type not in ENTITY_TYPES:
        raise ValueError(f"unknown entity type {entity_type!r}")
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}")
    item_id: int = session.execute(
        _ENQUEUE, {"t": entity_type, "i": str(entity_id), "op": operation, "d": _json(data)}
    ).scalar_one()
    return item_id


# ---------------------------------------------------------------- enqueue helpers (API)


def _stay(room_type_id: Any, check_in: Any, check_out: Any) -> dict[str, Any]:
    last_night = date.fromisoformat(str(check_out)) - timedelta(days=1)
    return {"room_type_ids": [room_type_id] if room_type_id is not None else [],
            "start": str(check_in), "end": last_night.isoformat()}


def enqueue_reservation(
    session: Session, res: Reservation, before: Mapping[str, Any] | None = None
) -> int | None:
    """Queue a reservation write: `status_change` when its status changed, else `create` or
    `update`; nothing when no channel-relevant field changed. Covers old and new nights."""
    data: dict[str, Any] = {"property_id": res.property_id, "status": res.status,
                            **_stay(res.room_type_id, res.check_in, res.check_out)}
    if before is None:
        return enqueue(session, "reservation", res.id, "create", data)
    keys = ("room_type_id", "check_in", "check_out", "status")
    if all(str(before.get(k)) == str(getattr(res, k)) for k in keys):
        return None
    old = _stay(before.get("room_type_id"), before["check_in"], before["check_out"])
    data["room_type_ids"] = sorted(set(data["room_type_ids"]) | set(old["room_type_ids"]))
    data["start"] = min(data["start"], old["start"])
    data["end"] = max(data["end"], old["end"])
    operation = "status_change" if str(before.get("status")) != res.status else "update"
    return enqueue(session, "reservation", res.id, operation, data)


def enqueue_room(
    session: Session, room: Room, operation: str, before: Mapping[str, Any] | None = None
) -> int:
    """Queue a room write: availability of its room type (old and new) goes out again."""
    ids = {room.room_type_id} | ({before["room_type_id"]} if before else set())
    return enqueue(session, "room", room.id, operation,
                   {"property_id": room.property_id, "room_type_ids": sorted(ids)})


def enqueue_range(
    session: Session, entity_type: str, entity_id: int, start: date, end: date
) -> int:
    """Queue a calendar range write (inventory of a room type, rates of a rate plan)."""
    key = "room_type_ids" if entity_type == "inventory" else "rate_plan_ids"
    return enqueue(session, entity_type, entity_id, "update",
                   {key: [entity_id], "start": start.isoformat(), "end": end.isoformat()})


# ---------------------------------------------------------------- processing


@dataclass(frozen=True)
class ClaimedItem:
    """A queue item a worker holds a lease on (plain data, safe to pass between tasks)."""

    id: int
    entity_type: str
    entity_id: str
    operation: str
    data: dict[str, Any]
    attempts: int
    max_attempts: int


_CLAIM = text("""
    WITH expired AS (
        SELECT id FROM data_sync_queue
        WHERE status = 'processing' AND lease_expires_at < now() AND attempts < max_attempts
        ORDER BY id FOR UPDATE SKIP LOCKED LIMIT :n
    ), ready AS (
        SELECT id FROM data_sync_queue
        WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY id FOR UPDATE SKIP LOCKED LIMIT :n
    ), picked AS (
        SELECT id FROM (SELECT id FROM expired UNION ALL SELECT id FROM ready) AS x
        ORDER BY id LIMIT :n
    )
    UPDATE data_sync_queue q SET status = 'processing', lease_owner = :owner,
        lease_expires_at = now() + make_interval(secs => :lease), attempts = q.attempts + 1,
        updated_at = now()
    FROM picked WHERE q.id = picked.id
    RETURNING q.id, q.entity_type, q.entity_id, q.operation, q.data, q.attempts, q.max_attempts
""")


def claim(
    session: Session, owner: str, n: int, lease_seconds: float = DEFAULT_LEASE_SECONDS
) -> list[ClaimedItem]:
    """Lease up to `n` ready items (pending and due, or processing with an expired lease) to
    `owner`, in id order, skipping rows other workers hold. Each claim counts an attempt."""
    rows = session.execute(_CLAIM, {"owner": owner, "n": n, "lease": lease_seconds}).all()
    return sorted(
        (ClaimedItem(r.id, r.entity_type, r.entity_id, r.operation, r.data or {}, r.attempts,
                     r.max_attempts) for r in rows),
        key=lambda i: i.id,
    )


def extend_leases(session: Session, ids: Sequence[int], owner: str, lease_seconds: float) -> int:
    """Renew `owner`'s leases on these items (its batch is still running): a slow partner
    never lets a second worker take over a batch that is in progress."""
    if not ids:
        return 0
    return _count(session.execute(
        text("""
            UPDATE data_sync_queue SET lease_expires_at = now() + make_interval(secs => :lease)
            WHERE id = ANY(CAST(:ids AS bigint[])) AND status = 'processing' AND lease_owner = :o
        """),
        {"ids": list(ids), "o": owner, "lease": lease_seconds},
    ))


def expire_exhausted_leases(session: Session) -> int:
    """Dead-letter items whose lease ran out on their last attempt (a worker died on them)."""
    return _count(session.execute(text("""
        UPDATE data_sync_queue SET status = 'failed', lease_owner = NULL, lease_expires_at = NULL,
            last_error = COALESCE(last_error || '; ', '') || 'lease expired on the last attempt',
            updated_at = now()
        WHERE status = 'processing' AND lease_expires_at < now() AND attempts >= max_attempts
    """)))


def complete(session: Session, ids: Sequence[int], owner: str) -> int:
    """Mark leased items completed (only while `owner` still holds their lease)."""
    if not ids:
        return 0
    return _count(session.execute(
        text("""
            UPDATE data_sync_queue SET status = 'completed', processed_at = now(),
                lease_owner = NULL, lease_expires_at = NULL, last_error = NULL, updated_at = now()
            WHERE id = ANY(CAST(:ids AS bigint[])) AND status = 'processing' AND lease_owner = :o
        """),
        {"ids": list(ids), "o": owner},
    ))


def fail(session: Session, errors: Mapping[int, str], owner: str) -> dict[str, int]:
    """Record failures of leased items: dead-letter those out of attempts, back off the rest
    (merged into a pending item of the same entity when one exists)."""
    if not errors:
        return {"failed": 0, "retrying": 0}
    ids = list(errors)
    msgs = [errors[i][:MAX_ERROR_CHARS] for i in ids]
    dead = _count(session.execute(
        text("""
            UPDATE data_sync_queue q SET status = 'failed', last_error = u.err,
                lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            FROM unnest(CAST(:ids AS bigint[]), CAST(:errs AS text[])) AS u(id, err)
            WHERE q.id = u.id AND q.status = 'processing' AND q.lease_owner = :o
              AND q.attempts >= q.max_attempts
        """),
        {"ids": ids, "errs": msgs, "o": owner},
    ))
    session.execute(
        text("""
            UPDATE data_sync_queue q SET last_error = u.err
            FROM unnest(CAST(:ids AS bigint[]), CAST(:errs AS text[])) AS u(id, err)
            WHERE q.id = u.id AND q.status = 'processing' AND q.lease_owner = :o
        """),
        {"ids": ids, "errs": msgs, "o": owner},
    )
    retrying = _to_pending(
        session, ids, "status = 'processing' AND lease_owner = :o", {"o": owner},
        # From the moment of failure, not from the start of the claim's transaction.
        "next_attempt_at = clock_timestamp() + make_interval(secs => "
        f"{BACKOFF_BASE_SECONDS} * power(2, GREATEST(attempts - 1, 0)) * (1 + random() / 4))",
    )
    return {"failed": dead, "retrying": retrying}


#: Bounds of a partner-requested wait (a token endpoint's Retry-After) applied to queue items.
MIN_DEFER_SECONDS, MAX_DEFER_SECONDS = 1.0, 86_400.0


def defer(session: Session, waits: Mapping[int, tuple[str, float]], owner: str) -> int:
    """Put leased items back without counting their attempt: the partner asked us to wait
    (a 429 with Retry-After on its token endpoint), nothing was sent. They are due again after
    the longest of the waits; three such answers never dead-letter an item."""
    if not waits:
        return 0
    ids = list(waits)
    session.execute(
        text("""
            UPDATE data_sync_queue q SET last_error = u.err
            FROM unnest(CAST(:ids AS bigint[]), CAST(:errs AS text[])) AS u(id, err)
            WHERE q.id = u.id AND q.status = 'processing' AND q.lease_owner = :o
        """),
        {"ids": ids, "errs": [waits[i][0][:MAX_ERROR_CHARS] for i in ids], "o": owner},
    )
    seconds = min(max(max(w for _, w in waits.values()), MIN_DEFER_SECONDS), MAX_DEFER_SECONDS)
    return _to_pending(
        session, ids, "status = 'processing' AND lease_owner = :o", {"o": owner},
        "attempts = GREATEST(attempts - 1, 0), "
        f"next_attempt_at = clock_timestamp() + make_interval(secs => {float(seconds)!r})",
    )


def _to_pending(
    session: Session, ids: Sequence[int], where: str, params: dict[str, Any], set_sql: str
) -> int:
    """Return items matching `where` to pending with `set_sql` applied. At most one item per
    entity and operation may be pending: others merge into it (newest data wins) and close as
    completed. A sibling enqueued concurrently makes the savepoint retry."""
    for attempt in range(3):
        try:
            with session.begin_nested():
                return _to_pending_once(session, list(ids), where, params, set_sql)
        except IntegrityError:
            if attempt == 2:
                raise
    return 0


def _to_pending_once(
    session: Session, ids: list[int], where: str, params: dict[str, Any], set_sql: str
) -> int:
    rows = session.execute(
        text(f"SELECT id, entity_type, entity_id, operation FROM data_sync_queue "
             f"WHERE id = ANY(CAST(:ids AS bigint[])) AND {where} ORDER BY id FOR UPDATE"),
        {**params, "ids": ids},
    ).all()
    if not rows:
        return 0
    groups: dict[tuple[str, str, str], list[int]] = {}
    for r in rows:
        groups.setdefault((r.entity_type, r.entity_id, r.operation), []).append(r.id)
    siblings = dict(
        ((r.entity_type, r.entity_id, r.operation), r.id)
        for r in session.execute(
            text("""
                SELECT q.id, q.entity_type, q.entity_id, q.operation FROM data_sync_queue q
                JOIN unnest(CAST(:t AS text[]), CAST(:i AS text[]), CAST(:o AS text[]))
                    AS k(t, i, o) ON q.entity_type = k.t AND q.entity_id = k.i AND q.operation = k.o
                WHERE q.status = 'pending' FOR UPDATE
            """),
            {"t": [k[0] for k in groups], "i": [k[1] for k in groups],
             "o": [k[2] for k in groups]},
        )
    )
    merges: list[tuple[int, int]] = []  # (source, target): target is the newer item
    back: list[int] = []
    for key, members in groups.items():
        target = siblings.get(key)
        if target is None:
            target = members[-1]
            back.append(target)
        merges += [(m, target) for m in sorted(members, reverse=True) if m != target]
    for source, target in merges:
        session.execute(
            text(f"""
                UPDATE data_sync_queue t SET data = {merge_sql("s.data", "t.data")},
                    updated_at = now()
                FROM data_sync_queue s WHERE s.id = :s AND t.id = :t
            """),
            {"s": source, "t": target},
        )
    if merges:
        session.execute(
            text("""
                UPDATE data_sync_queue q SET status = 'completed', processed_at = now(),
                    lease_owner = NULL, lease_expires_at = NULL, updated_at = now(),
                    last_error = 'coalesced into item ' || m.target
                FROM unnest(CAST(:s AS bigint[]), CAST(:t AS bigint[])) AS m(source, target)
                WHERE q.id = m.source
            """),
            {"s": [m[0] for m in merges], "t": [m[1] for m in merges]},
        )
    session.execute(
        text(f"UPDATE data_sync_queue SET status = 'pending', lease_owner = NULL, "
             f"lease_expires_at = NULL, updated_at = now(), {set_sql} "
             f"WHERE id = ANY(CAST(:ids AS bigint[]))"),
        {"ids": back},
    )
    return len(rows)


def requeue_failed(session: Session, ids: Sequence[int] | None = None) -> int:
    """Re-queue dead-lettered items (all, or these ids): attempts reset, due now."""
    failed_ids = list(
        session.execute(
            text("SELECT id FROM data_sync_queue WHERE status = 'failed' "
                 "AND (CAST(:ids AS bigint[]) IS NULL OR id = ANY(CAST(:ids AS bigint[])))"),
            {"ids": list(ids) if ids is not None else None},
        ).scalars()
    )
    if not failed_ids:
        return 0
    return _to_pending(session, failed_ids, "status = 'failed'", {},
                       "attempts = 0, next_attempt_at = now(), processed_at = NULL")


def release(session: Session, ids: Sequence[int], owner: str) -> int:
    """Give leased items back unprocessed (a worker stopping early); the attempt is refunded."""
    if not ids:
        return 0
    return _to_pending(session, ids, "status = 'processing' AND lease_owner = :o", {"o": owner},
                       "attempts = GREATEST(0, attempts - 1)")


# ---------------------------------------------------------------- reads


def queue_status(session: Session) -> dict[str, Any]:
    """Pending and failed counts, and whether any worker holds a live lease."""
    row = session.execute(text("""
        SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status = 'processing' AND lease_expires_at > now())
                   AS leased
        FROM data_sync_queue WHERE status IN ('pending', 'failed', 'processing')
    """)).one()
    return {"pending": row.pending, "failed": row.failed, "processing": row.leased > 0}


def items_query(
    status: str | None = None, entity_type: str | None = None
) -> Select[tuple[DataSyncQueueItem]]:
    """Queue items filtered by status and entity type, oldest first."""
    stmt = select(DataSyncQueueItem).order_by(DataSyncQueueItem.id)
    if status is not None:
        stmt = stmt.where(DataSyncQueueItem.status == status)
    if entity_type is not None:
        stmt = stmt.where(DataSyncQueueItem.entity_type == entity_type)
    return stmt
