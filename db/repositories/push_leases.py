"""Channel push leases (`channel_push_leases`): an ARI push holds the leases of the months
its window covers while it reads the delta, sends it and records what the partner accepted,
so no two processes push the same channel's night side by side. All of a window's months
are taken in one statement or none (the caller waits and tries again); a lease is renewed
while its push runs and expires by itself when the holder died. The acknowledged state is
recorded only while the leases are still held (`held`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

_TAKE = text("""
    INSERT INTO channel_push_leases AS l (channel_id, month, holder, expires_at)
    SELECT :c, m, :holder, now() + make_interval(secs => :seconds)
    FROM unnest(CAST(:months AS date[])) AS m ORDER BY m
    ON CONFLICT (channel_id, month) DO UPDATE
        SET holder = EXCLUDED.holder, acquired_at = now(), expires_at = EXCLUDED.expires_at
        WHERE l.expires_at < now() OR l.holder = EXCLUDED.holder
    RETURNING l.month
""")


def months_of(start: date, end: date) -> list[date]:
    """The first days of the months start..end touches (the lease keys of a window)."""
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
    return months


def take_push_leases(
    session: Session, channel_id: int, months: Sequence[date], holder: str, seconds: float
) -> bool:
    """Lease all of the channel's `months` for `holder`, or none: False (nothing taken, a
    savepoint gives back the free months) when a live holder has any of them."""
    savepoint = session.begin_nested()
    taken = session.execute(
        _TAKE, {"c": channel_id, "months": sorted(set(months)), "holder": holder,
                "seconds": float(seconds)}
    ).scalars().all()
    if len(taken) == len(set(months)):
        savepoint.commit()
        return True
    savepoint.rollback()
    return False


def renew_push_leases(session: Session, channel_id: int, holder: str, seconds: float) -> int:
    """Push the expiry of the holder's leases on the channel to now + `seconds`."""
    result = session.execute(
        text("UPDATE channel_push_leases SET expires_at = now() + make_interval(secs => :s) "
             "WHERE channel_id = :c AND holder = :h"),
        {"s": float(seconds), "c": channel_id, "h": holder},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def held(session: Session, channel_id: int, holder: str, months: Sequence[date]) -> bool:
    """Whether `holder` still has a live lease on every one of the channel's `months`; the
    rows stay locked until the transaction ends, so none expires into another's hands
    between this check and the commit of what the holder records."""
    rows = session.execute(
        text("SELECT month FROM channel_push_leases WHERE channel_id = :c AND holder = :h "
             "AND month = ANY(CAST(:m AS date[])) AND expires_at > now() FOR UPDATE"),
        {"c": channel_id, "h": holder, "m": sorted(set(months))},
    ).all()
    return len(rows) == len(set(months))


def release_push_leases(session: Session, channel_id: int, holder: str) -> int:
    """Drop the holder's leases on the channel (never another holder's)."""
    result = session.execute(
        text("DELETE FROM channel_push_leases WHERE channel_id = :c AND holder = :h"),
        {"c": channel_id, "h": holder},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
