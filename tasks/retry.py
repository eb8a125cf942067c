"""Retry policy for partner calls: transient errors only, exponential backoff with jitter,
and the partner's Retry-After honoured."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from prefect.tasks import exponential_backoff

from channels.base import ChannelError, TransientChannelError
from innsync.settings import get_settings

#: Longest Retry-After we wait inside a task before handing over to Prefect's backoff.
MAX_RETRY_AFTER = 60.0
RETRIES = 3


def retry_transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry_condition_fn: retry TransientChannelError, never permanent errors.

    The engine hands over `Failed(data=exc)`; reading `state.data` works for sync and async
    tasks alike (`state.result()` would be an un-awaited coroutine in an async task).
    """
    exc = getattr(state, "data", None)
    if not isinstance(exc, BaseException):
        try:
            outcome = state.result(raise_on_failure=False)
        except Exception:
            return False
        if inspect.iscoroutine(outcome):
            outcome.close()
            return False
        exc = outcome
    # Token endpoint rate limits (channels.tokens) end the run now: the next run retries.
    return isinstance(exc, TransientChannelError) and getattr(exc, "retry_in_run", True)


async def honour_retry_after(exc: ChannelError) -> None:
    """Sleep what the partner asked for (bounded) before the task fails into its retry; not
    for errors that are not retried inside the run (a token endpoint's Retry-After)."""
    if exc.retry_after and getattr(exc, "retry_in_run", True):
        await asyncio.sleep(min(exc.retry_after, MAX_RETRY_AFTER))
    else:
        await asyncio.sleep(0)


PARTNER_TASK_OPTIONS: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=get_settings().retry_backoff_seconds),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_transient_only,
}
