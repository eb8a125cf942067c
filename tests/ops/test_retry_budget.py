"""Partner-task retries stop when the retry budget (seconds since the first try) is spent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from prefect import flow, task

from channels.base import TransientChannelError
from tasks.retry import PARTNER_TASK_OPTIONS, budget_left

calls: list[int] = []


@task(**PARTNER_TASK_OPTIONS)
async def always_503() -> str:
    calls.append(1)
    raise TransientChannelError("booking.com", "HTTP 503", status_code=503)


@flow
async def run_it() -> str:
    return await always_503()


@pytest.fixture
def budget(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from innsync.settings import get_settings

    monkeypatch.setenv("INNSYNC_RETRY_BUDGET_SECONDS", "0")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("prefect_server", "budget")
def test_no_retry_once_the_budget_is_spent() -> None:
    calls.clear()
    with pytest.raises(TransientChannelError):
        asyncio.run(run_it())
    assert len(calls) == 1  # the count (3 retries) would have allowed 4 tries


@pytest.mark.usefixtures("prefect_server")
def test_retries_within_the_budget() -> None:
    calls.clear()
    with pytest.raises(TransientChannelError):
        asyncio.run(run_it())
    assert len(calls) == 4  # 1 try + 3 retries: the budget (120 s) was not the limit


def test_budget_left_counts_from_the_first_try() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    run = SimpleNamespace(start_time=now - timedelta(seconds=100), expected_start_time=None)
    assert budget_left(run, now) == pytest.approx(20.0)
    run = SimpleNamespace(start_time=None, expected_start_time=now - timedelta(seconds=130))
    assert budget_left(run, now) == pytest.approx(-10.0)


def test_a_plain_call_gets_the_partner_tasks_retry_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's page fetch is no Prefect task run: with_partner_retries retries transient
    errors (RETRIES times), raises permanent ones and token-endpoint throttling at once."""
    import asyncio

    from channels.base import ChannelError, TransientChannelError
    from channels.tokens import TokenRateLimitedError
    from innsync.settings import get_settings
    from tasks.retry import RETRIES, with_partner_retries

    monkeypatch.setenv("INNSYNC_RETRY_BACKOFF_SECONDS", "0.01")
    get_settings.cache_clear()
    calls: list[str] = []

    def failing(errors: list[Exception]):  # type: ignore[no-untyped-def]
        async def call() -> str:
            calls.append("try")
            if errors:
                raise errors.pop(0)
            return "page"
        return call

    try:
        assert asyncio.run(with_partner_retries(failing([
            TransientChannelError("agoda", "503"), TransientChannelError("agoda", "429")]))) \
            == "page"
        assert len(calls) == 3
        calls.clear()
        with pytest.raises(TransientChannelError):
            asyncio.run(with_partner_retries(failing(
                [TransientChannelError("agoda", "503")] * (RETRIES + 1))))
        assert len(calls) == RETRIES + 1
        calls.clear()
        with pytest.raises(ChannelError, match="bad hotel"):
            asyncio.run(with_partner_retries(failing([ChannelError("agoda", "bad hotel")])))
        throttled = TokenRateLimitedError("agoda", "token endpoint rate-limited",
                                          status_code=429, retry_after=600)
        with pytest.raises(TokenRateLimitedError):
            asyncio.run(with_partner_retries(failing([throttled])))
        assert len(calls) == 2  # one try each
    finally:
        get_settings.cache_clear()
