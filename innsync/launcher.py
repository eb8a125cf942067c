"""`innsync up`: the whole stack in one process tree, stopped in order on Ctrl-C.

Embedded PostgreSQL (the app database and the Prefect server's `prefect` database), migrations,
`prefect server start`, the deployments served from one process, the API, and in demo mode
(no channel yet, or only the demo hotel's) the four partner simulators plus the demo hotel.
With PREFECT_API_URL / INNSYNC_DATABASE_URL set, those servers are used instead.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from innsync.settings import Settings

console = Console()

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Demo mode: every simulator gets one new booking this often, so pulls keep finding work.
SIM_BOOKING_EVERY_SECONDS = 30.0
FIRST_PULL_DEPLOYMENT = "sync-all-bookings/every-minute"


@dataclass
class Service:
    """A child process the launcher owns (in its own process group)."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    #: Builds the argv anew at each (re)start, when it must differ per start.
    argv_factory: Callable[[], list[str]] | None = None

    def start(self, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        if self.argv_factory is not None:
            self.argv = self.argv_factory()
        self.process = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C goes to us; we stop children in order
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the child's whole process group (flow-run subprocesses too), then SIGKILL."""
        if self.process is None:
            return
        pgid = self.process.pid  # start_new_session: the child leads its own group
        _signal_group(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            self.process.wait()
        # Grandchildren that ignored SIGTERM (or outlived their parent) go too.
        deadline = time.monotonic() + 5
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def ensure_admin_key(home: Path) -> str | None:
    """On first start (no keys yet) create an admin key; saved 0600 in $INNSYNC_HOME."""
    from sqlalchemy import func, select

    from api.auth import create_api_key
    from db.engine import session_scope
    from db.models import ApiKey

    with session_scope() as session:
        if session.scalar(select(func.count()).select_from(ApiKey)):
            return None
        _, plaintext = create_api_key(session, "admin (first start)", "admin")
    _write_owner_only(home / "admin.key", plaintext)
    return plaintext


def ensure_cli_key(home: Path) -> Path:
    """$INNSYNC_HOME/cli.key (0600) holds an active admin key for this machine's CLI: kept
    while it is active, else a new one replaces it (older CLI keys revoked). Whoever can
    read it can already read secret.key and the database settings beside it."""
    from api.auth import create_api_key, lookup_key
    from db.engine import session_scope
    from db.repositories.api_keys import revoke_named
    from innsync.cli_remote import CLI_KEY_FILE, CLI_KEY_NAME

    path = home / CLI_KEY_FILE
    try:
        current = path.read_text().strip()
    except OSError:
        current = ""
    with session_scope() as session:
        principal = lookup_key(session, current) if current else None
        if principal is not None and principal.role == "admin" and not principal.scoped:
            return path
        revoke_named(session, CLI_KEY_NAME)
        _, plaintext = create_api_key(session, CLI_KEY_NAME, "admin")
    _write_owner_only(path, plaintext)
    return path


def _write_owner_only(path: Path, text: str) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)


class Supervisor:
    """Once everything is up, a child that dies is restarted (with a growing pause), so a
    crashed API or serve process never leaves innsync half-running; a child that keeps
    dying (RESTART_LIMIT times within RESTART_WINDOW seconds) stops the whole stack."""

    RESTART_LIMIT = 5
    RESTART_WINDOW = 300.0

    def __init__(self, services: list[Service], log_dir: Path,
                 clock: Callable[[], float] = time.monotonic,
                 before_restart: dict[str, Callable[[], None]] | None = None) -> None:
        self.services = services
        self.log_dir = log_dir
        self.clock = clock
        #: Clean-up to run before a child is started again (e.g. the serve process's runs).
        self.before_restart = before_restart or {}
        self.restarts: dict[str, list[float]] = {}
        self.not_before: dict[str, float] = {}

    def tick(self) -> list[str]:
        """Restart dead children whose pause is over; returns the names restarted."""
        restarted: list[str] = []
        now = self.clock()
        for svc in self.services:
            if svc.alive():
                continue
            if now < self.not_before.get(svc.name, 0.0):
                continue
            recent = [t for t in self.restarts.get(svc.name, []) if now - t < self.RESTART_WINDOW]
            if len(recent) >= self.RESTART_LIMIT:
                raise RuntimeError(
                    f"{svc.name} died {len(recent)} times in {self.RESTART_WINDOW:.0f} s; "
                    f"see {self.log_dir / (svc.name + '.log')}")
            code = svc.process.returncode if svc.process is not None else None
            console.print(f"[yellow]{svc.name} exited (code {code}); restarting[/]")
            svc.stop(timeout=5)  # reap what is left of its process group
            hook = self.before_restart.get(svc.name)
            if hook is not None:
                try:
                    hook()
                except Exception as exc:  # noqa: BLE001 - a failed clean-up must not stop us
                    console.print(f"[yellow]{svc.name}: clean-up before restart failed: {exc}[/]")
            svc.start(self.log_dir)
            recent.append(now)
            self.restarts[svc.name] = recent
            self.not_before[svc.name] = now + min(30.0, 2.0 ** len(recent))
            restarted.append(svc.name)
        return restarted


class Stopped(Exception):
    """Ctrl-C (or SIGTERM) arrived while starting up."""


def wait_http(url: str, timeout: float = 60,
              check: Callable[[], None] | None = None) -> bool:
    """Poll `url` until it answers below 500; `check` raises to abort (child died, Ctrl-C)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check is not None:
            check()
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port yet."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def prefect_database_url() -> str | None:
    """The Prefect server's database: configured, else `prefect` in the embedded cluster,
    else None (Prefect's own SQLite under its PREFECT_HOME)."""
    from innsync.settings import get_settings

    configured = get_settings().prefect_server_database_url
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    if get_settings().database_url is not None:
        return None
    from db.embedded import embedded_database_url

    uri = embedded_database_url("prefect")  # postgresql://postgres:@/prefect?host=<pgdata>
    return "postgresql+asyncpg://" + uri.split("://", 1)[1]


def prefect_server_env(home: Path, db_url: str | None) -> dict[str, str]:
    """Environment of `prefect server start`: its home, its database, flow-run retention."""
    from innsync.settings import get_settings

    settings = get_settings()
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # A 30 s schedule makes ~2,900 runs a day: let the server's vacuum delete old
        # finished flow runs (with their logs and artifacts) as well as old events.
        # An operator's explicit choice wins over ours.
        "PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": (
            settings.prefect_vacuum_enabled or "events,flow_runs"
        ),
        "PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD": (
            settings.prefect_vacuum_retention or str(int(settings.run_retention.total_seconds()))
        ),
    }
    if db_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = db_url
    return env


def demo_mode() -> bool:
    """No channel configured yet, or only the demo hotel's (simulators stand in)."""
    from db.demo import DEMO_CODE
    from db.engine import session_scope
    from db.repositories.demo import count_channels_outside

    with session_scope() as session:
        return count_channels_outside(session, DEMO_CODE) == 0


def seed_demo_if_missing(url: str, reservations: int, properties: int = 1) -> int | None:
    """Create the demo hotel(s) unless one exists; returns the reservations when created."""
    from db.demo import DemoExistsError, seed_demo

    try:
        return seed_demo(url, reservations=reservations, properties=properties).reservations
    except DemoExistsError:
        return None


def point_demo_channels(first_port: int, host: str = "127.0.0.1") -> None:
    """Aim the demo channels at simulators served from `first_port` on (server.ORDER)."""
    from channels.simulators.server import ORDER
    from db.demo import DEMO_CODE
    from db.engine import session_scope
    from db.repositories.accounts import update_account_config
    from db.repositories.channels import update_channel_config
    from db.repositories.demo import accounts_of_property, channels_of_property

    wanted = {str(ch): f"http://{host}:{first_port + i}" for i, ch in enumerate(ORDER)}
    with session_scope() as session:
        for row in accounts_of_property(session, DEMO_CODE):
            endpoint = wanted.get(row.channel_name)
            if endpoint is not None and row.endpoint != endpoint:
                update_account_config(session, row.id, {"endpoint": endpoint})
        for row in channels_of_property(session, DEMO_CODE):  # a demo from before accounts
            endpoint = wanted.get(row.channel_name)
            if endpoint is not None and row.endpoint is not None and row.endpoint != endpoint:
                update_channel_config(session, row.id, {"endpoint": endpoint})


def trigger_first_pull(prefect_api: str, timeout: float = 60,
                       check: Callable[[], None] | None = None) -> bool:
    """Start one booking pull at once (the schedule's first run is up to a minute away)."""
    import httpx

    flow_name, name = FIRST_PULL_DEPLOYMENT.split("/")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # until the serve process registered its deployments
        if check is not None:
            check()
        try:
            found = httpx.get(f"{prefect_api}/deployments/name/{flow_name}/{name}", timeout=5)
            if found.status_code == 200:
                created = httpx.post(
                    f"{prefect_api}/deployments/{found.json()['id']}/create_flow_run",
                    json={}, timeout=5,
                )
                return created.status_code < 300
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def add_sim_bookings(first_port: int, host: str = "127.0.0.1", count: int = 1,
                     hotel: int = 0) -> None:
    """New bookings at each simulator, at its account's hotel `hotel` (best effort; a busy
    simulator is skipped)."""
    import httpx

    from channels.simulators.catalog import hotel_catalog
    from channels.simulators.server import ORDER

    for i, channel in enumerate(ORDER):
        try:
            httpx.post(f"http://{host}:{first_port + i}/_sim/bookings",
                       params={"count": count, "hotel": hotel_catalog(channel, hotel)["hotel_id"]},
                       timeout=2)
        except httpx.HTTPError:
            pass


def heartbeat_env(seconds: int) -> dict[str, str]:
    """Flow-run heartbeats for every flow process (Prefect 3.9 name and the 3.8 one)."""
    return {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(seconds),
            "PREFECT_RUNNER_HEARTBEAT_FREQUENCY": str(seconds)}


def recover(prefect_api: str, own_server: bool) -> list[str]:
    """Before serving: runs left by a killed stack are closed, the automations exist.

    With its own Prefect server, every flow run still Pending/Running was executed by the
    previous, dead serve process: it is set Crashed at once (frees its concurrency slot).
    The reaper then closes running sync logs and backups whose process or run is gone.
    Problems are reported, never fatal: the stack still comes up."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.automations import ensure_automations
    from innsync.reaper import crash_orphan_flow_runs, crash_overdue_task_runs, reap

    lines = []
    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        if own_server:
            try:
                crashed = crash_orphan_flow_runs("innsync up restarted: the process that ran "
                                                 "this flow run is gone")
                if crashed:
                    lines.append(f"recovery: {crashed} flow run(s) of the last run marked Crashed")
                tasks = crash_overdue_task_runs(every=True)
                if tasks:
                    lines.append(f"recovery: {tasks} background task run(s) of the last run "
                                 "marked Crashed")
            except Exception as exc:
                lines.append(f"recovery: could not check old flow runs ({exc})")
        try:
            report = reap()
            if report.sync_logs or report.backups or report.removed_paths:
                lines.append(f"recovery: closed {len(report.sync_logs)} sync log(s) and "
                             f"{len(report.backups)} backup(s) left running; removed "
                             f"{len(report.removed_paths)} stray path(s)")
        except Exception as exc:
            lines.append(f"recovery: the reaper failed ({exc})")
        try:
            for name, outcome in ensure_automations().items():
                lines.append(f"automation '{name}': "
                             f"{'ready' if not outcome.startswith('skipped') else outcome}")
        except Exception as exc:
            lines.append(f"automations: not created ({exc})")
    return lines


def worker_name(index: int) -> str:
    """The launcher's name (and log file) of its `index`-th serve process."""
    return "deployments" if index == 0 else f"deployments-{index + 1}"


def pull_worker_name(index: int) -> str:
    """The launcher's name (and log file) of its `index`-th pull worker."""
    return "pull-worker" if index == 0 else f"pull-worker-{index + 1}"


def _crash_served_runs(prefect_api: str) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from innsync.reaper import crash_orphan_flow_runs

    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        crashed = crash_orphan_flow_runs(
            "the serve process that ran this flow run died; innsync up restarted it",
            deployed_only=True)
    if crashed:
        console.print(f"  {crashed} flow run(s) of the dead serve process marked Crashed")


@dataclass
class UpOptions:
    """What `innsync up` starts and where."""

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    prefect_port: int = 4200
    sim_port: int = 8100
    demo: bool = True
    demo_reservations: int = 2000
    #: Demo hotels (a group); each simulated partner account hosts as many.
    demo_properties: int = 1
    serve: bool = True
    #: Serve processes sharing the deployments' runs (each run is taken by one of them:
    #: Prefect refuses a second PENDING) and pull workers sharing the booking cycle's
    #: batches (each background task run goes to one of them).
    workers: int = 1


def run_up(api_host: str = "127.0.0.1", api_port: int = 8000,
           options: UpOptions | None = None) -> None:
    """Start everything, print a summary, stop in reverse order on Ctrl-C or SIGTERM."""
    opts = options or UpOptions(api_host=api_host, api_port=api_port)
    from db import migrate
    from db.engine import database_url
    from innsync.settings import get_settings

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    log_dir = settings.home / "logs"
    external_prefect = settings.prefect_api_url
    wanted_ports = [(opts.api_host, opts.api_port, "--api-port")]
    if not external_prefect:
        wanted_ports.append(("127.0.0.1", opts.prefect_port, "--prefect-port"))
    for host, port, flag in wanted_ports:
        if not port_free(host, port):
            raise RuntimeError(f"port {port} is in use; choose another with {flag}")

    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    services: list[Service] = []

    def check() -> None:
        if stopping:
            raise Stopped
        for svc in services:
            if not svc.alive():
                raise RuntimeError(f"{svc.name} exited; see {log_dir / (svc.name + '.log')}")

    python = sys.executable
    try:
        with console.status("starting the database and migrating..."):
            url = database_url()  # starts the embedded cluster when no URL is configured
            migrate.upgrade("head")
            prefect_db = None if external_prefect else prefect_database_url()
        check()
        admin_key = ensure_admin_key(settings.home)
        ensure_cli_key(settings.home)
        demo = opts.demo and demo_mode()
        if demo:
            busy = [p for p in range(opts.sim_port, opts.sim_port + 4)
                    if not port_free("127.0.0.1", p)]
            if busy:
                raise RuntimeError(f"simulator port(s) {busy} in use; choose --sim-port "
                                   "or run with --no-demo")
        prefect_home = settings.home / "prefect"
        prefect_api = external_prefect or f"http://127.0.0.1:{opts.prefect_port}/api"
        client_env = {
            "INNSYNC_DATABASE_URL": url,
            "PREFECT_API_URL": prefect_api,
            # Client side: where flow results are stored (API and serve process share it).
            "PREFECT_HOME": str(settings.prefect_home or prefect_home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            **heartbeat_env(settings.heartbeat_seconds),
        }
        if not external_prefect:
            services.append(Service(
                "prefect-server",
                [python, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                 "--port", str(opts.prefect_port)],
                prefect_server_env(prefect_home, prefect_db),
            ))
            services[-1].start(log_dir)
        seeded: int | None = None
        if demo:
            services.append(Service(
                "simulators", [],
                # New ids on every (re)start: bookings stored by an earlier run never collide.
                argv_factory=lambda: [python, "-m", "innsync.cli", "simulate", "--channel", "all",
                                      "--port", str(opts.sim_port),
                                      "--id-offset", str(int(time.time()) * 1000),
                                      "--hotels", str(opts.demo_properties)],
            ))
            services[-1].start(log_dir)
            with console.status(f"seeding the demo hotel ({opts.demo_reservations} "
                                "reservations)..."):
                seeded = seed_demo_if_missing(url, opts.demo_reservations,
                                              opts.demo_properties)
                point_demo_channels(opts.sim_port)
        with console.status("starting the Prefect server..."):
            if not wait_http(f"{prefect_api}/health", timeout=180, check=check):
                raise RuntimeError(f"the Prefect server did not come up at {prefect_api}; "
                                   f"see {log_dir / 'prefect-server.log'}")
        with console.status("recovering from the last stop (reaper, automations)..."):
            recovery = recover(prefect_api, own_server=not external_prefect)
        if opts.serve:
            for worker in range(opts.workers):
                services.append(Service(
                    worker_name(worker), [python, "-m", "deployments.serve"],
                    # Results of deployment runs are kept, so `wait=true` API calls can read
                    # them; the every-minute cycle starts one pull-batch run per batch.
                    {**client_env, "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
                     "INNSYNC_RUN_VIA_DEPLOYMENTS": "1",
                     # the booking cycle hands its batches to the pull workers below
                     "INNSYNC_BACKGROUND_TASKS": "1",
                     # Prefect's default (10 s) delays every API-started run by up to that.
                     "PREFECT_RUNNER_POLL_FREQUENCY": str(settings.runner_poll_seconds)},
                ))
                services[-1].start(log_dir)
            # Webhook fetches start here at once (flows/background.py), no poll, no new
            # process; the cycle's batches likewise on the pull workers, never delaying them.
            task_env = {**client_env, "INNSYNC_RUN_VIA_DEPLOYMENTS": "1",
                        # its task runs log outside a flow run for a moment; nothing is lost
                        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore"}
            services.append(Service(
                "task-worker", [python, "-m", "deployments.task_worker", "--tasks", "webhooks"],
                task_env))
            services[-1].start(log_dir)
            for worker in range(opts.workers):
                services.append(Service(
                    pull_worker_name(worker),
                    [python, "-m", "deployments.task_worker", "--tasks", "pulls"], task_env))
                services[-1].start(log_dir)
        services.append(Service(
            "api",
            [python, "-m", "innsync.cli", "api", "--host", opts.api_host,
             "--port", str(opts.api_port), "--no-migrate"],
            {**client_env, "INNSYNC_RUN_VIA_DEPLOYMENTS": "1" if opts.serve else "0",
             "INNSYNC_BACKGROUND_TASKS": "1" if opts.serve else "0"},
        ))
        services[-1].start(log_dir)
        api_url = f"http://{opts.api_host}:{opts.api_port}"
        with console.status("starting the API and serving deployments..."):
            if not wait_http(f"{api_url}/api/health", timeout=90, check=check):
                raise RuntimeError(f"the API did not come up; see {log_dir / 'api.log'}")
            if demo and opts.serve:
                trigger_first_pull(prefect_api, timeout=90, check=check)
        _summary(opts, api_url, prefect_api, url, settings, log_dir, admin_key, demo, seeded,
                 external_prefect is not None)
        from innsync.cli_stack import record_stack  # a second shell's CLI attaches to us

        record_stack(settings.home, prefect_api, api_url, url)  # removed when we exit
        for line in recovery:
            console.print(f"  [dim]{line}[/]")
        next_booking = time.monotonic() + SIM_BOOKING_EVERY_SECONDS
        sim_ticks = 0
        # The dead serve process's runs would hold their deployments' concurrency slots
        # (CANCEL_NEW then cancels every later run): close them first. Only with one serve
        # process: with several, the others' live runs look the same from here, and a dead
        # one's runs are crashed by the heartbeat automation (deployments/automations.py).
        supervisor = Supervisor(
            services, log_dir,
            before_restart={} if external_prefect or opts.workers > 1 else {
                "deployments": lambda: _crash_served_runs(prefect_api),
            })
        while True:
            if stopping:
                raise Stopped
            supervisor.tick()
            if demo and time.monotonic() >= next_booking:
                # One booking per partner each time, the group's hotels taking turns.
                add_sim_bookings(opts.sim_port, hotel=sim_ticks % opts.demo_properties)
                sim_ticks += 1
                next_booking = time.monotonic() + SIM_BOOKING_EVERY_SECONDS
            time.sleep(0.5)
    except (Stopped, KeyboardInterrupt):
        pass
    finally:
        # Further Ctrl-C presses must not interrupt the ordered shutdown.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        console.print("stopping...")
        for svc in reversed(services):
            svc.stop()
        from db.engine import get_engine

        get_engine().dispose()
        console.print("stopped.")


def _summary(opts: UpOptions, api_url: str, prefect_api: str, url: str, settings: Settings,
             log_dir: Path, admin_key: str | None, demo: bool, seeded: int | None,
             external_prefect: bool) -> None:
    """The startup summary: where everything is."""
    from urllib.parse import unquote

    from db.engine import to_libpq_url

    embedded = settings.database_url is None
    ui = prefect_api.removesuffix("/api")
    console.rule("[bold green]innsync is up")
    console.print(f"  API          {api_url}/api   (docs: {api_url}/docs)")
    console.print(f"  Prefect UI   {ui}" + ("  [dim](configured server)[/]" if external_prefect
                                           else ""))
    console.print(f"  database     {unquote(to_libpq_url(url).split('@')[-1])}"
                  + (f"  [dim](embedded, data in {settings.pgdata})[/]" if embedded else ""))
    console.print(f"  data dir     {settings.home}")
    console.print(f"  backups      {settings.resolved_backup_root}")
    console.print(f"  logs         {log_dir}")
    if demo:
        last = opts.sim_port + 3
        what = f"seeded with {seeded} reservations" if seeded is not None else "already there"
        console.print(f"  demo         hotel {what}; partner simulators on ports "
                      f"{opts.sim_port}-{last}; bookings are pulled every minute "
                      f"(see {ui}/runs)")
    if admin_key:
        console.print(f"  admin key    [bold]{admin_key}[/]  (shown once; also in "
                      f"{settings.home / 'admin.key'})")
    console.print("  Ctrl-C stops everything.")
