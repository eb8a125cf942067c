"""Benchmark: latency and throughput of the API's list endpoints over 1,000,000 sync-log rows.

    .venv/bin/python bench/api_lists.py [--rows 1000000] [--requests 300] [--keep]

A scratch database gets `--rows` channel_sync_logs rows (server-side generate_series, 4
channels, a year of history) plus 50,000 channel bookings; the API runs as a real uvicorn
process (`innsync api`); one client sends sequential requests over loopback. Beside each
endpoint, in the same run: the bare SQL of the same page through psycopg (the anchor: what
the database alone costs) and `GET /api/health` (what HTTP + FastAPI alone cost). Prints
p50/p99 latency and requests/s; target: p99 under 25 ms for every list endpoint.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The project root first on sys.path (bench/ itself is not a package root).
sys.path = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.support import create_scratch_db, db_url, drop_db, isolate_settings  # noqa: E402
from channels.simulators.server import free_port  # noqa: E402

TARGET_P99_MS = 25.0
ENDPOINTS = [
    (
        "sync logs, first page",
        "/api/channel-sync-logs?limit=50",
        "SELECT * FROM channel_sync_logs ORDER BY started_at DESC, id DESC LIMIT 50",
    ),
    (
        "sync logs, one channel",
        "/api/channel-sync-logs?channelId=2&limit=50",
        "SELECT * FROM channel_sync_logs WHERE channel_id = 2 "
        "ORDER BY started_at DESC, id DESC LIMIT 50",
    ),
    (
        "sync logs, failed only",
        "/api/channel-sync-logs?status=failed&limit=50",
        "SELECT * FROM channel_sync_logs WHERE status = 'failed' "
        "ORDER BY started_at DESC, id DESC LIMIT 50",
    ),
    (
        "sync logs, one month",
        "/api/channel-sync-logs?from={month_start}&to={month_end}&limit=50",
        "SELECT * FROM channel_sync_logs WHERE started_at >= '{month_start}' "
        "AND started_at < '{month_end}'::date + 1 ORDER BY started_at DESC, id DESC LIMIT 50",
    ),
    (
        "sync logs, page 100",
        "/api/channel-sync-logs?limit=50&offset=5000",
        "SELECT * FROM channel_sync_logs ORDER BY started_at DESC, id DESC LIMIT 50 OFFSET 5000",
    ),
    (
        "channel bookings",
        "/api/channel-bookings?limit=50",
        "SELECT * FROM channel_bookings ORDER BY id DESC LIMIT 50",
    ),
]


def fill(url: str, rows: int) -> None:
    """Channels, `rows` sync logs over a year, 50k channel bookings: all server-side."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("""
            INSERT INTO channels (name, channel_name, config_encrypted, config_public)
            SELECT 'bench-' || n, n, 'v1:none', '{}'::jsonb
            FROM unnest(ARRAY['booking.com','agoda','expedia','airbnb']) AS n
        """)
        conn.execute(
            """
            INSERT INTO channel_sync_logs (channel_id, operation, status, records_processed,
                records_success, records_failed, error_messages, details, started_at,
                finished_at, flow_run_id)
            SELECT 1 + g %% 4,
                   (ARRAY['sync_bookings','push_availability','push_rates','full_ari_sync'])[1 + g %% 4],
                   CASE WHEN g %% 50 = 0 THEN 'failed' WHEN g %% 17 = 0 THEN 'partial'
                        ELSE 'success' END,
                   g %% 200, g %% 200 - g %% 3, g %% 3,
                   CASE WHEN g %% 50 = 0 THEN '["HTTP 503: Service Unavailable"]'::jsonb
                        ELSE '[]'::jsonb END,
                   jsonb_build_object('pages', g %% 7),
                   now() - (g * interval '31 seconds'),
                   now() - (g * interval '31 seconds') + interval '2 seconds',
                   gen_random_uuid()
            FROM generate_series(1, %s) AS g
        """,
            (rows,),
        )
        conn.execute("""
            INSERT INTO channel_bookings (channel_id, external_booking_id, revision, status,
                raw_payload, sync_status)
            SELECT 1 + g % 4, 'B' || g, '0001', 'Book', jsonb_build_object('id', g), 'synced'
            FROM generate_series(1, 50000) AS g
        """)
        conn.commit()
    # What autovacuum does to a live table (it is off on some servers, e.g. this one):
    # without a visibility map, counting via an index must visit every heap page.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE channel_sync_logs")
        conn.execute("VACUUM ANALYZE channel_bookings")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure_http(client, path: str, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    for _ in range(5):  # warm-up: connection, plan cache
        client.get(path).raise_for_status()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        client.get(path).raise_for_status()
        out.append((time.perf_counter() - t) * 1000)
    return out


def measure_sql(url: str, sql: str, n: int) -> list[float]:
    import psycopg

    out = []
    with psycopg.connect(url) as conn:
        for _ in range(5):
            conn.execute(sql).fetchall()
        for _ in range(n):
            t = time.perf_counter()
            conn.execute(sql).fetchall()
            out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    isolate_settings()
    name = f"innsync_bench_api_{os.getpid()}"
    sa_url = create_scratch_db(name)
    url = db_url(name)
    t = time.perf_counter()
    fill(url, args.rows)
    print(
        f"filled {args.rows:,} sync logs + 50,000 channel bookings in "
        f"{time.perf_counter() - t:.1f} s"
    )

    from api.auth import create_api_key
    from db.engine import session_scope

    with session_scope() as session:
        _, key = create_api_key(session, "bench", "viewer")
    port = free_port()
    env = {**os.environ, "INNSYNC_DATABASE_URL": sa_url, "INNSYNC_LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable, "-m", "innsync.cli", "api", "--port", str(port), "--no-migrate"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    import httpx

    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the API did not start")
            time.sleep(0.2)
        from datetime import date, timedelta

        month_end = date.today() - timedelta(days=30)
        fmt = {
            "month_start": (month_end - timedelta(days=30)).isoformat(),
            "month_end": month_end.isoformat(),
        }
        rows = []
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
            health = measure_http(client, "/api/health", args.requests)
            for label, path, sql in ENDPOINTS:
                http_ms = measure_http(client, path.format(**fmt), args.requests)
                sql_ms = measure_sql(url, sql.format(**fmt), args.requests)
                rows.append((label, http_ms, sql_ms))
    finally:
        server.terminate()
        server.wait(10)
        if not args.keep:
            drop_db(name)

    h50, h99 = percentile(health, 0.5), percentile(health, 0.99)
    print(
        f"\n{args.rows:,} sync-log rows; {args.requests} sequential requests per endpoint; "
        f"HTTP baseline GET /api/health: p50 {h50:.1f} ms, p99 {h99:.1f} ms\n"
    )
    print(
        f"{'endpoint':28} {'p50 ms':>7} {'p99 ms':>7} {'req/s':>7} {'bare SQL p50':>13} "
        f"{'ratio p50':>9}  target p99 < {TARGET_P99_MS:.0f} ms"
    )
    misses = 0
    for label, http_ms, sql_ms in rows:
        p50, p99 = percentile(http_ms, 0.5), percentile(http_ms, 0.99)
        s50 = percentile(sql_ms, 0.5)
        rps = 1000 / statistics.mean(http_ms)
        ok = p99 < TARGET_P99_MS
        misses += not ok
        print(
            f"{label:28} {p50:7.1f} {p99:7.1f} {rps:7.0f} {s50:13.2f} {p50 / s50:9.1f}  "
            f"{'PASS' if ok else 'MISS'}"
        )
    print(
        "\nratio p50 = API p50 / bare SQL p50 of the same page (the API also counts the "
        "total, authenticates and serialises)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
