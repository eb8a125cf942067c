"""`innsync up`: the whole stack in one process tree, stopped in order on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

console = Console()


@dataclass
class Service:
    """A child process the launcher owns."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        self.process = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C goes to us; we stop children in order
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


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
    path = home / "admin.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(plaintext + "\n")
    return plaintext


def wait_http(url: str, timeout: float = 60) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def run_up(api_host: str, api_port: int) -> None:
    """Start database, migrations and the API; print a summary; stop in order on Ctrl-C."""
    from db import migrate
    from db.engine import database_url, to_libpq_url
    from innsync.settings import get_settings

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    with console.status("starting the database and migrating..."):
        url = database_url()  # starts the embedded cluster when no URL is configured
        migrate.upgrade("head")
    admin_key = ensure_admin_key(settings.home)

    python = sys.executable
    db_env = {"INNSYNC_DATABASE_URL": url}
    services = [
        Service("api", [python, "-m", "innsync.cli", "api", "--host", api_host,
                        "--port", str(api_port), "--no-migrate"], db_env),
    ]
    log_dir = settings.home / "logs"
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        for svc in services:
            svc.start(log_dir)
        api_url = f"http://{api_host}:{api_port}"
        if not wait_http(f"{api_url}/api/health"):
            raise RuntimeError(f"the API did not come up; see {log_dir / 'api.log'}")
        embedded = settings.database_url is None
        console.rule("[bold green]innsync is up")
        console.print(f"  API          {api_url}/api   (docs: {api_url}/docs)")
        console.print(f"  database     {to_libpq_url(url).split('@')[-1]}"
                      + ("  [dim](embedded, data in " + str(settings.pgdata) + ")[/]" if embedded else ""))
        console.print(f"  backups      {settings.resolved_backup_root}")
        console.print(f"  logs         {log_dir}")
        if admin_key:
            console.print(f"  admin key    [bold]{admin_key}[/]  (shown once; also in "
                          f"{settings.home / 'admin.key'})")
        console.print("  Ctrl-C stops everything.")
        while not stopping:
            for svc in services:
                if not svc.alive():
                    raise RuntimeError(f"{svc.name} exited; see {log_dir / (svc.name + '.log')}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping...")
        for svc in reversed(services):
            svc.stop()
        from db.engine import get_engine

        get_engine().dispose()
        console.print("stopped.")
