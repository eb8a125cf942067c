"""The one run wrapper: sync log start/finish, failure state, last-success stamp."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from channels.base import ChannelName
from tasks.runs import SyncRun, sync_run, sync_runs
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


def test_runs_opened_together_keep_their_own_counts_and_stamps(committed: Session) -> None:
    """An account's pull opens its channels' logs together and closes them together: each
    row carries its own channel, counts and status; only the successful ones are stamped."""
    hotel = make_hotel(committed, days=1, channels=(
        ChannelName.BOOKING_COM, ChannelName.EXPEDIA, ChannelName.AGODA))
    committed.commit()
    ids = [hotel.channels[ChannelName.AGODA], hotel.channels[ChannelName.BOOKING_COM],
           hotel.channels[ChannelName.EXPEDIA]]

    async def together() -> list[SyncRun]:
        async with sync_runs(ids, "test_many") as runs:
            assert [run.channel_id for run in runs] == ids
            runs[0].totals.add(2, 2, 0)
            runs[1].totals.add(1, 0, 1)
            runs[1].errors.append("refused")
            runs[2].forced_status = "not_applicable"
        return runs

    runs = asyncio.run(together())
    assert [run.status for run in runs] == ["success", "failed", "not_applicable"]
    rows = {r[0]: r[1:] for r in committed.execute(text(
        "SELECT id, channel_id, operation, status, records_processed FROM channel_sync_logs"))}
    assert [rows[run.log_id] for run in runs] == [
        (ids[0], "test_many", "success", 2), (ids[1], "test_many", "failed", 1),
        (ids[2], "test_many", "not_applicable", 0)]
    stamped = committed.execute(text(
        "SELECT id FROM channels WHERE last_successful_sync ? 'test_many'")).scalars().all()
    assert stamped == [ids[0]]


def test_an_exception_fails_every_run_opened_together(committed: Session) -> None:
    hotel = make_hotel(committed, days=1, channels=(ChannelName.BOOKING_COM, ChannelName.EXPEDIA))
    committed.commit()
    ids = sorted(hotel.channels.values())
    seen: list[int] = []

    async def boom() -> None:
        async with sync_runs(ids, "test_many_boom") as runs:
            seen.extend(run.log_id for run in runs)
            runs[0].totals.add(processed=1, success=1)
            raise RuntimeError("account page exploded")

    with pytest.raises(RuntimeError, match="account page exploded"):
        asyncio.run(boom())
    assert [_log(committed, log_id)[0] for log_id in seen] == ["failed", "failed"]
    assert _log(committed, seen[0])[4] == ["RuntimeError: account page exploded"]
    assert committed.execute(text(
        "SELECT count(*) FROM channels WHERE last_successful_sync ? 'test_many_boom'"
    )).scalar_one() == 0
