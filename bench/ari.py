"""Benchmark: a full 365-day ARI sync to all four partners, then a no-change and a one-day re-sync.

    .venv/bin/python bench/ari.py [--room-types 20] [--days 365] [--quick]

What runs:
- Four simulators (Booking.com, Agoda, Expedia, Airbnb), each served over loopback HTTP by
  `running_server` in a thread of this process. Requests per partner are counted from the
  simulator's own `app.state.sim.calls` (token/OAuth exchanges left out: they are not ARI);
  request and response body bytes by a tiny ASGI middleware (bench.support.Meter) wrapped
  around each simulator app, same exclusion.
- The simulators only accept the catalog's room codes, so the benchmark adds room types 5..N
  to channels.simulators.catalog.CATALOG (in this process, before the apps are built).
- A scratch database (`innsync_bench_ari_<pid>`, migrated with db.migrate.upgrade) holds one hotel:
  N room types x BAR/NRF/BB (Airbnb maps BAR only: one price per listing), 10 units each, and
  a realistic calendar: weekend and seasonal prices, summer weekend and Christmas min-LOS,
  NRF closed for two weeks, one room type on stop-sell for 11 days (works), sold counts
  varying by weekday and lead time, a few sold-out nights.
- `full_ari_sync(property_id, horizon_days)` runs in-process through flows.runner.run_flow
  against a real Prefect server (PREFECT_API_URL if set, else `prefect server start` on a
  scratch PostgreSQL database; `--prefect harness` for prefect_test_harness). The partner
  rate limits are created with a budget that never throttles (the production ones,
  deployments/limits.py, allow 1-2 requests/s per partner and would dominate the seconds).
- Three runs: full sync; the same again with nothing changed (target: 0 requests); after one
  booking-like change (one room type, one night, sold + 1): target 1 request per partner.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/ itself must not be on the path: a bench/queue.py would shadow the stdlib `queue`.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bench.support import (  # noqa: E402
    Meter,
    create_scratch_db,
    drop_db,
    isolate_settings,
    make_hotel,
    prefect_server,
)

DB_NAME = f"innsync_bench_ari_{os.getpid()}"
RATES = ["BAR", "NRF", "BB"]
BASE_CODES = ["STD", "DLX", "STE", "FAM"]
ONE_DAY_MAX_BYTES = 4_000  # "small": one request well under a few KB


def room_codes(n: int) -> list[str]:
    """PMS room type codes: the catalog's four, then RT05..RTnn."""
    return (BASE_CODES + [f"RT{i:02d}" for i in range(5, n + 1)])[:n]


def extend_catalog(n: int) -> None:
    """Teach every simulator (and the mappings) partner codes for room types 5..n."""
    from channels.base import ChannelName
    from channels.simulators.catalog import CATALOG

    patterns = {
        ChannelName.BOOKING_COM: "1234567{:02d}",
        ChannelName.EXPEDIA: "2001{:02d}",
        ChannelName.AGODA: "33{:02d}",
        ChannelName.AIRBNB: "510000{:02d}",
    }
    for name, pattern in patterns.items():
        for i in range(5, n + 1):
            CATALOG[name]["room_types"].setdefault(f"RT{i:02d}", pattern.format(i))


CALENDAR_SQL = [
    # Prices: per room type base, plan factor, Fri/Sat +20 %, summer +30 %, Christmas +40 %.
    """
    UPDATE rates r SET amount = round(
        (80 + 15 * (rt.id % 20))
        * CASE rp.code WHEN 'NRF' THEN 0.90 WHEN 'BB' THEN 1.15 ELSE 1.00 END
        * CASE WHEN extract(isodow FROM r.date) IN (5, 6) THEN 1.20 ELSE 1.00 END
        * CASE WHEN extract(month FROM r.date) IN (6, 7, 8) THEN 1.30
               WHEN (extract(month FROM r.date) = 12 AND extract(day FROM r.date) >= 20)
                 OR (extract(month FROM r.date) = 1 AND extract(day FROM r.date) <= 5) THEN 1.40
               ELSE 1.00 END, 2),
        min_los = CASE
            WHEN (extract(month FROM r.date) = 12 AND extract(day FROM r.date) >= 20)
              OR (extract(month FROM r.date) = 1 AND extract(day FROM r.date) <= 5) THEN 3
            WHEN extract(month FROM r.date) IN (6, 7, 8) AND extract(isodow FROM r.date) IN (5, 6)
              THEN 2
            ELSE NULL END,
        closed = (rp.code = 'NRF' AND r.date BETWEEN CAST(:s AS date) + 60 AND CAST(:s AS date) + 73)
    FROM rate_plans rp JOIN room_types rt ON rt.id = rp.room_type_id
    WHERE rp.id = r.rate_plan_id AND rp.property_id = :p
    """,
    # Sold counts: busier at weekends and close in; a few sold-out weekend nights; one room
    # type closed for works for 11 days.
    """
    UPDATE inventory i SET
        sold = LEAST(i.total,
            CASE WHEN i.date < CAST(:s AS date) + 30 THEN 5 WHEN i.date < CAST(:s AS date) + 90
                 THEN 3 ELSE 1 END
            + CASE WHEN extract(isodow FROM i.date) IN (5, 6) THEN 2 ELSE 0 END
            + CASE WHEN rt.id % 5 = 0 AND extract(isodow FROM i.date) = 6
                    AND i.date < CAST(:s AS date) + 120 THEN 10 ELSE 0 END),
        stop_sell = (rt.code = 'RT05' AND i.date BETWEEN CAST(:s AS date) + 100
                     AND CAST(:s AS date) + 110)
    FROM room_types rt WHERE rt.id = i.room_type_id AND rt.property_id = :p
    """,
]


def _ari_requests(app: Any) -> int:
    calls = app.state.sim.calls
    return sum(v for k, v in calls.items() if "token" not in k.lower() and "oauth" not in k.lower())


def _ari_bytes(meter: Meter) -> tuple[int, int]:
    keep = [k for k in meter.calls if "token" not in k.lower() and "oauth" not in k.lower()]
    return sum(meter.bytes_in[k] for k in keep), sum(meter.bytes_out[k] for k in keep)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--room-types", type=int, default=20)
    ap.add_argument("--days", type=int, default=365, help="horizon of the full sync")
    ap.add_argument("--prefect", choices=["pg", "harness"], default="pg",
                    help="Prefect server when PREFECT_API_URL is unset (see module docstring)")
    ap.add_argument("--quick", action="store_true", help="4 room types, 90 days")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args(argv)
    if args.quick:
        args.room_types, args.days = min(args.room_types, 4), min(args.days, 90)

    isolate_settings()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    extend_catalog(args.room_types)

    from sqlalchemy import text

    from channels.base import ChannelName
    from channels.simulators.server import ORDER, build_app, running_server
    from db.engine import session_scope
    from deployments.limits import PartnerLimit, ensure_limits
    from flows.channel_sync import full_ari_sync
    from flows.runner import run_flow
    from tasks.results import AriOutcome

    create_scratch_db(DB_NAME)
    apps = {name: build_app(name, bookings=0, seed=3) for name in ORDER}
    meters = {name: Meter(app) for name, app in apps.items()}
    rows: list[tuple[str, str, str, int, int, int, float, str, str]] = []
    with ExitStack() as stack:
        urls = {str(n): stack.enter_context(running_server(meters[n])) for n in ORDER}
        start = date.today()
        hotel = make_hotel(room_codes(args.room_types), RATES, units=10, start=start,
                           days=args.days + 31, endpoints=urls)
        with session_scope() as session:
            for sql in CALENDAR_SQL:
                session.execute(text(sql), {"p": hotel.property_id, "s": start})
        prefect_desc = stack.enter_context(prefect_server(args.prefect))
        ensure_limits(tuple(PartnerLimit(ChannelName(n), limit=10_000,
                                         slot_decay_per_second=10_000.0) for n in ORDER))

        def run(label: str, target: str, check: Any) -> None:
            before = {n: _ari_requests(apps[n]) for n in ORDER}
            for meter in meters.values():
                meter.reset()
            t0 = time.perf_counter()
            outcome = run_flow(full_ari_sync, property_id=hotel.property_id,
                               horizon_days=args.days)
            seconds = time.perf_counter() - t0
            result = outcome.value if isinstance(outcome.value, AriOutcome) else AriOutcome()
            if not outcome.ok or result.records_failed:
                print(f"{label}: flow not clean: {outcome.error} {result.errors[:5]}")
            updates = {c.channel.split(" ")[0]: c.processed for c in result.channels}
            for n in ORDER:
                sent = _ari_requests(apps[n]) - before[n]
                up, down = _ari_bytes(meters[n])
                ok = check(sent, up)
                rows.append((label, str(n), target, updates.get(str(n), 0), sent, up, seconds,
                             "PASS" if ok else "MISS", f"{down:,}"))

        run("full 365-day sync" if args.days == 365 else f"full {args.days}-day sync",
            "(baseline)", lambda sent, up: sent > 0)
        run("no-change re-sync", "0 requests", lambda sent, up: sent == 0)
        day = start + timedelta(days=10)
        with session_scope() as session:
            session.execute(
                text("UPDATE inventory SET sold = sold + 1 WHERE room_type_id = :rt AND date = :d"),
                {"rt": hotel.room_types["STD"], "d": day},
            )
        run("one-day change (STD, +1 sold)", f"1 request < {ONE_DAY_MAX_BYTES // 1000} KB",
            lambda sent, up: sent == 1 and up < ONE_DAY_MAX_BYTES)
        stats = {n: len(apps[n].state.sim.ari.log) for n in ORDER}
    drop_db(DB_NAME) if not args.keep else None

    print()
    print(f"ARI: {args.room_types} room types x {len(RATES)} rate plans (Airbnb: BAR only), "
          f"{args.days} days, 4 partners over loopback HTTP; Prefect: {prefect_desc}")
    print(f"{'run':<30} {'partner':<12} {'target':<16} {'updates':>8} {'requests':>9} "
          f"{'req bytes':>11} {'resp bytes':>11} {'flow s':>7}  verdict")
    for i, (label, partner, target, updates, sent, up, seconds, verdict, down) in enumerate(rows):
        print(f"{label:<30} {partner:<12} {target:<16} {updates:>8,} {sent:>9,} {up:>11,} "
              f"{down:>11} {seconds:>7.1f}  {verdict}")
        if i % len(ORDER) == len(ORDER) - 1:
            group = rows[i + 1 - len(ORDER): i + 1]
            print(f"{'':<30} {'all':<12} {'':<16} {sum(r[3] for r in group):>8,} "
                  f"{sum(r[4] for r in group):>9,} {sum(r[5] for r in group):>11,}")
    print("(updates = compressed ARI updates the flow counted per channel; flow s = the whole "
          "flow run, all partners in parallel)")
    print("accepted update log entries per simulator: "
          + ", ".join(f"{n}={c:,}" for n, c in stats.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
