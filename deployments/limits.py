"""Prefect global rate limits, one per partner API, created or updated at startup (the
budgets themselves are in tasks/limits.py, beside the tasks that take their slots).

Tasks call `rate_limit(partner_limit(channel), strict=False)` before each partner request:
without the limit on the server they run unthrottled, so `innsync up` and `serve` upsert
these first, and the `maintenance` flow again every minute (a budget grows with the enabled
channels of its partner: tasks/limits.scaled_limits). `limit` is the burst; `slot_decay_per_second` the sustained requests per second
across every worker sharing the Prefect server.
"""

from __future__ import annotations

from typing import Any

from tasks.limits import PARTNER_LIMITS, PartnerLimit, burst_of, current_limits

__all__ = ["PARTNER_LIMITS", "PartnerLimit", "burst_of", "current_limits", "ensure_limits",
           "ensure_limits_async"]


async def ensure_limits_async(limits: tuple[PartnerLimit, ...] | None = None) -> list[str]:
    """Create or update every partner rate limit on the configured Prefect server (by
    default scaled to the enabled channels: `tasks.limits.current_limits`)."""
    from prefect.client.orchestration import get_client

    if limits is None:
        limits = current_limits()
    from prefect.exceptions import ObjectAlreadyExists

    async with get_client() as client:
        for item in limits:
            try:
                await client.upsert_global_concurrency_limit_by_name(
                    item.name, item.limit, slot_decay_per_second=item.slot_decay_per_second)
            except ObjectAlreadyExists:  # created meanwhile by another process: see _upsert
                await client.upsert_global_concurrency_limit_by_name(
                    item.name, item.limit, slot_decay_per_second=item.slot_decay_per_second)
    return [item.name for item in limits]


def _upsert(client: Any, item: PartnerLimit) -> None:
    """Prefect's upsert reads the limit, then creates it when missing: processes starting
    together (`innsync up --workers N` starts N serve processes, each ensuring the limits)
    can both find it missing, and the later create fails with a conflict. The limit exists
    then: the second try updates it."""
    from prefect.exceptions import ObjectAlreadyExists

    try:
        client.upsert_global_concurrency_limit_by_name(
            item.name, item.limit, slot_decay_per_second=item.slot_decay_per_second)
    except ObjectAlreadyExists:
        client.upsert_global_concurrency_limit_by_name(
            item.name, item.limit, slot_decay_per_second=item.slot_decay_per_second)


def ensure_limits(limits: tuple[PartnerLimit, ...] | None = None,
                  existing_only: bool = False) -> list[str]:
    """`ensure_limits_async` for synchronous callers (no running event loop).
    `existing_only` (the maintenance flow): update the limits that exist, create none (a
    server without partner limits, as in tests, stays without)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    if limits is None:
        limits = current_limits()
    done = []
    with get_client(sync_client=True) as client:
        for item in limits:
            if existing_only:
                try:
                    now = client.read_global_concurrency_limit_by_name(item.name)
                except ObjectNotFound:
                    continue
                if (now.limit, now.slot_decay_per_second) == (item.limit,
                                                              item.slot_decay_per_second):
                    continue
            _upsert(client, item)
            done.append(item.name)
    return done if existing_only else [item.name for item in limits]


if __name__ == "__main__":
    # `python -m deployments.limits`: for installs that run workers instead of serve.py.
    print("rate limits ready:", ", ".join(ensure_limits()))
