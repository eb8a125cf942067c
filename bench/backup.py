"""Benchmark: our backup/restore beside pg_dump -Fc / pg_restore on >= 1,000,000 reservations.

    .venv/bin/python bench/backup.py [--reservations 1000000] [--rebuild] [--repeat 3]
                                     [--cli] [--cli-no-stack] [--up]

Builds (or reuses) database `innsync_bench` on the local server with server-side SQL, then in
each round times: our full backup vs `pg_dump -Fc`, our restore into a fresh migrated
database vs `pg_restore` of the whole dump into a fresh empty database. Prints each round,
then medians, ratios (of medians, and per round), sizes and the peak RSS of the process
doing our backup/restore (each runs in its own subprocess).

As users run them (`--cli`): `innsync backup create` and `innsync backup restore --yes` as
subprocesses, attached (through $INNSYNC_HOME/stack.json, as `innsync up` records it) to a
real Prefect server the benchmark starts; `--cli-no-stack` also times them with no stack
recorded (each CLI run then starts an ephemeral Prefect server: the old common path).

`--up`: the common path since issue 14: `innsync up --no-demo` on the benchmark database
(its Prefect server on a scratch PostgreSQL database, `innsync_bench_prefect`, as on the
embedded cluster), then the same two commands in a second shell, which run on the stack's
API with the CLI key (innsync/cli_remote.py). The restore goes into the stack's own database
(the same rows back); peak memory is the CLI process's and the API process's (VmHWM, the API
is the process doing the work).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench/ holds a queue.py that would shadow the standard library's queue module.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import psycopg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ADMIN = os.environ.get("INNSYNC_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DB = "innsync_bench"
PREFECT_DB = "innsync_bench_prefect"


def _url(name: str) -> str:
    return ADMIN.rsplit("/", 1)[0] + "/" + name


def _bin(name: str) -> str:
    """The client binary matching the server's major version (as the product finds it)."""
    from db.pgtools import find_pg_tool

    return str(find_pg_tool(name, ADMIN).path)


def _create_db(name: str) -> str:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return _url(name)


def _drop_db(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str) -> None:
    from db import migrate
    from db.engine import to_sqlalchemy_url

    migrate.upgrade("head", to_sqlalchemy_url(url))


def _count(url: str) -> int:
    try:
        with psycopg.connect(url) as conn:
            return int(conn.execute("SELECT count(*) FROM reservations").fetchone()[0])  # type: ignore[index]
    except psycopg.Error:
        return 0


GENERATE = """
INSERT INTO properties (id, code, name) SELECT i, 'P' || i, 'Property ' || i
FROM generate_series(1, 20) i;
INSERT INTO room_types (id, property_id, code, name, total_units)
SELECT i, 1 + (i % 20), 'RT' || i, 'Room type ' || i, 20 FROM generate_series(1, 100) i;
INSERT INTO guests (id, first_name, last_name, email, phone, country, created_at, updated_at)
SELECT i, 'First' || (i % 5000), 'Last' || (i % 20000), 'guest' || i || '@example.com',
       '+33 6 ' || lpad((i % 100000000)::text, 8, '0'),
       (ARRAY['FR', 'DE', 'GB', 'US', 'JP', 'SE'])[1 + i % 6],
       now() - (i % 1000) * interval '1 hour', now()
FROM generate_series(1, %(guests)s) i;
INSERT INTO reservations (id, property_id, guest_id, room_type_id, confirmation_code,
    check_in, check_out, adults, children, amount, currency, status, source_channel, notes,
    created_at, updated_at)
SELECT i, 1 + (i % 20), 1 + (i % %(guests)s), 1 + (i % 100), 'CONF' || i,
       date '2025-01-01' + (i % 700), date '2025-01-01' + (i % 700) + 1 + (i % 7),
       1 + (i % 3), i % 2, ((i % 50000) * 1.13)::numeric(12, 2), 'EUR',
       (ARRAY['confirmed', 'cancelled', 'checked_out', 'pending'])[1 + i % 4],
       (ARRAY['booking.com', 'agoda', 'expedia', 'airbnb', NULL])[1 + i % 5],
       CASE WHEN i % 10 = 0 THEN 'Late arrival, room ' || (i % 400) END,
       now() - (i % 100000) * interval '1 minute', now()
FROM generate_series(1, %(reservations)s) i;
"""


def build(reservations: int, rebuild: bool) -> str:
    """The benchmark database, generated server-side unless it already has enough rows."""
    url = _url(BENCH_DB)
    if not rebuild and _count(url) >= reservations:
        _migrate(url)  # same schema revision as the restore target (migrated to head)
        print(f"reusing {BENCH_DB} ({_count(url):,} reservations)")
        return url
    t0 = time.perf_counter()
    _create_db(BENCH_DB)
    _migrate(url)
    guests = max(reservations // 3, 1)
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in GENERATE.split(";\n"):
            if stmt.strip():
                conn.execute(stmt.replace("%(guests)s", str(guests))  # type: ignore[arg-type]
                             .replace("%(reservations)s", str(reservations)))
        for table in ("properties", "room_types", "guests", "reservations"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) "
                         f"FROM {table}")
        conn.execute("VACUUM ANALYZE")
    print(f"built {BENCH_DB}: {reservations:,} reservations, {guests:,} guests "
          f"in {time.perf_counter() - t0:.1f}s")
    return url


def _timed(args: list[str], env: dict[str, str] | None = None,
           stdout: Path | None = None) -> tuple[float, int]:
    """(seconds, peak RSS in MB) of a subprocess."""
    t0 = time.perf_counter()
    out = stdout.open("wb") if stdout is not None else None
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if out is not None:
        out.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(args)}")
    return elapsed, usage.ru_maxrss // 1024


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def worker(mode: str, url: str, path: str) -> None:
    """Run our backup or restore in this process (for RSS measurement)."""
    from db.backup.create import BackupOptions, run_backup
    from db.backup.restore import RestoreOptions, restore_staged
    from db.backup.storage import Store
    from db.backup.verify import stage_backup

    if os.environ.get("INNSYNC_BENCH_LOG"):
        import logging

        logging.basicConfig(level=logging.INFO, format="%(relativeCreated)8.0fms %(message)s")
    store = Store.open(path)
    if mode == "backup":
        run_backup(url, store, BackupOptions())
    else:
        staged = stage_backup(store)
        restore_staged(url, staged, RestoreOptions())


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "INNSYNC_"))}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", **extra)
    return env


class Stack:
    """A real Prefect server (SQLite, own home) and an innsync home recording it."""

    def __init__(self, work: Path, record: bool) -> None:
        import httpx

        from channels.simulators.server import free_port
        from innsync.cli_stack import record_stack

        self.home = work / "innsync-home"
        self.root = work / "root"
        self.home.mkdir()
        self.root.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None
        if not record:
            return
        port = free_port()
        self.api = f"http://127.0.0.1:{port}/api"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)],
            env=_clean_env(PREFECT_HOME=str(work / "prefect"), PREFECT_UI_ENABLED="false"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("the benchmark's Prefect server did not start")
            time.sleep(0.3)
        record_stack(self.home, self.api, "http://127.0.0.1:1", None)

    def env(self, db_url: str) -> dict[str, str]:
        return _clean_env(INNSYNC_HOME=str(self.home), INNSYNC_DATABASE_URL=db_url,
                          INNSYNC_BACKUP_ROOT=str(self.root), INNSYNC_LOG_LEVEL="WARNING")

    def stop(self) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)


class UpStack:
    """`innsync up --no-demo` on the benchmark database (bench/soak.py's Stack)."""

    def __init__(self, work: Path, url: str) -> None:
        from bench.soak import Stack as Up
        from bench.soak import clean_env
        from channels.simulators.server import free_port, free_port_run

        self.home = work / "innsync-home"
        self.root = work / "root"
        self.root.mkdir(parents=True)
        # The Prefect server on PostgreSQL, as `innsync up` runs it on the embedded cluster:
        # with INNSYNC_DATABASE_URL set and no Prefect database named, it would fall back to
        # SQLite, whose "database is locked" stalled one backup for 60 s.
        prefect_db = _create_db(PREFECT_DB).replace("postgresql://", "postgresql+asyncpg://")
        self.env = clean_env(INNSYNC_HOME=str(self.home), INNSYNC_DATABASE_URL=url,
                             INNSYNC_BACKUP_ROOT=str(self.root), INNSYNC_LOG_LEVEL="WARNING",
                             PREFECT_SERVER_DATABASE_CONNECTION_URL=prefect_db)
        self.up = Up(self.home, free_port(), free_port(), free_port_run(4), self.env,
                     up_args=["--no-demo"])
        print("starting innsync up --no-demo on the benchmark database ...", flush=True)
        try:
            self.up.start(timeout=600)
        except BaseException:
            self.stop()  # the stack and its Prefect database
            raise

    def api_pid(self) -> int:
        from bench.soak import descendants

        assert self.up.process is not None
        for pid, cmd in descendants(self.up.process.pid).items():
            if "innsync.cli api" in cmd:
                return pid
        raise SystemExit("no API process under innsync up")

    def stop(self) -> None:
        self.up.stop()
        _drop_db(PREFECT_DB)


def _hwm_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def up_run(url: str, stack: UpStack) -> dict[str, float | int]:
    """`innsync backup create` then `innsync backup restore --yes` in a second shell: both run
    on the stack's API (the restore back into the stack's database)."""
    py = sys.executable
    out = stack.root / "create.out"
    before = _count(url)
    t_backup, rss_backup = _timed([py, "-m", "innsync.cli", "backup", "create"], stack.env, out)
    api_after_backup = _hwm_mb(stack.api_pid())
    path = out.read_text().strip().splitlines()[-1]
    t_restore, rss_restore = _timed([py, "-m", "innsync.cli", "backup", "restore", path, "--yes"],
                                    stack.env)
    ok = _count(url) == before
    shutil.rmtree(path, ignore_errors=True)
    return {"up_backup_s": t_backup, "up_restore_s": t_restore,
            "up_backup_peak_rss_mb": rss_backup, "up_restore_peak_rss_mb": rss_restore,
            "up_api_peak_rss_mb_after_backup": api_after_backup,
            "up_api_peak_rss_mb_after_restore": _hwm_mb(stack.api_pid()),
            "up_restored_rows_match": ok}


def cli_run(url: str, stack: Stack) -> dict[str, float | int]:
    """`innsync backup create` then `innsync backup restore --yes` into a fresh database."""
    py = sys.executable
    out = stack.root / "create.out"
    t_backup, rss_backup = _timed([py, "-m", "innsync.cli", "backup", "create"],
                                  stack.env(url), out)
    path = out.read_text().strip().splitlines()[-1]
    our_url = _create_db("innsync_bench_cli")
    _migrate(our_url)
    t_restore, rss_restore = _timed([py, "-m", "innsync.cli", "backup", "restore", path, "--yes"],
                                    stack.env(our_url))
    ok = _count(our_url) == _count(url)
    _drop_db("innsync_bench_cli")
    shutil.rmtree(path, ignore_errors=True)
    return {"cli_backup_s": t_backup, "cli_restore_s": t_restore,
            "cli_backup_peak_rss_mb": rss_backup, "cli_restore_peak_rss_mb": rss_restore,
            "cli_restored_rows_match": ok}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reservations", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--repeat", type=int, default=3,
                        help="side-by-side rounds; medians are reported")
    parser.add_argument("--cli", action="store_true",
                        help="also through the CLI attached to a real Prefect server")
    parser.add_argument("--cli-no-stack", action="store_true",
                        help="also through the CLI with no stack (ephemeral Prefect server)")
    parser.add_argument("--up", action="store_true",
                        help="also through the CLI of a second shell with `innsync up` running")
    parser.add_argument("--worker", nargs=3, metavar=("MODE", "URL", "PATH"))
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    url = build(args.reservations, args.rebuild)
    stacks: list[tuple[str, Stack]] = []
    up: UpStack | None = None
    work = Path(tempfile.mkdtemp(prefix="innsync-bench-cli-"))
    try:
        if args.up:
            up = UpStack(work / "up", url)
        if args.cli:
            (work / "stack").mkdir()
            stacks.append(("cli", Stack(work / "stack", record=True)))
        if args.cli_no_stack:
            (work / "nostack").mkdir()
            stacks.append(("cli_no_stack", Stack(work / "nostack", record=False)))
        runs = []
        for _ in range(args.repeat):
            run = one_run(url)
            for label, stack in stacks:
                extra = cli_run(url, stack)
                run.update({k.replace("cli", label, 1): v for k, v in extra.items()})
            if up is not None:
                run.update(up_run(url, up))
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v
                              for k, v in run.items()}), flush=True)
            runs.append(run)
    finally:
        for _, stack in stacks:
            stack.stop()
        if up is not None:
            up.stop()
        shutil.rmtree(work, ignore_errors=True)
    labels = [label for label, _ in stacks] + (["up"] if up is not None else [])
    print(json.dumps(summarise(runs, labels), indent=2))


def one_run(url: str) -> dict[str, float | int | bool]:
    """One side-by-side round: pg_dump, our backup, pg_restore, our restore."""
    work = Path(tempfile.mkdtemp(prefix="innsync-bench-"))
    py = sys.executable
    try:
        dump = work / "bench.dump"
        t_dump, _ = _timed([_bin("pg_dump"), "-Fc", "-f", str(dump), url])
        ours = work / "ours"
        t_backup, rss_backup = _timed([py, __file__, "--worker", "backup", url, str(ours)])

        pgr_db, our_db = "innsync_bench_pgrestore", "innsync_bench_ours"
        pgr_url = _create_db(pgr_db)
        t_pgrestore, _ = _timed([_bin("pg_restore"), "-d", pgr_url, "--no-owner", str(dump)])
        our_url = _create_db(our_db)
        _migrate(our_url)
        t_restore, rss_restore = _timed([py, __file__, "--worker", "restore", our_url, str(ours)])
        ok = _count(our_url) == _count(url)
        _drop_db(pgr_db)
        _drop_db(our_db)
        run = {
            "reservations": _count(url), "pg_dump_s": t_dump, "backup_s": t_backup,
            "pg_restore_s": t_pgrestore, "restore_s": t_restore,
            "pg_dump_mb": dump.stat().st_size / 1e6, "backup_mb": _dir_size(ours) / 1e6,
            "backup_peak_rss_mb": rss_backup, "restore_peak_rss_mb": rss_restore,
            "restored_rows_match": ok,
        }
        return run
    finally:
        shutil.rmtree(work, ignore_errors=True)


def summarise(runs: list[dict[str, float | int | bool]],
              cli_labels: list[str] | None = None) -> dict[str, object]:
    """Medians over the rounds (the machine is shared: single timings are noisy)."""

    def med(key: str) -> float:
        return float(statistics.median(float(r[key]) for r in runs))

    def ratios(a: str, b: str) -> list[float]:
        return sorted(round(float(r[a]) / float(r[b]), 2) for r in runs)

    return {
        "rounds": len(runs), "reservations": runs[0]["reservations"],
        "pg_dump_s": round(med("pg_dump_s"), 2), "backup_s": round(med("backup_s"), 2),
        "backup_ratio": round(med("backup_s") / med("pg_dump_s"), 2),
        "backup_ratio_per_round": ratios("backup_s", "pg_dump_s"),
        "pg_restore_s": round(med("pg_restore_s"), 2), "restore_s": round(med("restore_s"), 2),
        "restore_ratio": round(med("restore_s") / med("pg_restore_s"), 2),
        "restore_ratio_per_round": ratios("restore_s", "pg_restore_s"),
        "pg_dump_mb": round(med("pg_dump_mb"), 1), "backup_mb": round(med("backup_mb"), 1),
        "size_ratio": round(med("backup_mb") / med("pg_dump_mb"), 2),
        "backup_peak_rss_mb": max(int(r["backup_peak_rss_mb"]) for r in runs),
        "restore_peak_rss_mb": max(int(r["restore_peak_rss_mb"]) for r in runs),
        "restored_rows_match": all(bool(r["restored_rows_match"]) for r in runs),
        **{k: v for label in cli_labels or [] for k, v in {
            f"{label}_backup_s": round(med(f"{label}_backup_s"), 2),
            f"{label}_backup_ratio": round(med(f"{label}_backup_s") / med("pg_dump_s"), 2),
            f"{label}_restore_s": round(med(f"{label}_restore_s"), 2),
            f"{label}_restore_ratio": round(med(f"{label}_restore_s") / med("pg_restore_s"), 2),
            f"{label}_backup_peak_rss_mb": max(int(r[f"{label}_backup_peak_rss_mb"])
                                               for r in runs),
            f"{label}_restore_peak_rss_mb": max(int(r[f"{label}_restore_peak_rss_mb"])
                                                for r in runs),
            f"{label}_restored_rows_match": all(bool(r[f"{label}_restored_rows_match"])
                                                for r in runs),
        }.items()},
        **({"up_api_peak_rss_mb": max(int(r["up_api_peak_rss_mb_after_restore"])
                                      for r in runs)} if "up" in (cli_labels or []) else {}),
    }


if __name__ == "__main__":
    main()
