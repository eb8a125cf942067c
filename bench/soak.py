"""Soak: the whole stack (`innsync up` on a fresh home) left running with partner faults on.

    .venv/bin/python bench/soak.py --minutes 60 [--faults 0.05] [--kill/--no-kill]

It starts `innsync up` in a new INNSYNC_HOME (embedded PostgreSQL, its own Prefect server,
the four partner simulators with the demo hotel), turns fault injection on at every simulator
(503s, 429s with Retry-After, slow answers, re-deliveries), keeps bookings arriving at every
partner, kills (-9) the serve process at one third and the API at two thirds of the run
(`innsync up` must restart them), then turns faults off, lets the pulls drain
and prints, per channel:

    bookings created at the partner vs stored vs acknowledged (lost, duplicated),
    the longest gap between successful pulls, runs and sync logs stuck in running,
    token exchanges per partner (and per hour).

`run_soak()` is what tests/soak/test_soak.py calls with the clock compressed (short run,
short token lifetime at the simulators). Exit status 1 when anything was lost or stuck.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from channels.simulators.server import free_port, free_port_run  # noqa: E402

CHANNELS = ["booking.com", "agoda", "expedia", "airbnb"]
PULL_OPERATION = "sync_bookings"


class ChannelFigures(BaseModel):
    channel: str
    created: int = 0  # distinct bookings created at the partner before the drain
    messages: int = 0  # booking messages (new + modifications + cancellations) at the partner
    acked_at_partner: int = 0  # messages the partner saw acknowledged
    stored: int = 0  # distinct bookings stored in innsync (the demo seed's included)
    acknowledged: int = 0  # stored bookings whose latest message innsync acknowledged
    lost: int = 0  # created at the partner, never stored
    duplicated: int = 0  # reservations beyond one per booked room
    pulls_ok: int = 0
    pulls_failed: int = 0
    longest_gap_s: float | None = None  # longest time between successful pulls
    token_exchanges: int = 0
    #: Seconds from a booking's creation at the partner to its first storing in innsync,
    #: over the bookings the soak created (median and slowest); how many took longer than
    #: two pull intervals.
    store_p50_s: float | None = None
    store_max_s: float | None = None
    stored_late: int = 0
    #: Why pulls failed: the first error of each failed pull, most frequent first.
    pull_errors: list[str] = Field(default_factory=list)


class SoakReport(BaseModel):
    minutes: float
    pull_interval_s: float = 60.0
    elapsed_s: float = 0.0  # from the stack's start to the measurement
    faults: dict[str, Any]
    kills: list[str] = Field(default_factory=list)
    restarts_seen: list[str] = Field(default_factory=list)
    channels: list[ChannelFigures] = Field(default_factory=list)
    stuck_flow_runs: int = 0
    stuck_sync_logs: int = 0
    stuck_backups: int = 0

    @property
    def ok(self) -> bool:
        return (not any(c.lost or c.duplicated for c in self.channels)
                and not (self.stuck_flow_runs or self.stuck_sync_logs or self.stuck_backups))

    def render(self) -> str:
        head = (f"soak: {self.minutes:g} min ({self.elapsed_s:.0f} s with start and drain), "
                f"faults {json.dumps(self.faults)}, "
                f"kills {', '.join(self.kills) or 'none'}")
        rows = [head, f"{'channel':<12} {'created':>7} {'stored':>6} {'acked':>6} {'lost':>4} "
                      f"{'dup':>4} {'pulls ok/fail':>13} {'max gap s':>9} {'tokens':>6} "
                      f"{'tokens/h':>8} {'stored in s p50/max':>19} {'late':>4}"]
        hours = max(self.elapsed_s / 3600, 1e-9)
        for c in self.channels:
            gap = f"{c.longest_gap_s:.0f}" if c.longest_gap_s is not None else "-"
            latency = (f"{c.store_p50_s:.0f}/{c.store_max_s:.0f}"
                       if c.store_p50_s is not None and c.store_max_s is not None else "-")
            rows.append(f"{c.channel:<12} {c.created:>7} {c.stored:>6} {c.acknowledged:>6} "
                        f"{c.lost:>4} {c.duplicated:>4} {c.pulls_ok:>6}/{c.pulls_failed:<6} "
                        f"{gap:>9} {c.token_exchanges:>6} {c.token_exchanges / hours:>8.1f} "
                        f"{latency:>19} {c.stored_late:>4}")
        rows.append(f"late = stored more than two pull intervals "
                    f"({2 * self.pull_interval_s:.0f} s) after the partner created it")
        for c in self.channels:
            if c.pull_errors:
                rows.append(f"{c.channel} failed pulls: " + "; ".join(c.pull_errors))
        rows.append(f"stuck: {self.stuck_flow_runs} flow runs, {self.stuck_sync_logs} sync logs, "
                    f"{self.stuck_backups} backups; restarts seen: "
                    f"{', '.join(self.restarts_seen) or 'none'}")
        rows.append("RESULT: " + ("PASS" if self.ok else "FAIL"))
        return "\n".join(rows)


# ---------------------------------------------------------------- processes


def descendants(pid: int) -> dict[int, str]:
    """pid -> command line of every process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child in out:
                continue
            try:
                cmd = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            out[child] = cmd.decode(errors="replace")
            todo.append(child)
    return out


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PREFECT_") and k not in {"INNSYNC_DATABASE_URL", "INNSYNC_HOME"}}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", **extra)
    return env


@dataclass
class Stack:
    """One `innsync up` process tree and where it listens."""

    home: Path
    api_port: int
    prefect_port: int
    sim_port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    out: Path | None = None
    admin_key: str = ""
    sims: dict[str, str] = field(default_factory=dict)
    #: `innsync up` options beyond the ports.
    up_args: list[str] = field(default_factory=lambda: ["--demo-reservations", "200"])

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def prefect_api(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    def start(self, timeout: float = 300) -> None:
        self.out = self.home.parent / "up.out"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "innsync.cli", "up", "--api-port", str(self.api_port),
             "--prefect-port", str(self.prefect_port), "--sim-port", str(self.sim_port),
             *self.up_args],
            env=self.env, cwd=ROOT, stdout=self.out.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while "innsync is up" not in self.out.read_text(errors="replace"):
            if self.process.poll() is not None:
                raise RuntimeError("innsync up exited:\n" + self.out.read_text()[-3000:])
            if time.monotonic() > deadline:
                raise TimeoutError("innsync up did not come up:\n" + self.out.read_text()[-3000:])
            time.sleep(1)
        key = self.home / "admin.key"  # written on a database's first start only
        self.admin_key = key.read_text().strip() if key.exists() else ""
        self.sims = {ch: f"http://127.0.0.1:{self.sim_port + i}" for i, ch in enumerate(CHANNELS)}

    def kill_child(self, marker: str) -> int | None:
        """kill -9 the child whose command line contains `marker`; returns its pid."""
        assert self.process is not None
        for pid, cmd in descendants(self.process.pid).items():
            if marker in cmd:
                os.kill(pid, signal.SIGKILL)
                return pid
        return None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# ---------------------------------------------------------------- measuring


def sim_stats(base: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{base}/_sim/stats", timeout=10).json()
    return answer


def set_faults(base: str, faults: dict[str, Any]) -> None:
    current = httpx.get(f"{base}/_sim/faults", timeout=10).json()
    current.update({k: v for k, v in faults.items() if k in current})
    httpx.post(f"{base}/_sim/faults", json=current, timeout=10).raise_for_status()


def database_figures(home: Path, stuck_after_s: float) -> dict[str, dict[str, Any]]:
    """Per channel name: stored/acknowledged bookings, duplicates, pull history (SQL)."""
    import psycopg

    from db.embedded import embedded_database_url

    url = embedded_database_url("innsync", home / "pgdata")
    out: dict[str, dict[str, Any]] = {}
    with psycopg.connect(url) as conn:
        for name, stored, acked, ids, stamps in conn.execute("""
                SELECT c.channel_name, count(b.id),
                       count(b.id) FILTER (WHERE b.acknowledged_at IS NOT NULL),
                       coalesce(array_agg(b.external_booking_id) FILTER (WHERE b.id IS NOT NULL),
                                '{}'),
                       coalesce(array_agg(extract(epoch FROM b.created_at)::float8)
                                FILTER (WHERE b.id IS NOT NULL), '{}')
                FROM channels c LEFT JOIN channel_bookings b ON b.channel_id = c.id
                GROUP BY c.channel_name"""):
            out[name] = {"stored": stored, "acknowledged": acked, "ids": set(ids),
                         "stored_at": dict(zip(ids, stamps, strict=True))}
        for name, errors in conn.execute("""
                SELECT channel_name, array_agg(first_error || ' (x' || n || ')' ORDER BY n DESC)
                FROM (SELECT c.channel_name,
                             left(coalesce(l.error_messages->>0, l.status), 160) AS first_error,
                             count(*) AS n
                      FROM channel_sync_logs l JOIN channels c ON c.id = l.channel_id
                      WHERE l.operation = %s AND l.status NOT IN ('success', 'running')
                      GROUP BY 1, 2) e
                GROUP BY 1""", (PULL_OPERATION,)):
            out.setdefault(name, {})["pull_errors"] = list(errors)[:5]
        for name, dup in conn.execute("""
                SELECT c.channel_name, count(*) FROM (
                    SELECT channel_id, external_ref, room_index FROM reservations
                    WHERE channel_id IS NOT NULL GROUP BY 1, 2, 3 HAVING count(*) > 1) d
                JOIN channels c ON c.id = d.channel_id GROUP BY 1"""):
            out.setdefault(name, {})["duplicated"] = dup
        for name, ok, failed, gap in conn.execute("""
                WITH pulls AS (
                    SELECT c.channel_name, l.status, l.started_at,
                           l.started_at - lag(l.started_at) OVER (
                               PARTITION BY l.channel_id, l.status = 'success'
                               ORDER BY l.started_at) AS gap
                    FROM channel_sync_logs l JOIN channels c ON c.id = l.channel_id
                    WHERE l.operation = %s)
                SELECT channel_name, count(*) FILTER (WHERE status = 'success'),
                       count(*) FILTER (WHERE status NOT IN ('success', 'running')),
                       extract(epoch FROM max(gap) FILTER (WHERE status = 'success'))
                FROM pulls GROUP BY 1""", (PULL_OPERATION,)):
            fig = out.setdefault(name, {})
            fig.update(pulls_ok=ok, pulls_failed=failed,
                       longest_gap_s=float(gap) if gap is not None else None)
        # Running now is fine; running for longer than any run may last is stuck.
        stuck_logs = conn.execute(
            "SELECT count(*) FROM channel_sync_logs WHERE status = 'running' "
            "AND started_at < now() - make_interval(secs => %s)", (stuck_after_s,)).fetchone()
        stuck_backups = conn.execute(
            "SELECT count(*) FROM system_backups WHERE status = 'running' "
            "AND created_at < now() - make_interval(secs => %s)", (stuck_after_s,)).fetchone()
    out["_stuck"] = {"sync_logs": stuck_logs[0] if stuck_logs else 0,
                     "backups": stuck_backups[0] if stuck_backups else 0}
    return out


def booking_ids_at(channel: str, base: str) -> set[str]:
    """Distinct booking ids a simulator created, as the partner shows them to innsync."""
    ids = [str(i) for i in httpx.get(f"{base}/_sim/booking-ids", timeout=10).json()]
    if channel == "airbnb":
        from channels.simulators.airbnb import confirmation_code

        return {confirmation_code(i) for i in ids}
    return set(ids)


def stuck_flow_runs(prefect_api: str, older_than_s: float) -> int:
    """Flow runs still Running/Pending/Cancelling that started more than `older_than_s` ago."""
    runs = httpx.post(f"{prefect_api}/flow_runs/filter", json={
        "flow_runs": {"state": {"type": {"any_": ["RUNNING", "PENDING", "CANCELLING"]}}},
    }, timeout=10).json()
    now = time.time()
    stuck = 0
    for run in runs:
        started = run.get("start_time") or run.get("expected_start_time")
        if started is None:
            continue
        if now - datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp() > older_than_s:
            stuck += 1
    return stuck


# ---------------------------------------------------------------- the run

DEFAULT_FAULTS: dict[str, Any] = {
    "error_rate": 0.05, "rate_limit_rate": 0.03, "retry_after_seconds": 3,
    "latency_ms": 20, "duplicate_rate": 0.05,
}


def store_latencies(created: dict[str, float], stored_at: dict[str, float]) -> list[float]:
    """Seconds from creation at the partner to first storing, per stored booking."""
    return sorted(stored_at[i] - t for i, t in created.items() if i in stored_at)


def run_soak(minutes: float, *, faults: dict[str, Any] | None = None, kill: bool = True,
             bookings_every: float = 20.0, drain_seconds: float = 150.0,
             token_settings: dict[str, Any] | None = None, workdir: Path | None = None,
             stuck_after_s: float = 600.0, pull_interval_s: float = 60.0,
             say: Callable[[str], None] = print) -> SoakReport:
    """Run the stack for `minutes`, with kills, then drain and measure."""
    faults = dict(DEFAULT_FAULTS if faults is None else faults)
    base = workdir or Path(tempfile.mkdtemp(prefix="innsync-soak-"))
    home = base / "home"
    env = clean_env(INNSYNC_HOME=str(home))
    stack = Stack(home, free_port(), free_port(), free_port_run(4), env)
    os.environ["INNSYNC_HOME"] = str(home)  # this process reads the same embedded cluster
    report = SoakReport(minutes=minutes, faults=faults, pull_interval_s=pull_interval_s)
    say(f"starting innsync up in {home} ...")
    began = time.monotonic()
    stack.start()
    try:
        for url in stack.sims.values():
            set_faults(url, faults)
            if token_settings:  # e.g. a short token lifetime to compress an hour
                current = httpx.get(f"{url}/_sim/tokens", timeout=10).json()
                httpx.post(f"{url}/_sim/tokens", json={**current, **token_settings},
                           timeout=10).raise_for_status()
        start = time.monotonic()
        end = start + minutes * 60
        kills = ({start + minutes * 20: "deployments.serve", start + minutes * 40: "cli api"}
                 if kill else {})
        next_booking = start
        # Creation time of each booking the soak adds (wall clock, just before the add);
        # ids that appear otherwise (the demo's own traffic) are known but not timed.
        known = {ch: booking_ids_at(ch, url) for ch, url in stack.sims.items()}
        created: dict[str, dict[str, float]] = {ch: {} for ch in stack.sims}
        while time.monotonic() < end:
            now = time.monotonic()
            for when, marker in list(kills.items()):
                if now >= when:
                    pid = stack.kill_child(marker)
                    report.kills.append(f"{marker} (pid {pid}) at {now - start:.0f} s")
                    say(f"killed {marker} pid {pid}")
                    del kills[when]
            if now >= next_booking:
                for ch, url in stack.sims.items():
                    try:
                        known[ch] |= booking_ids_at(ch, url)
                        added_at = time.time()
                        httpx.post(f"{url}/_sim/bookings", params={"count": 1}, timeout=5)
                        fresh = booking_ids_at(ch, url) - known[ch]
                    except httpx.HTTPError:
                        continue
                    created[ch].update(dict.fromkeys(fresh, added_at))
                    known[ch] |= fresh
                next_booking = now + bookings_every
            if stack.process is not None and stack.process.poll() is not None:
                raise RuntimeError("innsync up died:\n" + stack.out.read_text()[-3000:])  # type: ignore[union-attr]
            time.sleep(1)
        say(f"draining {drain_seconds:.0f} s ...")
        # What exists at the partners now must be stored by the end (`innsync up` itself may
        # add demo bookings meanwhile: those are not counted).
        due = {ch: booking_ids_at(ch, url) for ch, url in stack.sims.items()}
        for url in stack.sims.values():  # faults off: what is pending must now arrive
            set_faults(url, {k: 0 for k in faults if k != "retry_after_seconds"})
        drained_by = time.monotonic() + drain_seconds
        while time.monotonic() < drained_by:  # until everything due is stored, or time is up
            time.sleep(5)
            stored = database_figures(home, stuck_after_s)
            if all(ids <= stored.get(ch, {}).get("ids", set()) for ch, ids in due.items()):
                say(f"drained: everything due is stored, {drained_by - time.monotonic():.0f} s early")
                break
        report.restarts_seen = [line.strip() for line in stack.out.read_text().splitlines()  # type: ignore[union-attr]
                                if "restarting" in line]
        report.elapsed_s = time.monotonic() - began
        figures = database_figures(home, stuck_after_s)
        for ch, url in stack.sims.items():
            stats = sim_stats(url)
            fig = figures.get(ch, {})
            ids = due[ch]
            stored_ids: set[str] = fig.get("ids", set())
            lost = len(ids - stored_ids)
            waits = store_latencies(created[ch], fig.get("stored_at", {}))
            report.channels.append(ChannelFigures(
                channel=ch, created=len(ids), messages=int(stats.get("messages", 0)),
                acked_at_partner=int(stats.get("acked", 0)), stored=int(fig.get("stored", 0)),
                acknowledged=int(fig.get("acknowledged", 0)), lost=lost,
                duplicated=int(fig.get("duplicated", 0)), pulls_ok=int(fig.get("pulls_ok", 0)),
                pulls_failed=int(fig.get("pulls_failed", 0)),
                longest_gap_s=fig.get("longest_gap_s"),
                token_exchanges=int(stats.get("token_exchanges", 0)),
                store_p50_s=waits[len(waits) // 2] if waits else None,
                store_max_s=waits[-1] if waits else None,
                stored_late=sum(w > 2 * pull_interval_s for w in waits),
                pull_errors=fig.get("pull_errors", []),
            ))
        report.stuck_sync_logs = figures["_stuck"]["sync_logs"]
        report.stuck_backups = figures["_stuck"]["backups"]
        report.stuck_flow_runs = stuck_flow_runs(stack.prefect_api, stuck_after_s)
    finally:
        stack.stop()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--faults", type=float, default=0.05,
                        help="share of partner requests answered 503 (429s at 3/5 of it)")
    parser.add_argument("--kill", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--bookings-every", type=float, default=20.0)
    parser.add_argument("--drain", type=float, default=150.0)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    faults = {**DEFAULT_FAULTS, "error_rate": args.faults, "rate_limit_rate": args.faults * 0.6}
    report = run_soak(args.minutes, faults=faults, kill=args.kill,
                      bookings_every=args.bookings_every, drain_seconds=args.drain)
    print(report.render())
    if args.json:
        args.json.write_text(report.model_dump_json(indent=2))
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
