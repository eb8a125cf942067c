"""Retry policy for partner calls: transient errors only, exponential backoff with jitter,
the partner's Retry-After honoured, and bounded in time as well as count: no retry once
INNSYNC_RETRY_BUDGET_SECONDS passed since the task's first try."""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from prefect.tasks import exponential_backoff

from channels.base import ChannelError, TransientChannelError
from innsync.settings import get_settings

T = TypeVar("T")

#: Longest Retry-After we wait inside a task before handing over to Prefect's backoff.
MAX_RETRY_AFTER = 60.0
RETRIES = 3


def budget_left(task_run: Any, now: datetime | None = None) -> float:
    """Seconds of the retry budget a task run has left (its first try started the clock)."""
    started = getattr(task_run, "start_time", None) or getattr(task_run, "expected_start_time",
                                                                None)
    if started is None:
        return get_settings().retry_budget_seconds
    elapsed = ((now or datetime.now(UTC)) - started).total_seconds()
    return get_settings().retry_budget_seconds - elapsed


def retry_transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry_condition_fn: retry TransientChannelError, never permanent errors, and
    never once the retry budget (seconds since the first try) is spent.

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
    return (isinstance(exc, TransientChannelError) and exc.retry_in_run
            and budget_left(task_run) > 0)


def token_wait(exc: BaseException) -> float | None:
    """Seconds a partner's token endpoint asked us to wait (its 429's Retry-After), when that
    is why a call was not made; None for every other error. Work queued for that partner is
    put back for that long without counting an attempt."""
    if isinstance(exc, TransientChannelError) and not exc.retry_in_run:
        return max(float(exc.retry_after or 0.0), 1.0)
    return None


async def honour_retry_after(exc: ChannelError) -> None:
    """Sleep what the partner asked for (bounded, never past the retry budget) before the
    task fails into its retry; not for errors that are not retried inside the run (a token
    endpoint's Retry-After)."""
    wait = min(exc.retry_after or 0.0, MAX_RETRY_AFTER) if exc.retry_in_run else 0.0
    if wait > 0:
        from prefect.context import TaskRunContext

        ctx = TaskRunContext.get()
        if ctx is not None and ctx.task_run is not None:
            wait = min(wait, max(budget_left(ctx.task_run), 0.0))
    await asyncio.sleep(wait)


PARTNER_TASK_OPTIONS: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=get_settings().retry_backoff_seconds),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_transient_only,
}


async def with_partner_retries(call: Callable[[], Awaitable[T]]) -> T:
    """The partner tasks' retry policy (PARTNER_TASK_OPTIONS) for a plain call that is no
    Prefect task run (a batch's page fetch, flows/scheduled.py): transient errors retried
    RETRIES times with exponential backoff and jitter, never once the retry budget (from the
    first try) is spent; permanent errors and token-endpoint throttling raise at once."""
    settings = get_settings()
    started = time.monotonic()
    for attempt in range(RETRIES + 1):
        try:
            return await call()
        except TransientChannelError as exc:
            spent = time.monotonic() - started
            if (attempt == RETRIES or not exc.retry_in_run
                    or spent >= settings.retry_budget_seconds):
                raise
            delay = settings.retry_backoff_seconds * 2 ** attempt
            delay *= 1 + random.uniform(-0.5, 0.5)
            await asyncio.sleep(min(delay, max(settings.retry_budget_seconds - spent, 0.0)))
    raise AssertionError("unreachable")
