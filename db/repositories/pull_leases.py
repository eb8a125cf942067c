"""Channel pull leases (`channel_pull_leases`): a scheduled batch pull takes the leases of
its channels in one statement, renews them while it runs and drops them when done; a lease
whose holder died expires by itself. Shared by every worker process and machine (they share
the database), so a channel is never pulled by two batches at once and a hung pull holds
only its own channel."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

_TAKE = text("""
    INSERT INTO channel_pull_leases AS l (channel_id, holder, expires_at)
    SELECT c.id, :holder, now() + make_interval(secs => :seconds)
    FROM channels c WHERE c.id = ANY(CAST(:ids AS bigint[]))
    ORDER BY c.id
    ON CONFLICT (channel_id) DO UPDATE
        SET holder = EXCLUDED.holder, acquired_at = now(), expires_at = EXCLUDED.expires_at
        WHERE l.expires_at < now() OR l.holder = EXCLUDED.holder
    RETURNING l.channel_id
""")


def take_leases(
    session: Session, channel_ids: Sequence[int], holder: str, seconds: float
) -> list[int]:
    """Lease those of `channel_ids` that no live holder has, for `seconds`; returns the ids
    now held by `holder` (sorted). Channels that no longer exist are left out."""
    if not channel_ids:
        return []
    rows = session.execute(
        _TAKE, {"ids": list(channel_ids), "holder": holder, "seconds": float(seconds)}
    ).scalars()
    return sorted(int(r) for r in rows)


def renew_leases(session: Session, holder: str, channel_ids: Sequence[int], seconds: float) -> int:
    """Push the expiry of the holder's leases on `channel_ids` to now + `seconds`; returns
    how many it still held (a lease that expired and was taken by another is not renewed)."""
    if not channel_ids:
        return 0
    result = session.execute(
        text("UPDATE channel_pull_leases SET expires_at = now() + make_interval(secs => :s) "
             "WHERE holder = :h AND channel_id = ANY(CAST(:ids AS bigint[]))"),
        {"s": float(seconds), "h": holder, "ids": list(channel_ids)},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def release_leases(session: Session, holder: str, channel_ids: Sequence[int]) -> int:
    """Drop the holder's leases on `channel_ids` (never another holder's)."""
    if not channel_ids:
        return 0
    result = session.execute(
        text("DELETE FROM channel_pull_leases "
             "WHERE holder = :h AND channel_id = ANY(CAST(:ids AS bigint[]))"),
        {"h": holder, "ids": list(channel_ids)},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def leased_channels(session: Session) -> dict[int, str]:
    """Channel id -> holder of every lease not yet expired."""
    rows = session.execute(
        text("SELECT channel_id, holder FROM channel_pull_leases WHERE expires_at >= now()")
    ).all()
    return {int(r.channel_id): str(r.holder) for r in rows}
