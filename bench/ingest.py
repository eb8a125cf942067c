"""Benchmark: bookings/s through the real sync_bookings flow, beside a server-side bulk-upsert ceiling.

    .venv/bin/python bench/ingest.py [--path api|flow] [--bookings 10000] [--ceiling-repeats 3]

`--path api` (the default; issue 14: the path users take): `innsync up` on a fresh home
(embedded PostgreSQL, its own Prefect server, the deployments' serve process, the partner
simulators, one demo hotel), the scheduled booking pull paused so it does not race the call.
The demo's own bookings are pulled first (not timed); then `--bookings` new bookings (with
their later modifications and cancellations) are made at the Booking.com simulator
(`POST /_sim/bookings`, not timed) and the clock runs from `POST
/api/channels/{id}/sync-bookings?wait=true` until its answer (a 202 past the API's wait bound
is followed to the run's end through `GET /api/flow-runs/{id}`), with the partner rate limit
innsync sets for one hotel. The ceiling is then measured on the same database and rows (as
below) and the ratio printed; every made booking must be stored and acknowledged.

`--path flow` (a breakdown, not the user's path):
- The Booking.com simulator (channels.simulators.booking_com) is served over loopback HTTP by
  `running_server` in a child process, so its XML rendering does not compete with the flow
  for the GIL (a real partner is another machine). It generates `--bookings` bookings (plus
  their modification/cancellation messages) before the clock starts: generation is excluded.
- A scratch database (`innsync_bench_ingest_<pid>`, migrated with db.migrate.upgrade) holds a hotel
  with STD/DLX/STE/FAM x BAR/NRF/BB, 400 days of inventory with enough units to never
  oversell (`--units N`: a small hotel, most bookings flagged overbooked, as on the demo
  hotel of `--path api`), and a Booking.com channel pointed at the simulator.
- SQL breakdown: every statement's round trip, summed by its first words (SQLAlchemy
  cursor events on innsync's engine).
- `sync_bookings` runs in-process (flows.runner.run_flow) against a real Prefect server:
  PREFECT_API_URL when set; else by default `prefect server start` on a scratch PostgreSQL
  database (as `innsync up` runs it; startup not timed); `--prefect harness` uses
  `prefect_test_harness()` instead, whose SQLite database stalls under this load (a 2,000
  booking run took 76 s there vs 11 s on PostgreSQL, mostly rate_limit() calls waiting).
  The Booking.com partner rate limit is created (deployments.limits.ensure_limits) with a
  budget that never throttles (10,000 slots, 10,000/s decay), so rate_limit() does its real
  server round trip; with the production budget (10 burst, 2/s) the flow could not exceed
  ~1 page (50 bookings) per second. Prefect logs below WARNING are not printed.
- Page size: Booking.com answers every pending reservation at once, and so does the
  simulator by default; `--page-size N` caps its answers (paging experiments).
- Ceiling, same run: the rows the flow stored (guests, reservations, channel_bookings) are
  read back, the three tables emptied, and the same rows upserted straight from Python bytes:
  binary COPY into temp tables + INSERT ... ON CONFLICT DO UPDATE, one pass inserting every
  booking at its first revision and one pass updating the bookings that later changed (as
  the flow does). No HTTP, no parsing, no planning, no inventory. Best of --ceiling-repeats.
- Breakdown: the flow's building blocks are wrapped with timers (exclusive wall time, the flow
  is sequential), so the table says where each second went; "Prefect engine" is the rest.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import multiprocessing as mp
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/ itself must not be on the path: a bench/queue.py would shadow the stdlib `queue`.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bench.support import (  # noqa: E402
    Meter,
    create_scratch_db,
    db_url,
    drop_db,
    isolate_settings,
    make_hotel,
    prefect_server,
)

TARGET = 20_000  # bookings/s end to end, in-process flow
TARGET_API = 2_000  # bookings/s through the API (issue 14)
DB_NAME = f"innsync_bench_ingest_{os.getpid()}"
ROOMS = ["STD", "DLX", "STE", "FAM"]
RATES = ["BAR", "NRF", "BB"]


# ---------------------------------------------------------------- simulator (child process)


def serve_simulator(conn: Connection, bookings: int, seed: int, page_size: int) -> None:
    """Child process: generate the bookings, serve the simulator, report its counters on request."""
    import channels.simulators.booking_com as sim_module
    from channels.base import ChannelName
    from channels.simulators.server import build_app, running_server

    sim_module.PAGE_SIZE = page_size or None
    start = time.perf_counter()
    app = build_app(ChannelName.BOOKING_COM, bookings=bookings, seed=seed)
    generate_s = time.perf_counter() - start
    state = app.state.sim
    meter = Meter(app)
    with running_server(meter) as url:
        conn.send({
            "url": url,
            "generate_s": generate_s,
            "messages": len(state.queue.messages),
            "bookings": len({m.booking.booking_id for m in state.queue.messages}),
        })
        conn.recv()  # the parent asks for the counters once the flow is done
        conn.send({
            "queue": state.queue.stats(),
            "calls": dict(meter.calls),
            "seconds": dict(meter.seconds),
            "bytes_in": dict(meter.bytes_in),
            "bytes_out": dict(meter.bytes_out),
        })
        conn.recv()


# ---------------------------------------------------------------- timing the flow's parts


class Profiler:
    """Exclusive wall time per category for a sequential call chain (async or sync callables)."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._children: list[float] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def _enter(self) -> float:
        self._children.append(0.0)
        return time.perf_counter()

    def _exit(self, category: str, start: float) -> None:
        elapsed = time.perf_counter() - start
        children = self._children.pop()
        self.seconds[category] += elapsed - children
        self.calls[category] += 1
        if self._children:
            self._children[-1] += elapsed

    def wrap(self, owner: Any, attr: str, category: str) -> None:
        """Replace owner.attr by a timed version (restored by restore())."""
        original = getattr(owner, attr)
        self._undo.append((owner, attr, original))
        timed: Callable[..., Any]
        if inspect.iscoroutinefunction(original):

            @functools.wraps(original)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = self._enter()
                try:
                    return await original(*args, **kwargs)
                finally:
                    self._exit(category, start)

            timed = timed_async
        else:

            @functools.wraps(original)
            def timed_sync(*args: Any, **kwargs: Any) -> Any:
                start = self._enter()
                try:
                    return original(*args, **kwargs)
                finally:
                    self._exit(category, start)

            timed = timed_sync
        setattr(owner, attr, timed)

    def wrap_task_call(self, module: Any, name: str, category: str) -> None:
        """Time a Prefect task where the flow calls it (task run creation and states included)."""
        task_obj = getattr(module, name)
        self._undo.append((module, name, task_obj))

        async def call(*args: Any, **kwargs: Any) -> Any:
            start = self._enter()
            try:
                return await task_obj(*args, **kwargs)
            finally:
                self._exit(category, start)

        setattr(module, name, call)

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo.clear()


class StatementTimer:
    """Wall time of every SQL statement innsync's engine sends, by the statement's first
    words (SQLAlchemy cursor events): where the ingest SQL's seconds go."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()

    @staticmethod
    def label(statement: str) -> str:
        words = " ".join(statement.split())
        if words.startswith("WITH u AS MATERIALIZED"):
            return "channel_bookings + rooms upsert (one statement)"
        return words[:90]

    def attach(self, engine: Any) -> None:
        from sqlalchemy import event

        def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            conn.info.setdefault("bench_started", []).append(time.perf_counter())

        def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            started = conn.info["bench_started"].pop()
            key = self.label(statement)
            self.seconds[key] += time.perf_counter() - started
            self.calls[key] += 1
            self.rows[key] += max(cursor.rowcount, 0)

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)

    def print(self, top: int = 14) -> None:
        total = sum(self.seconds.values())
        print(f"SQL statements (wall time in the database round trip, {total:.1f} s in all)")
        print(f"{'statement':<92} {'seconds':>8} {'calls':>6} {'rows':>8}")
        for key, sec in sorted(self.seconds.items(), key=lambda kv: -kv[1])[:top]:
            print(f"{key:<92} {sec:>8.2f} {self.calls[key]:>6,} {self.rows[key]:>8,}")


# Categories, in the order the breakdown prints them.
HTTP_GET = "partner GETs (HTTP, simulator render incl.)"
PARSE = "parse + validate XML (adapter)"
INGEST = "ingest SQL (plan + set-based statements)"
COMMIT = "commit + acked-revision bookkeeping SQL"
ACK = "ack POSTs (HTTP, simulator incl.)"
RATE_LIMIT = "Prefect rate-limit slots (fetch, acks)"
LOOKUPS = "channel_info/adapter_for lookups (3 per page)"
PROGRESS = "Prefect progress artifact (1 per page)"
TASK = "Prefect task run overhead (per page)"
CLOSE = "availability push after ingest (ARI task)"
ENGINE = "Prefect flow engine, sync log, loop (rest)"


def instrument(profiler: Profiler) -> None:
    """Wrap the flow's building blocks (module attributes, so the flow picks them up)."""
    import channels.booking_com as bcom
    import flows.channel_sync as flows_mod
    import tasks.bookings as tasks_mod

    profiler.wrap(bcom.BookingComAdapter, "fetch_bookings", HTTP_GET)
    profiler.wrap(bcom, "parse_root", PARSE)
    profiler.wrap(bcom, "parse_xml", PARSE)
    profiler.wrap(bcom.BookingComAdapter, "acknowledge", ACK)
    profiler.wrap(tasks_mod, "ingest_page", INGEST)
    profiler.wrap(tasks_mod, "store_and_ack", COMMIT)
    profiler.wrap(tasks_mod, "take_partner_slot", RATE_LIMIT)
    profiler.wrap(tasks_mod, "channel_info", LOOKUPS)
    profiler.wrap(tasks_mod, "adapter_for", LOOKUPS)
    for name in ("aupdate_progress_artifact", "update_progress_artifact"):
        if hasattr(flows_mod, name):
            profiler.wrap(flows_mod, name, PROGRESS)
    profiler.wrap(flows_mod, "close_sold_nights", CLOSE)
    profiler.wrap_task_call(flows_mod, "pull_bookings_page", TASK)
    # The task body itself: what is left of the call-site time is Prefect's per-task cost.
    profiler.wrap(tasks_mod.pull_bookings_page, "fn", "task body (glue)")


# ---------------------------------------------------------------- ceiling


CONFLICT = {
    "guests": ("id", "first_name, last_name, email, phone, country"),
    "reservations": (
        "channel_id, external_ref, room_index",
        "room_type_id, rate_plan_id, check_in, check_out, adults, children, amount, status",
    ),
    "channel_bookings": (
        "channel_id, external_booking_id",
        "revision, status, raw_payload, sync_status, sync_error, reservation_id, acked_revisions, "
        "acknowledged_at, last_synced_at",
    ),
}
ORDER = ["guests", "reservations", "channel_bookings"]


def _columns(conn: Any, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def _copy_out(conn: Any, query: str) -> bytes:
    out = bytearray()
    with conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
        for chunk in copy:
            out += chunk
    return bytes(out)


def capture_rows(url: str, channel_id: int) -> tuple[dict[str, list[str]], list[dict[str, bytes]]]:
    """The flow's stored rows as binary COPY data: pass 1 (first revisions), pass 2 (changed)."""
    import psycopg

    with psycopg.connect(url) as conn:
        cols = {t: _columns(conn, t) for t in ORDER}
        changed = (
            "SELECT external_booking_id FROM channel_bookings WHERE channel_id = "
            f"{channel_id} AND cardinality(acked_revisions) > 1"
        )
        first_rev = [
            "acked_revisions[1] AS revision" if c == "revision" else c
            for c in cols["channel_bookings"]
        ]
        res_of = f"SELECT guest_id FROM reservations WHERE channel_id = {channel_id}"
        pass1 = {
            "guests": _copy_out(conn, f"SELECT {', '.join(cols['guests'])} FROM guests "
                                      f"WHERE id IN ({res_of})"),
            "reservations": _copy_out(conn, f"SELECT {', '.join(cols['reservations'])} FROM "
                                            f"reservations WHERE channel_id = {channel_id}"),
            "channel_bookings": _copy_out(conn, f"SELECT {', '.join(first_rev)} FROM "
                                                f"channel_bookings WHERE channel_id = {channel_id}"),
        }
        pass2 = {
            "guests": _copy_out(conn, f"SELECT {', '.join(cols['guests'])} FROM guests WHERE id IN "
                                      f"({res_of} AND external_ref IN ({changed}))"),
            "reservations": _copy_out(conn, f"SELECT {', '.join(cols['reservations'])} FROM "
                                            f"reservations WHERE channel_id = {channel_id} AND "
                                            f"external_ref IN ({changed})"),
            "channel_bookings": _copy_out(conn, f"SELECT {', '.join(cols['channel_bookings'])} "
                                                f"FROM channel_bookings WHERE channel_id = "
                                                f"{channel_id} AND external_booking_id IN ({changed})"),
        }
    return cols, [pass1, pass2]


def upsert_pass(
    conn: Any, cols: dict[str, list[str]], data: dict[str, bytes], split: dict[str, float]
) -> None:
    """One COPY-into-temp + INSERT ... ON CONFLICT DO UPDATE per table, one transaction."""
    with conn.transaction():
        for table in ORDER:
            start = time.perf_counter()
            stage = f"stage_{table}"
            names = ", ".join(cols[table])
            conn.execute(f"CREATE TEMP TABLE {stage} (LIKE {table}) ON COMMIT DROP")
            with conn.cursor().copy(f"COPY {stage} ({names}) FROM STDIN (FORMAT binary)") as copy:
                copy.write(data[table])
            key, updated = CONFLICT[table]
            sets = ", ".join(f"{c.strip()} = EXCLUDED.{c.strip()}" for c in updated.split(","))
            guard = (
                f" WHERE {table}.revision IS NULL OR {table}.revision < EXCLUDED.revision"
                if table == "channel_bookings"
                else ""
            )
            conn.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} "
                f"ON CONFLICT ({key}) DO UPDATE SET {sets}, updated_at = now(){guard}"
            )
            split[table] = split.get(table, 0.0) + time.perf_counter() - start


def measure_ceiling(
    url: str, cols: dict[str, list[str]], passes: list[dict[str, bytes]], repeats: int
) -> tuple[float, dict[str, float]]:
    """Best-of-`repeats` seconds to upsert both passes into emptied tables, and its per-table
    split (commit time not included in the split)."""
    import psycopg

    best, best_split = float("inf"), {}
    with psycopg.connect(url) as conn:
        conn.autocommit = True
        for _ in range(repeats):
            conn.execute("TRUNCATE channel_bookings, reservations, guests CASCADE")
            conn.execute("VACUUM ANALYZE guests, reservations, channel_bookings")
            split: dict[str, float] = {}
            start = time.perf_counter()
            for data in passes:
                upsert_pass(conn, cols, data, split)
            elapsed = time.perf_counter() - start
            if elapsed < best:
                best, best_split = elapsed, split
    return best, best_split


# ---------------------------------------------------------------- through the API


def _pause_scheduled_pull(prefect_api: str) -> None:
    """Pause the every-minute `sync-all-bookings` deployment: the timed call is the only pull."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def pause() -> None:
        async with get_client() as client:
            for dep in await client.read_deployments():
                if "sync_all_bookings" in (dep.entrypoint or ""):
                    await client.pause_deployment(dep.id)

    with temporary_settings({PREFECT_API_URL: prefect_api}):
        asyncio.run(pause())


def _wait_until_idle(prefect_api: str, timeout: float = 600) -> float:
    """Wait until no flow or task run is pending or running (the start's first cycle and
    its availability pushes, which would share the machine with the timed call); seconds
    waited."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    busy = [StateType.PENDING, StateType.RUNNING]

    async def active() -> int:
        async with get_client() as client:
            flows = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=busy))))
            tasks = await client.read_task_runs(task_run_filter=TaskRunFilter(
                state=TaskRunFilterState(type=TaskRunFilterStateType(any_=busy))))
            return len(flows) + len(tasks)

    start = time.monotonic()
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        while asyncio.run(active()) and time.monotonic() - start < timeout:
            time.sleep(2)
    return time.monotonic() - start


def _sync_via_api(api: str, key: str, channel_id: int, timeout: float) -> dict[str, Any]:
    """POST sync-bookings?wait=true; follow a 202 to the run's end. The run's answer."""
    import httpx

    headers = {"X-API-Key": key}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=api, headers=headers, timeout=timeout) as client:
        answer = client.post(f"/api/channels/{channel_id}/sync-bookings",
                             params={"wait": "true"}, json={})
        while answer.status_code == 202:
            if time.monotonic() > deadline:
                raise TimeoutError(f"sync-bookings not finished after {timeout:.0f} s")
            time.sleep(0.2)
            location = answer.headers["Location"]
            answer = client.get(location)
            if answer.status_code == 200 and not answer.json().get("finished"):
                answer.status_code, answer.headers["Location"] = 202, location  # running
        answer.raise_for_status()
        return dict(answer.json())


def run_api(args: argparse.Namespace) -> int:
    """`--path api`: see the module doc."""
    import json
    import tempfile

    import httpx
    import psycopg

    from bench.soak import Stack, clean_env
    from channels.simulators.server import free_port, free_port_run

    home = Path(tempfile.mkdtemp(prefix="innsync-ingest-")) / "home"
    stack = Stack(home, free_port(), free_port(), free_port_run(4),
                  clean_env(INNSYNC_HOME=str(home), INNSYNC_API_WAIT_SECONDS="600"),
                  up_args=["--demo-reservations", "20", "--demo-properties", "1"])
    print(f"starting innsync up in {home} ...", flush=True)
    stack.start(timeout=600)
    try:
        url = json.loads((home / "stack.json").read_text())["database_url"]
        libpq = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(libpq) as conn:
            row = conn.execute("SELECT id FROM channels WHERE channel_name = 'booking.com' "
                               "AND enabled ORDER BY id LIMIT 1").fetchone()
        assert row is not None, "the demo has no Booking.com channel"
        channel_id = int(row[0])
        _pause_scheduled_pull(stack.prefect_api)
        sim = stack.sims["booking.com"]
        _sync_via_api(stack.api, stack.admin_key, channel_id, 600)  # the demo's own, untimed
        waited = _wait_until_idle(stack.prefect_api)
        print(f"the start's runs ended after {waited:.0f} s more (not timed)", flush=True)
        before = httpx.get(f"{sim}/_sim/stats", timeout=30).json()
        print(f"making {args.bookings:,} bookings at the simulator (not timed) ...", flush=True)
        made = httpx.post(f"{sim}/_sim/bookings", params={"count": args.bookings},
                          timeout=600).json()
        start = time.perf_counter()
        answer = _sync_via_api(stack.api, stack.admin_key, channel_id, 3600)
        e2e = time.perf_counter() - start
        after = httpx.get(f"{sim}/_sim/stats", timeout=30).json()
        ids = sorted({b["booking_id"] for b in made["bookings"]})
        with psycopg.connect(libpq) as conn:
            stored, acked = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE acknowledged_at IS NOT NULL) "
                "FROM channel_bookings WHERE channel_id = %s AND external_booking_id = ANY(%s)",
                (channel_id, ids)).fetchone() or (0, 0)
        cols, passes = capture_rows(libpq, channel_id)
        ceiling_s, _ = measure_ceiling(libpq, cols, passes, args.ceiling_repeats)
        with psycopg.connect(libpq) as conn:
            rows = int((conn.execute("SELECT count(*) FROM channel_bookings WHERE "
                                     "channel_id = %s", (channel_id,)).fetchone() or (0,))[0])
    finally:
        stack.stop()
    calls = {k: after["calls"].get(k, 0) - before["calls"].get(k, 0) for k in after["calls"]}
    n = len(ids)
    api_rate, ceiling_rate = n / e2e, rows / ceiling_s
    print()
    print(f"ingest: {n:,} Booking.com bookings ({made['added']:,} messages made) through "
          f"POST /api/channels/{channel_id}/sync-bookings?wait=true, innsync up with its "
          "Prefect server, the partner rate limit for one hotel")
    print(f"  stored {stored:,}, acknowledged {acked:,}, simulator pending after: "
          f"{after['pending']}; run {answer.get('state')!r}, success {answer.get('success')}; "
          "partner requests: "
          + ", ".join(f"{k} {v}" for k, v in sorted(calls.items()) if v))
    print(f"{'path':<58} {'seconds':>8} {'bookings/s':>11}")
    print(f"{'API call end to end (Prefect run, HTTP, parse, SQL, ack)':<58} {e2e:>8.2f} "
          f"{api_rate:>11,.0f}")
    print(f"{'ceiling: COPY -> temp + INSERT ON CONFLICT, same rows':<58} {ceiling_s:>8.2f} "
          f"{ceiling_rate:>11,.0f}")
    ratio = api_rate / ceiling_rate
    print(f"{'ratio API / ceiling':<58} {ratio:>20.3f}")
    verdict = "PASS" if api_rate >= TARGET_API and ratio >= 0.01 else "MISS"
    print(f"{'target: >= 2,000 bookings/s (>= 0.01 of the ceiling)':<58} {verdict:>20}")
    if stored != n or acked != n:
        print(f"FAILED: {n - stored} bookings not stored, {n - acked} not acknowledged")
        return 1
    return 0


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--path", choices=["api", "flow"], default="api")
    ap.add_argument("--bookings", type=int, default=10_000)
    ap.add_argument("--page-size", type=int, default=0,
                    help="--path flow: at most this many reservations per simulator GET "
                         "(0: every pending one, as Booking.com answers)")
    ap.add_argument("--units", type=int, default=1_000_000,
                    help="--path flow: rooms per room type and night (the default never "
                         "oversells; a small hotel flags most bookings overbooked, as the "
                         "demo hotel of --path api does)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--ceiling-repeats", type=int, default=3)
    ap.add_argument("--prefect", choices=["pg", "harness"], default="pg",
                    help="Prefect server when PREFECT_API_URL is unset (see module docstring)")
    ap.add_argument("--quick", action="store_true", help="10,000 bookings, one ceiling run")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args(argv)
    if args.quick:
        args.bookings, args.ceiling_repeats = min(args.bookings, 10_000), 1
    if args.path == "api":
        return run_api(args)

    isolate_settings()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    sim = ctx.Process(target=serve_simulator, args=(child, args.bookings, args.seed, args.page_size),
                      daemon=True)
    sim.start()
    try:
        return run(args, parent)
    finally:
        if sim.is_alive():
            sim.terminate()
        sim.join(timeout=5)


def run(args: argparse.Namespace, sim: Connection) -> int:
    """Set up, run the flow, measure the ceiling, print the tables."""
    create_scratch_db(DB_NAME)
    print(f"waiting for the simulator to generate {args.bookings:,} bookings (not timed) ...",
          flush=True)
    info = sim.recv()
    units = args.units
    hotel = make_hotel(ROOMS, RATES, units=units, start=date.today() - timedelta(days=1), days=400,
                       endpoints={"booking.com": info["url"]})
    channel_id = hotel.channels["booking.com"]
    # Each flow iteration asks for one page of new and one of changed messages.
    max_pages = 4 * (info["messages"] // max(1, args.page_size or info["messages"]) + 10)

    from channels.base import ChannelName
    from deployments.limits import PartnerLimit, ensure_limits
    from flows.channel_sync import sync_bookings
    from flows.runner import run_flow
    from tasks.results import BookingsOutcome

    profiler = Profiler()
    with prefect_server(args.prefect) as prefect_desc:
        ensure_limits((PartnerLimit(ChannelName.BOOKING_COM, limit=10_000,
                                    slot_decay_per_second=10_000.0),))
        instrument(profiler)
        from db.engine import get_engine

        statements = StatementTimer()
        statements.attach(get_engine())
        try:
            start = time.perf_counter()
            outcome = run_flow(sync_bookings, channel_id=channel_id, max_pages=max_pages)
            e2e = time.perf_counter() - start
        finally:
            profiler.restore()
    sim.send("stats")
    stats = sim.recv()
    sim.send("stop")
    if not outcome.ok:
        print(f"flow failed: {outcome.error}")
        return 1
    result = outcome.value_as(BookingsOutcome)

    import psycopg

    libpq = db_url(DB_NAME)
    with psycopg.connect(libpq) as conn:
        stored, acked, reservations = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE acknowledged_at IS NOT NULL), "
            "(SELECT count(*) FROM reservations) FROM channel_bookings WHERE channel_id = %s",
            (channel_id,),
        ).fetchone() or (0, 0, 0)
        autovacuum = conn.execute("SHOW autovacuum").fetchone()
    if autovacuum and autovacuum[0] != "on":
        print("NOTE: autovacuum is off on this server: tables are never re-analysed while the "
              "flow fills them, so plans made on empty tables stay (slower as they grow).")
    cols, passes = capture_rows(libpq, channel_id)
    ceiling_s, ceiling_split = measure_ceiling(libpq, cols, passes, args.ceiling_repeats)
    payload_mb = sum(len(p["channel_bookings"]) for p in passes) / 1e6
    if not args.keep:
        drop_db(DB_NAME)

    n = info["bookings"]
    flow_rate, ceiling_rate = n / e2e, n / ceiling_s
    gets = sum(v for k, v in stats["calls"].items() if k.startswith("GET "))
    posts = sum(v for k, v in stats["calls"].items() if k.startswith("POST /hotels"))
    print()
    print(f"Booking.com simulator over loopback HTTP, page size "
          f"{args.page_size or 'all pending (the partner default)'}; "
          f"Prefect: {prefect_desc}")
    print(f"{n:,} bookings = {info['messages']:,} messages (new, modified, cancelled); "
          f"generated in {info['generate_s']:.1f} s before timing; {gets:,} GETs, {posts:,} ack POSTs")
    print(f"stored {stored:,} channel bookings ({acked:,} acknowledged), {reservations:,} "
          f"reservations; flow: new {result.new:,}, updated {result.updated:,}, duplicates "
          f"{result.duplicates:,}, errors {len(result.errors)}; simulator pending after run: "
          f"{stats['queue']['pending']}")
    print()
    print(f"{'path':<58} {'seconds':>8} {'bookings/s':>11}")
    print(f"{'sync_bookings flow end to end (HTTP + parse + SQL + ack)':<58} {e2e:>8.1f} {flow_rate:>11,.0f}")
    print(f"{'ceiling: COPY -> temp + INSERT ON CONFLICT, same rows':<58} {ceiling_s:>8.1f} {ceiling_rate:>11,.0f}")
    print("  ceiling split: " + ", ".join(f"{t} {v:.1f} s" for t, v in ceiling_split.items())
          + f" (channel_bookings carries the raw payloads: {payload_mb:,.0f} MB of COPY data)")
    print(f"{'ratio flow / ceiling':<58} {flow_rate / ceiling_rate:>20.2f}")
    verdict = "PASS" if flow_rate >= TARGET else "MISS"
    print(f"{'target: flow >= 20,000 bookings/s':<58} {verdict:>20}")
    print()
    print("where the flow's time went (exclusive wall time; the flow is sequential)")
    print(f"{'part':<50} {'seconds':>8} {'share':>6} {'calls':>7} {'ms/call':>8}")
    seconds: dict[str, float] = dict(profiler.seconds)
    seconds[TASK] = seconds.get(TASK, 0.0)
    seconds[INGEST] = seconds.get(INGEST, 0.0)
    glue = seconds.pop("task body (glue)", 0.0)
    seconds[ENGINE] = e2e - sum(seconds.values()) - glue
    seconds["task body glue (result dicts, logging)"] = glue
    calls = dict(profiler.calls)
    order = [HTTP_GET, PARSE, INGEST, COMMIT, ACK, RATE_LIMIT, LOOKUPS, PROGRESS, TASK, CLOSE,
             "task body glue (result dicts, logging)", ENGINE]
    for part in order:
        s = seconds.get(part, 0.0)
        c = calls.get(part, 0) if part != "task body glue (result dicts, logging)" else calls.get(
            "task body (glue)", 0)
        per = f"{1000 * s / c:>8.1f}" if c else f"{'':>8}"
        print(f"{part:<50} {s:>8.1f} {100 * s / e2e:>5.0f}% {c:>7,} {per}")
    print()
    sim_get = sum(v for k, v in stats["seconds"].items() if k.startswith("GET "))
    sim_post = sum(v for k, v in stats["seconds"].items() if k.startswith("POST /hotels"))
    got = sum(v for k, v in stats["bytes_out"].items() if k.startswith("GET "))
    print(f"simulator (child process) time inside its app: GETs {sim_get:.1f} s (render), ack "
          f"POSTs {sim_post:.1f} s; {got / 1e6:,.0f} MB of XML served")
    print()
    statements.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
