"""Partner tasks retry transient errors (async tasks included) and never permanent ones."""

from __future__ import annotations

import asyncio

import pytest
from prefect import flow, task

from channels.base import PermanentChannelError, TransientChannelError
from tasks.retry import PARTNER_TASK_OPTIONS

pytestmark = pytest.mark.usefixtures("prefect_server")
calls: dict[str, int] = {}


@task(**PARTNER_TASK_OPTIONS)
async def flaky(kind: str) -> str:
    calls[kind] = calls.get(kind, 0) + 1
    if kind == "transient" and calls[kind] <= 2:
        raise TransientChannelError("booking.com", "HTTP 503", status_code=503)
    if kind == "permanent":
        raise PermanentChannelError("booking.com", "HTTP 403", status_code=403)
    return "ok"


@flow
async def run_one(kind: str) -> str:
    return await flaky(kind)


def test_transient_errors_are_retried_in_async_tasks():
    calls.clear()
    assert asyncio.run(run_one("transient")) == "ok"
    assert calls["transient"] == 3


def test_permanent_errors_are_not_retried():
    calls.clear()
    with pytest.raises(PermanentChannelError):
        asyncio.run(run_one("permanent"))
    assert calls["permanent"] == 1
