"""Retention: which backups a policy keeps (restic-style keep-last/daily/weekly/monthly/within)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel


class RetentionPolicy(BaseModel):
    """Keep the union of every rule; failed or unfinished backups are always pruned."""

    keep_last: int = 7
    keep_daily: int = 7
    keep_weekly: int = 4
    keep_monthly: int = 6
    keep_within_hours: float | None = None
    #: Running backups younger than this are left alone (they may still be in progress).
    grace_hours: float = 6.0


@dataclass(frozen=True)
class BackupRef:
    """What retention needs to know about one backup."""

    id: int
    created_at: datetime
    status: str
    parent_id: int | None = None


@dataclass
class PrunePlan:
    """Backups to keep (with why) and to delete."""

    keep: dict[int, list[str]]
    delete: list[int]


def _bucketed(refs: list[BackupRef], n: int, bucket: Callable[[datetime], object],
              reason: str, keep: dict[int, list[str]]) -> None:
    seen: set[object] = set()
    for ref in refs:
        if len(seen) >= n:
            return
        key = bucket(ref.created_at)
        if key not in seen:
            seen.add(key)
            keep.setdefault(ref.id, []).append(reason)


def plan_prune(backups: list[BackupRef], policy: RetentionPolicy, now: datetime) -> PrunePlan:
    """Apply `policy`; parents of kept incremental backups are kept too."""
    done = sorted((b for b in backups if b.status == "completed"),
                  key=lambda b: b.created_at, reverse=True)
    keep: dict[int, list[str]] = {}
    for ref in done[: policy.keep_last]:
        keep.setdefault(ref.id, []).append("last")
    _bucketed(done, policy.keep_daily, lambda t: t.date(), "daily", keep)
    _bucketed(done, policy.keep_weekly, lambda t: t.isocalendar()[:2], "weekly", keep)
    _bucketed(done, policy.keep_monthly, lambda t: (t.year, t.month), "monthly", keep)
    if policy.keep_within_hours is not None:
        cutoff = now - timedelta(hours=policy.keep_within_hours)
        for ref in done:
            if ref.created_at >= cutoff:
                keep.setdefault(ref.id, []).append("within")
    by_id = {b.id: b for b in backups}
    for bid in list(keep):
        parent = by_id[bid].parent_id
        while parent is not None and parent in by_id:
            keep.setdefault(parent, []).append(f"parent of {bid}")
            parent = by_id[parent].parent_id
    grace = now - timedelta(hours=policy.grace_hours)
    delete = [
        b.id for b in sorted(backups, key=lambda b: b.created_at)
        if b.id not in keep and not (b.status == "running" and b.created_at >= grace)
    ]
    return PrunePlan(keep, delete)
