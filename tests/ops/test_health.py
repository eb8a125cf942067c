"""Channel health from real sync-log rows: repository, API, CLI."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from channels.base import ChannelName
from db.repositories.health import channel_health, high_error_rate, stale_channels
from tests.sync.conftest import make_hotel

CHANNELS = (ChannelName.BOOKING_COM, ChannelName.EXPEDIA, ChannelName.AGODA,
            ChannelName.AIRBNB)


def _log(session: Session, channel_id: int, status: str, minutes_ago: float,
         operation: str = "sync_bookings", error: str | None = None) -> None:
    session.execute(text(
        "INSERT INTO channel_sync_logs (channel_id, operation, status, started_at, finished_at, "
        "error_messages) VALUES (:c, :op, CAST(:st AS varchar), "
        "now() - make_interval(secs => :ago), CASE WHEN CAST(:st AS varchar) = 'running' "
        "THEN NULL ELSE now() - make_interval(secs => :ago - 5) END, "
        "CAST(:err AS jsonb))"),
        {"c": channel_id, "op": operation, "st": status, "ago": minutes_ago * 60,
         "err": "[]" if error is None else f'["{error}"]'})


def _world(session: Session) -> dict[str, int]:
    """failing: ok 40 min ago then failed + crashed; fresh: ok 1 min ago (partial) and a pull
    running; never: no pull since it was created 2 h ago; off: disabled, never pulled."""
    hotel = make_hotel(session, days=1, channels=CHANNELS)
    ids = dict(zip(("failing", "fresh", "never", "off"),
                   (hotel.channels[c] for c in CHANNELS), strict=True))
    session.execute(text("UPDATE channels SET created_at = now() - interval '2 hours' "
                         "WHERE id = ANY(:ids)"), {"ids": list(ids.values())})
    session.execute(text("UPDATE channels SET enabled = false WHERE id = :i"), {"i": ids["off"]})
    _log(session, ids["failing"], "success", 60)
    _log(session, ids["failing"], "failed", 50)  # before the last success: not counted
    _log(session, ids["failing"], "success", 40)
    _log(session, ids["failing"], "failed", 3, error="booking.com: HTTP 503")
    _log(session, ids["failing"], "crashed", 2, error="the process that ran it ended")
    _log(session, ids["failing"], "success", 30, operation="webhook_booking")
    _log(session, ids["fresh"], "partial", 1)
    _log(session, ids["fresh"], "running", 0.2)
    session.flush()
    return ids


def _line(lines: list[Any], channel_id: int, operation: str = "sync_bookings") -> Any:
    (line,) = [h for h in lines if h.channel_id == channel_id and h.operation == operation]
    return line


def test_health_lines(db_session: Session) -> None:
    ids = _world(db_session)
    lines = channel_health(db_session)
    failing = _line(lines, ids["failing"])
    assert failing.consecutive_failures == 2
    assert failing.last_status == "crashed"
    assert failing.last_error == "the process that ran it ended"
    assert 39 * 60 < failing.success_age_seconds < 41 * 60
    assert failing.running == 0
    webhook = _line(lines, ids["failing"], "webhook_booking")
    assert webhook.consecutive_failures == 0 and webhook.last_status == "success"
    fresh = _line(lines, ids["fresh"])
    assert fresh.consecutive_failures == 0 and fresh.last_status == "partial"
    assert fresh.running == 1 and fresh.success_age_seconds < 120
    assert fresh.last_attempt_at > fresh.last_success_at  # the running pull is an attempt
    never = _line(lines, ids["never"])
    assert never.last_success_at is None and never.last_attempt_at is None
    assert 119 * 60 < never.success_age_seconds < 121 * 60
    stale = {h.channel_id for h in stale_channels(lines, 30 * 60)}
    assert stale == {ids["failing"], ids["never"]}  # "off" is disabled, "fresh" pulled
    assert {h.channel_id for h in stale_channels(lines, 50 * 60)} == {ids["never"]}
    assert [h.channel_id for h in channel_health(db_session, ids["fresh"])] == [ids["fresh"]]


def test_an_hour_of_pulls_failing_one_in_ten_is_a_high_error_rate(db_session: Session) -> None:
    """Expedia asks partners to act at a 10 % booking-retrieval error rate: over the last hour,
    with at least 5 pulls finished, that share of failures marks the channel (while its other
    pulls succeed, so it never goes stale); an older failure or a running pull counts nothing."""
    hotel = make_hotel(db_session, days=1, channels=(ChannelName.EXPEDIA, ChannelName.AGODA,
                                                     ChannelName.AIRBNB))
    erring, clean, few = (hotel.channels[c] for c in (ChannelName.EXPEDIA, ChannelName.AGODA,
                                                      ChannelName.AIRBNB))
    for minute in range(1, 10):
        _log(db_session, erring, "success", minute * 5)
        _log(db_session, clean, "success", minute * 5)
    _log(db_session, erring, "failed", 47, error="expedia: HTTP 503")  # 1 of 10 in the hour
    _log(db_session, clean, "failed", 70)  # over an hour ago
    _log(db_session, clean, "running", 0.1)
    _log(db_session, few, "failed", 5)
    _log(db_session, few, "success", 4)  # 1 of 2: too few runs to speak of a rate
    db_session.flush()
    lines = channel_health(db_session)
    line = _line(lines, erring)
    assert (line.runs_last_hour, line.failed_last_hour) == (10, 1)
    assert (_line(lines, clean).runs_last_hour, _line(lines, clean).failed_last_hour) == (9, 0)
    assert [h.channel_id for h in high_error_rate(lines, 0.10)] == [erring]
    assert high_error_rate(lines, 0.11) == []
    assert not stale_channels(lines, 30 * 60)  # it keeps pulling: only the rate shows it


def test_health_api(client, db_session: Session, viewer_headers, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from innsync.settings import get_settings

    monkeypatch.setenv("INNSYNC_STALE_AFTER_MINUTES", "30")
    get_settings.cache_clear()
    try:
        ids = _world(db_session)
        resp = client.get("/api/health")
        public = resp.json()
        assert public["status"] == "degraded"
        assert public["channels"] == {"enabled": 3, "stale": 2, "failing": 1, "running": 1,
                                      "staleAfterMinutes": 30, "unroutable": 0}
        assert "booking.com" not in resp.text  # public: counts, never channel names
        assert client.get("/api/health/channels").status_code == 401
        body = client.get("/api/health/channels", headers=viewer_headers).json()
        assert body["staleAfterMinutes"] == 30
        by_key = {(c["channelId"], c["operation"]): c for c in body["channels"]}
        failing = by_key[(ids["failing"], "sync_bookings")]
        assert failing["stale"] and failing["consecutiveFailures"] == 2
        # 3 of its 4 pulls in the hour failed, but fewer than 5 finished: no rate verdict
        assert (failing["runsLastHour"], failing["failedLastHour"]) == (4, 3)
        assert failing["highErrorRate"] is False
        assert not by_key[(ids["fresh"], "sync_bookings")]["stale"]
        assert not by_key[(ids["off"], "sync_bookings")]["stale"]
        one = client.get(f"/api/health/channels?channelId={ids['fresh']}",
                         headers=viewer_headers).json()
        assert {c["channelId"] for c in one["channels"]} == {ids["fresh"]}
        assert client.get("/api/health/channels?channelId=abc",
                          headers=viewer_headers).status_code == 422
    finally:
        get_settings.cache_clear()


def _unroutable(session: Session) -> int:
    """An account with two reservations for a hotel code it does not map: one seen now,
    one last seen two days ago."""
    from channels.base import ChannelConfig
    from db.repositories.accounts import create_account

    account = create_account(session, name="Group BDC", channel_name="booking.com",
                             config=ChannelConfig(apiKey="k", apiSecret="s")).id
    session.execute(text(
        "INSERT INTO unroutable_reservations (account_id, hotel_code, external_id, event, "
        "last_seen_at) VALUES (:a, '999', 'R-1', 'new', now()), "
        "(:a, '999', 'R-0', 'new', now() - interval '2 days')"), {"a": account})
    return int(account)


def test_unroutable_reservations_degrade_health(client, db_session: Session) -> None:  # type: ignore[no-untyped-def]
    healthy = make_hotel(db_session, days=1, channels=(ChannelName.AGODA,))
    _log(db_session, healthy.channels[ChannelName.AGODA], "success", 1)
    assert client.get("/api/health").json()["status"] == "ok"
    _unroutable(db_session)
    public = client.get("/api/health").json()
    assert public["status"] == "degraded"
    assert public["channels"]["unroutable"] == 1  # the one seen in the last 24 h
    assert public["channels"]["stale"] == 0


def test_status_cli(committed, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from innsync.cli import app
    from innsync.settings import get_settings

    monkeypatch.setenv("INNSYNC_STALE_AFTER_MINUTES", "30")
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    try:
        ids = _world(committed)
        committed.commit()
        runner = CliRunner()
        out = runner.invoke(app, ["status"])
        assert out.exit_code == 0, out.output
        assert out.output.count("STALE") == 2
        assert "booking.com: HTTP 503" not in out.output  # only the last error is shown
        assert "the process that ran it ended" in out.output
        assert runner.invoke(app, ["status", "--fail-on-stale"]).exit_code == 3
        fresh = runner.invoke(app, ["status", "--channel", str(ids["fresh"]), "--fail-on-stale"])
        assert fresh.exit_code == 0 and "STALE" not in fresh.output
        assert "UNROUTABLE" not in out.output
        account = _unroutable(committed)
        committed.commit()
        out = runner.invoke(app, ["status"])
        assert "UNROUTABLE" in out.output and "1 reservations" in out.output
        assert f"/api/partner-accounts/{account}/unroutable" in out.output
    finally:
        get_settings.cache_clear()
