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
                    partial_failure_rate=0, duplicate_rate=0, id_offset=0)
    server.simulate(channel="booking.com", port=9100, host="127.0.0.1", bookings=5, seed=1,
                    error_rate=0, rate_limit_rate=0, retry_after=7, latency_ms=0,
                    timeout_rate=0, timeout_seconds=30, malformed_rate=0,
                    partial_failure_rate=0, duplicate_rate=0, id_offset=10**9)
    first, second = (
        {m.booking.booking_id for m in app.state.sim.queue.messages} for _, app, _ in served
    )
    assert len(first) == len(second) == 5
    assert not first & second
