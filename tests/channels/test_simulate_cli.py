"""`innsync simulate --id-offset`: a restarted simulator never re-issues booking ids."""

from __future__ import annotations

from channels.simulators import server


def test_id_offset_shifts_every_generated_id(monkeypatch):
    served: list = []

    async def fake_serve(apps, host):
        served.extend(apps)

    monkeypatch.setattr(server, "_serve_all", fake_serve)
    server.simulate(channel="booking.com", port=9100, host="127.0.0.1", bookings=5, seed=1,
                    error_rate=0, rate_limit_rate=0, retry_after=7, latency_ms=0,
                    timeout_rate=0, timeout_seconds=30, malformed_rate=0,
                    partial_failure_rate=0, duplicate_rate=0, id_offset=0, hotels=1)
    server.simulate(channel="booking.com", port=9100, host="127.0.0.1", bookings=5, seed=1,
                    error_rate=0, rate_limit_rate=0, retry_after=7, latency_ms=0,
                    timeout_rate=0, timeout_seconds=30, malformed_rate=0,
                    partial_failure_rate=0, duplicate_rate=0, id_offset=10**9, hotels=1)
    first, second = (
        {m.booking.booking_id for m in app.state.sim.queue.messages} for _, app, _ in served
    )
    assert len(first) == len(second) == 5
    assert not first & second


def test_token_options_compress_token_time(monkeypatch):
    served: list = []

    async def fake_serve(apps, host):
        served.extend(apps)

    monkeypatch.setattr(server, "_serve_all", fake_serve)
    server.simulate(channel="all", port=9100, host="127.0.0.1", bookings=0, seed=1,
                    error_rate=0, rate_limit_rate=0, retry_after=7, latency_ms=0,
                    timeout_rate=0, timeout_seconds=30, malformed_rate=0,
                    partial_failure_rate=0, duplicate_rate=0, id_offset=0, hotels=1,
                    token_ttl=6.0, token_limit=3, token_window=60.0)
    settings = {name: app.state.sim.tokens.settings for name, app, _ in served}
    assert {s.token_ttl_seconds for s in settings.values()} == {6.0}
    assert {s.exchange_limit for s in settings.values()} == {3}
    assert {s.window_seconds for s in settings.values()} == {60.0}
    booking = next(app for name, app, _ in served if name == "booking.com").state.sim.tokens
    assert [booking.issue() is not None for _ in range(4)] == [True, True, True, False]
    assert booking.exchanges == 3 and booking.refused == 1


def test_hotels_gives_each_hotel_of_the_account_its_bookings_and_the_offset(monkeypatch):
    served: list = []

    async def fake_serve(apps, host):
        served.extend(apps)

    monkeypatch.setattr(server, "_serve_all", fake_serve)
    args = dict(port=9100, host="127.0.0.1", bookings=4, seed=1, error_rate=0,
                rate_limit_rate=0, retry_after=7, latency_ms=0, timeout_rate=0,
                timeout_seconds=30, malformed_rate=0, partial_failure_rate=0,
                duplicate_rate=0, id_offset=10**9)
    server.simulate(channel="all", hotels=3, **args)
    apps = {name: app for name, app, _ in served}
    account = apps["booking.com"].state.sim
    assert len(account.hotels) == 3
    ids = [m.booking.booking_id for h in account.hotels.values() for m in h.queue.messages]
    assert {len({m.booking.booking_id for m in h.queue.messages})
            for h in account.hotels.values()} == {4}
    assert len(set(ids)) == 12 and all(int(i) > 10**9 for i in ids)
    assert {len(app.state.sim.hotels) for app in apps.values()} == {3}
