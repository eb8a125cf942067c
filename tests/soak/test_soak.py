"""The soak, compressed: the whole stack with partner faults, its serve process and API killed
midway, tokens living one minute instead of an hour. Nothing may be lost, duplicated or left
running, and each partner account exchanges one token per token lifetime (bench/soak.py runs
the same for an hour)."""

from __future__ import annotations

import math

import pytest

from bench.soak import run_soak

# Three minutes of load, up to 150 s of draining, and the stack's start and stop.
pytestmark = [pytest.mark.slow, pytest.mark.prefect_server, pytest.mark.timeout(720)]

TOKEN_TTL = 60.0


def test_soak_with_kills_loses_nothing_and_leaves_nothing_running(tmp_path, capsys):
    report = run_soak(
        3.0, kill=True, bookings_every=15.0, drain_seconds=150.0, workdir=tmp_path,
        token_settings={"token_ttl_seconds": TOKEN_TTL}, stuck_after_s=400.0,
    )
    with capsys.disabled():
        print("\n" + report.render())
    assert len(report.kills) == 2, report.kills  # the serve process and the API were killed
    assert len(report.restarts_seen) >= 2, report.restarts_seen  # ... and started again
    by_name = {c.channel: c for c in report.channels}
    assert set(by_name) == {"booking.com", "agoda", "expedia", "airbnb"}
    for c in report.channels:
        assert c.created > 0, c  # bookings kept arriving at every partner
        assert c.lost == 0, c
        assert c.duplicated == 0, c
        assert c.pulls_ok > 0, c
        # Each booking's way from the partner to innsync was timed (figures, not a bound).
        assert c.store_max_s is not None and c.store_p50_s is not None, c
    # Token partners: one exchange per token lifetime (+1 for the first, +1 for a refresh that
    # straddles the end), never one per run.
    bound = math.ceil(report.elapsed_s / TOKEN_TTL) + 2
    for name in ("booking.com", "airbnb"):
        assert 1 <= by_name[name].token_exchanges <= bound, (by_name[name], bound)
    assert report.stuck_flow_runs == 0
    assert report.stuck_sync_logs == 0
    assert report.stuck_backups == 0
