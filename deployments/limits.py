"""Prefect global rate limits, one per partner API, created or updated at startup (the
budgets themselves are in tasks/limits.py, beside the tasks that take their slots).

Tasks call `rate_limit(partner_limit(channel), strict=False)` before each partner request:
without the limit on the server they run unthrottled, so `innsync up` and `serve` upsert
these first. `limit` is the burst; `slot_decay_per_second` the sustained requests per second
across every worker sharing the Prefect server.
"""

from __future__ import annotations

from tasks.limits import PARTNER_LIMITS, PartnerLimit, burst_of

__all__ = ["PARTNER_LIMITS", "PartnerLimit", "burst_of", "ensure_limits", "ensure_limits_async"]


async def ensure_limits_async(limits: tuple[PartnerLimit, ...] = PARTNER_LIMITS) -> list[str]:
    """Create or update every partner rate limit on the configured Prefect server."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        for item in limits:
            await client.upsert_global_concurrency_limit_by_name(
                item.name, item.limit, slot_decay_per_second=item.slot_decay_per_second
            )
    return [item.name for item in limits]


def ensure_limits(limits: tuple[PartnerLimit, ...] = PARTNER_LIMITS) -> list[str]:
    """`ensure_limits_async` for synchronous callers (no running event loop)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for item in limits:
            client.upsert_global_concurrency_limit_by_name(
                item.name, item.limit, slot_decay_per_second=item.slot_decay_per_second
            )
    return [item.name for item in limits]


if __name__ == "__main__":
    # `python -m deployments.limits`: for installs that run workers instead of serve.py.
    print("rate limits ready:", ", ".join(ensure_limits()))
