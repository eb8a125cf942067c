"""Benchmark: the every-minute booking pull of a hotel group, as `innsync up` runs it.

    .venv/bin/python bench/scale.py --properties 10 [--cycles 3] [--latency-ms 50-200] [--json F]

What runs (issue 13, item 5): `innsync up --demo-properties N` on a fresh home (embedded
PostgreSQL, its own Prefect server, the four partner simulators each hosting N hotels per
account, N demo hotels with four channels each, 20 reservations per hotel), the simulators
answering every partner request after 50-200 ms (`--latency-ms`). Then `--cycles` scheduled
`sync-all-bookings` cycles are watched through the Prefect API, and the same window is
measured from outside:

- **cycle**: from a cycle run's start until the last batch it dispatched ended (the batches
  are read off the cycle's own `sync-all-bookings` table artifact: a `pull-batch` flow run
  or, with pull workers, the background task run that carries it); a cycle whose batches
  are not all final two minutes after the window is reported unfinished, and so is one
  that dispatched nothing; channels a cycle left BUSY (their previous pull, queued or
  running, still held them) are printed per cycle;
- **CPU ms per property-cycle**: CPU time (user + system, from /proc) of everything the
  stack runs except the simulators (the launcher, the Prefect server, the serve process and
  every flow-run process it started, the task worker, the API, the embedded PostgreSQL),
  over the window, divided by properties x cycles;
- **partner requests** per cycle: requests the four simulators answered (`/_sim/stats`),
  also per partner and path (booking pulls, acknowledgements, availability pushes);
- **Prefect API calls** per cycle: requests in the Prefect server's access log (the bench
  sets PREFECT_SERVER_LOGGING_LEVEL=INFO for it).

Prints `scale: N properties x 4 partners, W workers: cycle S s, CPU ms per property-cycle C,
partner requests R, Prefect API calls P` beside the targets (1,000 properties: cycle <= 60 s,
CPU <= 20 ms; one request per account page for account-wide partners), and per worker the
CPU it spent per cycle (each serve process with every flow-run process it started, each pull
worker) and the batch runs per cycle. Workers: `--workers W` starts the stack with `innsync
up --workers W`: W serve processes and W pull workers; the cycle's batches
(INNSYNC_PULL_BATCH_SIZE channels of one partner each) spread over the pull workers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bench.soak import Stack, clean_env, descendants  # noqa: E402
from channels.simulators.server import free_port, free_port_run  # noqa: E402

TARGET_CYCLE_S = 60.0
TARGET_CPU_MS = 20.0
#: A cycle's pulls must be final this long after the window, else it is unfinished.
FINISH_GRACE_S = 120.0
TICK = os.sysconf("SC_CLK_TCK")


class Cycle(BaseModel):
    started: datetime
    #: Batches the cycle dispatched (or ran), and how many of them ended.
    pulls: int
    finished_pulls: int
    seconds: float | None  # None: unfinished
    #: Each batch: "<state> <seconds from the cycle's start to its end>".
    batches: list[str] = []
    #: Channels the cycle did not dispatch: their previous pull, queued or running, still
    #: held them (a cycle that left every channel BUSY counts as unfinished).
    busy_channels: int = 0


class Report(BaseModel):
    properties: int
    workers: int
    cycles: list[Cycle]
    cpu_ms_per_property_cycle: float
    partner_requests_per_cycle: float
    prefect_api_calls_per_cycle: float
    #: Per serve process: CPU seconds per cycle (with the flow-run processes it started).
    worker_cpu_s_per_cycle: list[float] = []
    #: Per pull worker (the batches' process): CPU seconds per cycle.
    pull_worker_cpu_s_per_cycle: list[float] = []
    batch_runs_per_cycle: float = 0.0
    #: Partner -> request path -> requests per cycle.
    requests_by_path: dict[str, dict[str, float]] = {}

    def worker_lines(self) -> list[str]:
        return [f"  serve process {i + 1}: CPU {cpu:.1f} s per cycle"
                for i, cpu in enumerate(self.worker_cpu_s_per_cycle)] + [
            f"  pull worker {i + 1}: CPU {cpu:.1f} s per cycle"
            for i, cpu in enumerate(self.pull_worker_cpu_s_per_cycle)] + [
            f"  batches per cycle: {self.batch_runs_per_cycle:.1f}"] + [
            f"  cycle at {c.started:%H:%M:%S}: batches " + (", ".join(c.batches) or "none")
            + (f"; {c.busy_channels} channels BUSY (still held by their previous pull)"
               if c.busy_channels else "")
            for c in self.cycles] + [
            f"  {partner} requests per cycle: " + ", ".join(
                f"{path} {n:.0f}" for path, n in sorted(paths.items(), key=lambda kv: -kv[1]))
            for partner, paths in sorted(self.requests_by_path.items())]

    def line(self) -> str:
        done = [c.seconds for c in self.cycles if c.seconds is not None]
        cycle = (f"{statistics.median(done):.1f} s (median of {len(done)}; max {max(done):.1f} s)"
                 if done else "none finished")
        unfinished = len(self.cycles) - len(done)
        return (f"scale: {self.properties} properties x 4 partners, {self.workers} workers: "
                f"cycle {cycle}{f', {unfinished} unfinished' if unfinished else ''}, "
                f"CPU ms per property-cycle {self.cpu_ms_per_property_cycle:.0f}, "
                f"partner requests {self.partner_requests_per_cycle:.0f}, "
                f"Prefect API calls {self.prefect_api_calls_per_cycle:.0f}")


def _cpu_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of one process (its reaped children included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(v) for v in fields[11:15])


def stack_cpu_seconds(stack: Stack, home: Path) -> float:
    """CPU of the stack's process tree and the embedded PostgreSQL, simulators excluded."""
    assert stack.process is not None
    tree = {stack.process.pid: "innsync up", **descendants(stack.process.pid)}
    for entry in Path("/proc").iterdir():  # the embedded postmaster may not be a descendant
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "postgres" in cmd and str(home) in cmd:
                pid = int(entry.name)
                tree[pid] = cmd
                tree.update(descendants(pid))
    sims = [pid for pid, cmd in tree.items() if " simulate " in f" {cmd} "]
    excluded = set(sims)
    for pid in sims:
        excluded.update(descendants(pid))
    return sum(_cpu_ticks(pid) for pid in tree if pid not in excluded) / TICK


def worker_cpu_seconds(stack: Stack, marker: str = "deployments.serve") -> list[float]:
    """CPU of each serve process (or pull worker: `marker`) with its child processes
    (reaped ones included)."""
    assert stack.process is not None
    tree = descendants(stack.process.pid)
    serves = sorted(pid for pid, cmd in tree.items() if marker in cmd
                    and marker not in tree.get(_parent(pid), ""))
    return [(_cpu_ticks(pid) + sum(_cpu_ticks(c) for c in descendants(pid))) / TICK
            for pid in serves]


PULL_WORKER = "--tasks pulls"


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def partner_calls(stack: Stack) -> dict[str, dict[str, int]]:
    """Requests each simulator answered so far, per path."""
    return {str(partner): dict(httpx.get(f"{url}/_sim/stats", timeout=30).json()["calls"])
            for partner, url in stack.sims.items()}


def _total(calls: dict[str, dict[str, int]]) -> int:
    return sum(sum(paths.values()) for paths in calls.values())


def _kind(path: str) -> str:
    """A request path without its ids (`/v2/calendars/51000203/...` -> `/v2/calendars/*`)."""
    parts = ["*" if len(p) > 3 and any(c.isdigit() for c in p) or len(p) >= 10 and p.isupper()
             else p for p in path.split("/")]
    while parts and parts[-1] == "*" and len(parts) > 1 and parts[-2] == "*":
        parts.pop()
    return "/".join(parts)


def _per_cycle(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]],
               cycles: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for partner, paths in after.items():
        kinds = out.setdefault(partner, {})
        for path, n in paths.items():
            grown = n - before.get(partner, {}).get(path, 0)
            if grown > 0:
                kinds[_kind(path)] = kinds.get(_kind(path), 0.0) + grown / cycles
    return out


def prefect_api_calls(home: Path) -> int:
    log = home / "logs" / "prefect-server.log"
    with log.open("rb") as f:
        return sum(1 for line in f if b'HTTP/1.1"' in line)


def _runs(flow: str, after: datetime | None = None) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterStartTime,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    run_filter = (FlowRunFilter(start_time=FlowRunFilterStartTime(after_=after))
                  if after is not None else None)
    with get_client(sync_client=True) as client:
        runs: list[Any] = []
        while True:
            page = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow])),
                                         flow_run_filter=run_filter, sort=FlowRunSort.START_TIME_ASC,
                                         limit=200, offset=len(runs))
            runs += page
            if len(page) < 200:
                return runs


def _batches_of(cycle: Any) -> tuple[list[tuple[str, str]], int]:
    """The batches a cycle dispatched, as ("task" | "flow", run id), from its table
    artifact (one line per batch run and state: flows/scheduled._per_batch), and how many
    channels it left BUSY (their previous pull, queued or running, still held them)."""
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[cycle.id]),
            key=ArtifactFilterKey(any_=["sync-all-bookings"])))
    out: set[tuple[str, str]] = set()
    busy = 0
    for artifact in artifacts:
        data: Any = artifact.data
        rows: list[dict[str, Any]] = json.loads(data) if isinstance(data, str) else data or []
        for row in rows:
            if row.get("state") == "BUSY":
                busy += int(row.get("channels", 0))
            if row.get("task_run_id"):
                out.add(("task", row["task_run_id"]))
            elif row.get("flow_run_id"):
                out.add(("flow", row["flow_run_id"]))
    return sorted(out), busy


def _batch_runs(batches: list[tuple[str, str]]) -> list[Any]:
    """The batches' runs as they are now (task runs for pull workers, else flow runs)."""
    import uuid

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [client.read_task_run(uuid.UUID(i)) if kind == "task"
                else client.read_flow_run(uuid.UUID(i)) for kind, i in batches]


def wait_for_cycle_start(after: datetime, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = [r for r in _runs("sync-all-bookings", after)  # the filter is inclusive
                   if r.start_time is not None and r.start_time > after]
        if started:
            return started[0]
        time.sleep(1)
    raise TimeoutError("no sync-all-bookings cycle started")


def run(properties: int, cycles: int, latency: tuple[int, int], workers: int,
        skip: int = 2, max_skip: int = 0, latency_samples: int = 0,
        latency_json: Path | None = None) -> Report:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    base = Path(tempfile.mkdtemp(prefix="innsync-scale-"))
    home = base / "home"
    stack = Stack(home, free_port(), free_port(), free_port_run(4),
                  clean_env(INNSYNC_HOME=str(home), PREFECT_SERVER_LOGGING_LEVEL="INFO"),
                  up_args=["--demo-reservations", "20", "--demo-properties", str(properties),
                           "--workers", str(workers)])
    print(f"starting innsync up --demo-properties {properties} in {home} ...", flush=True)
    stack.start(timeout=900)
    try:
        for url in stack.sims.values():
            httpx.post(f"{url}/_sim/faults", json={"latency_ms": latency[0],
                                                   "latency_max_ms": latency[1]},
                       timeout=30).raise_for_status()
        with temporary_settings(updates={PREFECT_API_URL: stack.prefect_api}):
            # The first cycles after the start catch up on the seeded queues: skip some.
            first = wait_for_cycle_start(datetime.fromtimestamp(0).astimezone())
            for _ in range(skip):
                first = wait_for_cycle_start(first.start_time)
            # Then, up to --max-skip-cycles, until a cycle left no channel BUSY (the start's
            # first full-window pushes are over): the window measures the steady state.
            skipped = skip
            while skipped < max_skip:
                previous, first = first, wait_for_cycle_start(first.start_time)
                skipped += 1
                batches_then, busy_then = _batches_of(previous)
                print(f"skipped the cycle at {previous.start_time:%H:%M:%S}: "
                      f"{len(batches_then)} batches, {busy_then} channels BUSY", flush=True)
                if batches_then and not busy_then:
                    break
            cpu0, req0, api0 = stack_cpu_seconds(stack, home), partner_calls(stack), \
                prefect_api_calls(home)
            workers0 = worker_cpu_seconds(stack)
            pullers0 = worker_cpu_seconds(stack, PULL_WORKER)
            print(f"window starts with the cycle at {first.start_time:%H:%M:%S}", flush=True)
            last = first
            for _ in range(cycles):
                last = wait_for_cycle_start(last.start_time)
            cpu1, req1, api1 = stack_cpu_seconds(stack, home), partner_calls(stack), \
                prefect_api_calls(home)
            workers1 = worker_cpu_seconds(stack)
            pullers1 = worker_cpu_seconds(stack, PULL_WORKER)
            deadline = time.monotonic() + FINISH_GRACE_S
            all_cycles = _runs("sync-all-bookings", first.start_time - _SECOND)
            window = [c for c in all_cycles if c.start_time is not None][:cycles]
            batches = {c.id: _batches_of(c) for c in window}
            while True:  # the window's cycles may still be pulling
                measured = [(c, _batch_runs(batches[c.id][0])) for c in window]
                if all(p.state_type is not None and p.state_type.value in _FINAL
                       for _, ps in measured for p in ps) or time.monotonic() > deadline:
                    break
                time.sleep(2)
        if latency_samples:
            # The same stack, in its steady state: bench/latency.py's samples.
            from bench.latency import sample_on

            try:
                figures = sample_on(stack, home, properties, latency_samples, gap=10.0,
                                    timeout=240.0)
            except Exception as exc:  # the scale figures are still printed below
                print(f"latency samples failed: {exc!r}", flush=True)
            else:
                if latency_json is not None:
                    import json

                    latency_json.write_text(json.dumps(figures, indent=2))
    finally:
        stack.stop()
    report = Report(
        properties=properties, workers=workers,
        cycles=[_cycle(c, ps, batches[c.id][1]) for c, ps in measured],
        cpu_ms_per_property_cycle=(cpu1 - cpu0) * 1000 / (properties * cycles),
        partner_requests_per_cycle=(_total(req1) - _total(req0)) / cycles,
        requests_by_path=_per_cycle(req0, req1, cycles),
        prefect_api_calls_per_cycle=(api1 - api0) / cycles,
        worker_cpu_s_per_cycle=[(b - a) / cycles for a, b in zip(workers0, workers1,
                                                                  strict=False)],
        pull_worker_cpu_s_per_cycle=[(b - a) / cycles for a, b in zip(pullers0, pullers1,
                                                                       strict=False)],
        batch_runs_per_cycle=sum(len(ps) for _, ps in measured) / max(len(measured), 1),
    )
    print(report.line())
    print("\n".join(report.worker_lines()))
    return report


_FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def _cycle(cycle: Any, pulls: list[Any], busy: int = 0) -> Cycle:
    final = [p for p in pulls if p.state_type is not None and p.state_type.value in _FINAL]
    ends = [p.end_time for p in final if p.end_time is not None]
    seconds = ((max(ends) - cycle.start_time).total_seconds()
               if pulls and len(final) == len(pulls) and ends else None)
    def brief(p: Any) -> str:
        state = p.state_type.value if p.state_type is not None else "?"
        took = ("" if p.end_time is None
                else f" {(p.end_time - cycle.start_time).total_seconds():.0f}s")
        return f"{state}{took}"

    return Cycle(started=cycle.start_time, pulls=len(pulls), finished_pulls=len(final),
                 seconds=seconds, batches=[brief(p) for p in pulls], busy_channels=busy)


def _latency(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


_SECOND = timedelta(seconds=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--properties", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cycles", type=int, default=3, help="cycles measured")
    parser.add_argument("--skip-cycles", type=int, default=2,
                        help="cycles left out after the start (they catch up on the seeded "
                             "queues: every hotel's bookings at once)")
    parser.add_argument("--max-skip-cycles", type=int, default=0,
                        help="after --skip-cycles, skip more cycles (up to this many in all) "
                             "until one leaves no channel BUSY: the start's first full-window "
                             "pushes are over and the window measures the steady state")
    parser.add_argument("--latency-samples", type=int, default=0,
                        help="after the window, time this many bookings per partner on the "
                             "same stack (bench/latency.py's measure)")
    parser.add_argument("--latency-json", type=Path, help="write the latency samples here")
    parser.add_argument("--latency-ms", type=_latency, default=(50, 200),
                        help="partner latency, LOW-HIGH milliseconds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not 1 <= args.workers <= 32:
        parser.error("--workers: 1 to 32")
    report = run(args.properties, args.cycles, args.latency_ms, args.workers,
                 args.skip_cycles, args.max_skip_cycles, args.latency_samples, args.latency_json)
    print(f"targets at 1,000 properties: cycle <= {TARGET_CYCLE_S:.0f} s, CPU ms per "
          f"property-cycle <= {TARGET_CPU_MS:.0f}; partner requests: one per account page for "
          f"account-wide partners (Booking.com, Expedia: pulled per account; Agoda, Airbnb name "
          f"a hotel or listing per request: {args.properties} each)")
    if args.json:
        args.json.write_text(report.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
