"""The one run wrapper: sync log start/finish, failure state, last-success stamp."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from channels.base import ChannelName
from tasks.runs import sync_run
from tests.sync.conftest import make_hotel

pytestmark = pytest.mark.postgres


def _log(session: Session, log_id: int) -> tuple:
    session.expire_all()
    return tuple(session.execute(
        text("SELECT status, records_processed, records_success, records_failed, "
             "error_messages, finished_at IS NOT NULL FROM channel_sync_logs WHERE id = :i"),
        {"i": log_id}).one())


def test_a_run_closes_its_log_with_counts_and_stamps_success(committed: Session) -> None:
    hotel = make_hotel(committed, days=1, channels=(ChannelName.AGODA,))
    committed.commit()
    cid = hotel.channels[ChannelName.AGODA]

    async def runs() -> list[int]:
        ids = []
        async with sync_run(cid, "test_op") as ok:
            ok.totals.add(3, 3, 0)
        ids.append(ok.log_id)
        async with sync_run(cid, "test_op") as partial:
            partial.totals.add(3, 1, 2)
            partial.errors.append("two refused")
        ids.append(partial.log_id)
        assert (ok.status, partial.status) == ("success", "partial")
        return ids

    ok_id, partial_id = asyncio.run(runs())
    assert _log(committed, ok_id) == ("success", 3, 3, 0, [], True)
    assert _log(committed, partial_id) == ("partial", 3, 1, 2, ["two refused"], True)
    stamp = committed.execute(text("SELECT last_successful_sync ->> 'test_op' FROM channels "
                                   "WHERE id = :c"), {"c": cid}).scalar_one()
    assert stamp is not None


def test_an_exception_fails_the_log_and_propagates(committed: Session) -> None:
    hotel = make_hotel(committed, days=1, channels=(ChannelName.AGODA,))
    committed.commit()
    cid = hotel.channels[ChannelName.AGODA]
    seen: dict[str, int] = {}

    async def boom() -> None:
        async with sync_run(cid, "test_boom") as run:
            seen["log"] = run.log_id
            run.totals.add(processed=1, success=1)
            raise RuntimeError("partner exploded")

    with pytest.raises(RuntimeError, match="partner exploded"):
        asyncio.run(boom())
    status, *_, errors, finished = _log(committed, seen["log"])
    assert (status, finished) == ("failed", True)
    assert errors == ["RuntimeError: partner exploded"]
    stamp = committed.execute(text("SELECT last_successful_sync ->> 'test_boom' FROM channels "
                                   "WHERE id = :c"), {"c": cid}).scalar_one()
    assert stamp is None
