"""Partner tokens live in the database (`partner_auth_tokens`), shared by every process and
flow run: N concurrent processes and M sequential runs make one token exchange per lifetime.

Everything talks HTTP to a real simulator; adapters come from tasks.resources.adapter_for as
a flow's tasks get them (one per event loop: each thread or process is a separate run).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.base import ChannelName, TransientChannelError
from channels.simulators.common import FaultSettings, TokenSettings
from channels.simulators.server import build_app, running_server
from channels.tokens import TokenKey, TokenRateLimitedError
from db.models import PartnerAuthToken
from db.repositories import auth_tokens
from innsync.crypto import app_key, decrypt_json
from tests.sync.conftest import make_hotel, point_channel_at

ROOT = Path(__file__).resolve().parents[2]

#: One flow run in a separate process: build the channel's adapter, pull a page, close.
RUN_IN_PROCESS = """
import asyncio, sys, time
from tasks import resources
channel_id, start_at = int(sys.argv[1]), float(sys.argv[2])
async def run():
    time.sleep(max(0.0, start_at - time.time()))
    async with resources.adapter_pool():
        await resources.adapter_for(channel_id).fetch_bookings()
asyncio.run(run())
"""


def run_once(channel_id: int) -> None:
    """One flow run's worth of partner calls, with its own adapter pool (so its own adapter)."""
    from tasks import resources

    async def run() -> None:
        async with resources.adapter_pool():
            await resources.adapter_for(channel_id).fetch_bookings()

    asyncio.run(run())


def concurrently(target: Callable[[], None], threads: int) -> list[BaseException]:
    """Run `target` in `threads` threads released together; the exceptions they raised."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def body() -> None:
        barrier.wait()
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=body) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    return errors


@contextmanager
def partner(committed: Session, channel: ChannelName, **tokens: object) -> Iterator[tuple[int, object]]:
    """A channel of a fresh hotel pointed at a simulator served over HTTP: (channel id, sim state)."""
    hotel = make_hotel(committed, channels=(channel,))
    committed.commit()
    cid = hotel.channels[channel]
    app = build_app(channel, bookings=3, seed=5)
    state = app.state.sim
    if tokens:
        state.tokens.settings = state.tokens.settings.model_copy(update=tokens)
    with running_server(app) as url:
        point_channel_at(committed, cid, url, apiKey=f"client-{cid}", apiSecret="s3cret-value-xyz",
                         hotelId=state.hotel_id)
        yield cid, state


def stored_row(committed: Session, channel: ChannelName) -> PartnerAuthToken:
    committed.expire_all()
    (row,) = committed.scalars(
        select(PartnerAuthToken).where(PartnerAuthToken.channel_name == str(channel))
    ).all()
    return row


@pytest.mark.parametrize("channel", [ChannelName.BOOKING_COM, ChannelName.AIRBNB])
def test_concurrent_processes_and_sequential_runs_make_one_exchange(committed, channel):  # type: ignore[no-untyped-def]
    """3 processes and 4 threads start together (the partner answers slowly, so they overlap),
    then 5 runs one after the other: one token exchange in all, counted by partner and row."""
    with partner(committed, channel) as (cid, sim):
        sim.faults = FaultSettings(latency_ms=300)
        start_at = time.time() + 3.0  # the processes need a moment to import
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [
            subprocess.Popen([sys.executable, "-c", RUN_IN_PROCESS, str(cid), str(start_at)],
                             cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        time.sleep(max(0.0, start_at - time.time()))
        errors = concurrently(lambda: run_once(cid), threads=4)
        for proc in procs:
            _, stderr = proc.communicate(timeout=60)
            assert proc.returncode == 0, stderr[-2000:]
        assert errors == []
        sim.faults = FaultSettings()
        for _ in range(5):
            run_once(cid)
        assert sim.tokens.exchanges == 1
        assert sim.tokens.refused == 0
        row = stored_row(committed, channel)
        assert row.exchange_count == 1 and row.retry_not_before is None


def test_expired_token_is_refreshed_once(committed):  # type: ignore[no-untyped-def]
    with partner(committed, ChannelName.BOOKING_COM) as (cid, sim):
        run_once(cid)
        row = stored_row(committed, ChannelName.BOOKING_COM)
        first_refresh = row.refreshed_at
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        committed.commit()
        assert concurrently(lambda: run_once(cid), threads=4) == []
        run_once(cid)
        assert sim.tokens.exchanges == 2
        row = stored_row(committed, ChannelName.BOOKING_COM)
        assert row.exchange_count == 2 and row.refreshed_at > first_refresh
        assert row.expires_at > datetime.now(UTC) + timedelta(minutes=50)
        (stats,) = auth_tokens.exchange_stats(committed, "booking.com")  # what the soak bench reads
        assert stats.exchange_count == 2 and stats.account_key == row.account_key
        assert auth_tokens.exchange_stats(committed, "airbnb") == []


def test_short_lived_tokens_are_reused_until_shortly_before_expiry(committed):  # type: ignore[no-untyped-def]
    """A partner with 4-second tokens (time compressed through the simulator): runs inside one
    lifetime share the token, the next lifetime gets one new one."""
    with partner(committed, ChannelName.AIRBNB, token_ttl_seconds=4.0) as (cid, sim):
        for _ in range(3):
            run_once(cid)
        assert sim.tokens.exchanges == 1
        time.sleep(4.0)
        for _ in range(3):
            run_once(cid)
        assert sim.tokens.exchanges == 2


def test_revoked_token_is_invalidated_and_refreshed_once(committed):  # type: ignore[no-untyped-def]
    """The partner forgets its tokens: every concurrent run gets 401 with the stored token,
    one of them exchanges, the others use its fresh token."""
    with partner(committed, ChannelName.BOOKING_COM) as (cid, sim):
        run_once(cid)
        sim.tokens.revoke_all()
        sim.faults = FaultSettings(latency_ms=200)
        assert concurrently(lambda: run_once(cid), threads=4) == []
        assert sim.tokens.exchanges == 2
        assert stored_row(committed, ChannelName.BOOKING_COM).exchange_count == 2


def test_stored_token_is_encrypted(committed):  # type: ignore[no-untyped-def]
    with partner(committed, ChannelName.BOOKING_COM) as (cid, sim):
        run_once(cid)
        (token,) = sim.tokens.valid_until
        row = stored_row(committed, ChannelName.BOOKING_COM)
        columns = {c.name: getattr(row, c.name) for c in PartnerAuthToken.__table__.columns}
        assert not any(token in str(v) for v in columns.values())
        assert not any("s3cret-value-xyz" in str(v) for v in columns.values())
        assert row.token_encrypted and row.token_encrypted.startswith("v1:")
        assert decrypt_json(app_key(), row.token_encrypted) == {"token": token}


def test_changed_credentials_do_not_use_the_stored_token(committed):  # type: ignore[no-untyped-def]
    with partner(committed, ChannelName.BOOKING_COM) as (cid, sim):
        run_once(cid)
        point_channel_at(committed, cid, str(stored_endpoint(committed, cid)), apiSecret="rotated-secret-123")
        run_once(cid)
        assert sim.tokens.exchanges == 2
        assert stored_row(committed, ChannelName.BOOKING_COM).exchange_count == 2


def stored_endpoint(session: Session, channel_id: int) -> str | None:
    from db.repositories.channels import load_channel_config

    session.expire_all()
    return load_channel_config(session, channel_id).endpoint


def test_token_rate_limit_fails_fast_and_stores_retry_not_before(committed):  # type: ignore[no-untyped-def]
    """The token endpoint answers 429 (Retry-After 600): that run fails at once with a
    transient error, retry_not_before is stored, and later runs (any process) fail without
    asking the partner until then."""
    with partner(committed, ChannelName.BOOKING_COM, exchange_limit=0, limited_retry_after=600) as (cid, sim):
        with pytest.raises(TokenRateLimitedError) as err:
            run_once(cid)
        assert err.value.transient and err.value.retry_after == 600
        assert not getattr(err.value, "retry_in_run", True)
        row = stored_row(committed, ChannelName.BOOKING_COM)
        wait = (row.retry_not_before - datetime.now(UTC)).total_seconds()
        assert 590 < wait <= 600
        assert row.token_encrypted is None and row.exchange_count == 0
        errors = concurrently(lambda: run_once(cid), threads=3)
        assert len(errors) == 3 and all(isinstance(e, TokenRateLimitedError) for e in errors)
        assert sim.tokens.refused == 1  # only the first run reached the token endpoint
        assert sim.calls["/token-based-authentication/exchange"] == 1


def test_partner_retry_policy_does_not_retry_token_rate_limits() -> None:
    from prefect.states import Failed

    from tasks.retry import retry_transient_only

    throttled = TokenRateLimitedError("booking.com", "token endpoint rate-limited", status_code=429,
                                      retry_after=600)
    assert not retry_transient_only(None, None, Failed(data=throttled))
    assert retry_transient_only(None, None, Failed(data=TransientChannelError("booking.com", "503")))


def test_lock_wait_is_bounded(committed):  # type: ignore[no-untyped-def]
    """A process that waits longer than its bound for another's refresh fails transiently
    (and holds nothing)."""
    from db.engine import get_sessionmaker
    from tasks.resources import DbTokenStore

    key = TokenKey.of("booking.com", "http://partner.example/token", "client-lock", "secret")
    holder = get_sessionmaker()()
    try:
        auth_tokens.lock_account(holder, key.partner, key.account, wait_seconds=5)

        async def try_refresh() -> None:
            async with DbTokenStore(lock_wait_seconds=0.3).exclusive(key):
                pass

        with pytest.raises(TransientChannelError, match="lock busy"):
            asyncio.run(try_refresh())
    finally:
        holder.rollback()
        holder.close()

    async def now_free() -> None:
        async with DbTokenStore(lock_wait_seconds=0.3).exclusive(key) as slot:
            assert slot.current is None

    asyncio.run(now_free())


def test_other_channel_proceeds_while_one_is_rate_limited(committed):  # type: ignore[no-untyped-def]
    """Booking.com's token endpoint refuses (429, Retry-After 600) while Airbnb syncs: the
    Airbnb run stores its bookings; the Booking.com run fails quickly without waiting."""
    with (
        partner(committed, ChannelName.BOOKING_COM, exchange_limit=0, limited_retry_after=600) as (bcid, bsim),
        partner(committed, ChannelName.AIRBNB) as (acid, asim),
    ):
        outcome: dict[str, object] = {}

        def booking() -> None:
            try:
                run_once(bcid)
            except TokenRateLimitedError as exc:
                outcome["booking"] = exc

        def airbnb() -> None:
            from tasks import resources

            async def run() -> None:
                async with resources.adapter_pool():
                    adapter, cursor, seen = resources.adapter_for(acid), None, 0
                    while True:  # every mapped listing's page
                        page = await adapter.fetch_bookings(cursor=cursor)
                        seen, cursor = seen + len(page.bookings), page.cursor
                        if not page.has_more:
                            break
                    outcome["airbnb"] = seen

            asyncio.run(run())

        threads = [threading.Thread(target=booking), threading.Thread(target=airbnb)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert isinstance(outcome["booking"], TokenRateLimitedError)
        assert isinstance(outcome["airbnb"], int) and outcome["airbnb"] > 0
        assert asim.tokens.exchanges == 1 and bsim.tokens.refused == 1


def test_simulator_exposes_token_counts_over_http() -> None:
    app = build_app(ChannelName.BOOKING_COM, bookings=1, seed=1)
    with running_server(app) as url:
        settings = httpx.post(f"{url}/_sim/tokens", json={"token_ttl_seconds": 30, "exchange_limit": 1}).json()
        assert TokenSettings.model_validate(settings).exchange_limit == 1
        body = {"client_id": "c", "client_secret": "s"}
        first = httpx.post(f"{url}/token-based-authentication/exchange", json=body)
        assert first.status_code == 200 and first.json()["expires_in"] == 30
        second = httpx.post(f"{url}/token-based-authentication/exchange", json=body)
        assert second.status_code == 429 and second.headers["Retry-After"] == "60"
        stats = httpx.get(f"{url}/_sim/stats").json()
        assert stats["token_exchanges"] == 1 and stats["token_refusals"] == 1


@pytest.mark.usefixtures("prefect_server")
def test_rate_limited_token_ends_the_flow_run_without_in_run_retries(committed):  # type: ignore[no-untyped-def]
    """A whole sync-bookings flow run against a token endpoint answering 429: the partner is
    asked once (no task retries, no Retry-After sleep), the run ends failed with the reason,
    its sync log is not left running; Airbnb's run right after proceeds."""
    from db.models import ChannelSyncLog
    from flows.channel_sync import sync_bookings
    from flows.runner import run_flow

    with (
        partner(committed, ChannelName.BOOKING_COM, exchange_limit=0, limited_retry_after=600) as (bcid, bsim),
        partner(committed, ChannelName.AIRBNB) as (acid, asim),
    ):
        out = run_flow(sync_bookings, channel_id=bcid, push_availability=False)
        assert not out.ok
        assert bsim.tokens.refused == 1 and bsim.calls["/token-based-authentication/exchange"] == 1
        assert "rate-limited" in str(out.value or out.error)
        other = run_flow(sync_bookings, channel_id=acid, push_availability=False)
        assert other.ok and other.value["new"] > 0
    committed.expire_all()
    logs = {
        log.channel_id: log.status
        for log in committed.scalars(select(ChannelSyncLog).where(ChannelSyncLog.channel_id.in_([bcid, acid])))
    }
    assert logs == {bcid: "failed", acid: "success"}


def test_many_channels_of_one_account_in_one_loop_share_one_exchange(committed):  # type: ignore[no-untyped-def]
    """A batch pulls many channels of one account at once in one event loop: one of them
    exchanges a token, the others wait for it without holding executor threads in the
    database lock (which starved the holder until the lock wait ran out), and all get it."""
    from channels.tokens import IssuedToken, TokenProvider
    from tasks.resources import DbTokenStore

    key = TokenKey.of("booking.com", "http://partner.example/token", "client-many", "secret")
    store = DbTokenStore(lock_wait_seconds=2)
    exchanges = 0

    async def exchange() -> IssuedToken:
        nonlocal exchanges
        exchanges += 1
        await asyncio.sleep(0.3)  # the partner's token endpoint answering
        return IssuedToken(value="token-1", expires_in=3600)

    async def scenario() -> list[str]:
        providers = [TokenProvider("booking.com", key, exchange, margin=60, store=store)
                     for _ in range(40)]
        return await asyncio.gather(*[p.bearer() for p in providers])

    assert asyncio.run(scenario()) == ["token-1"] * 40
    assert exchanges == 1
