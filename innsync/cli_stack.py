"""The running stack, as `innsync up` records it in $INNSYNC_HOME/stack.json.

`innsync up` writes where its Prefect server, API and database are (never a password; the
file is 0600) and removes the file when it stops cleanly. Every other CLI command in any
shell reads it, checks that the recorded Prefect server answers, and then runs its flows
against that server and database instead of starting an ephemeral Prefect server. A file
whose server does not answer (a killed stack) is reported in one line and ignored.
"""

from __future__ import annotations

import atexit
import json
import os
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

STACK_FILE = "stack.json"
#: How long the CLI waits for the recorded servers: an error path must stay fast.
CHECK_TIMEOUT = 2.0


class StackInfo(BaseModel):
    """What a second shell needs to use the running stack (no secrets)."""

    prefect_api_url: str
    api_url: str
    database_url: str | None = None
    pid: int
    started_at: datetime


def stack_path(home: Path) -> Path:
    return home / STACK_FILE


def without_password(url: str) -> str:
    """The URL with any password removed (the second shell supplies its own: env, .pgpass)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.password is None:
        return url
    return parsed._replace(password=None).render_as_string(hide_password=False)


def same_database(a: str, b: str) -> bool:
    """Whether two URLs name the same database (driver, password and spelling aside)."""
    from sqlalchemy.engine import make_url

    def key(url: str) -> tuple[object, ...]:
        u = make_url(url)
        backend = {"postgres": "postgresql"}.get(u.get_backend_name(), u.get_backend_name())
        return (backend, (u.host or "localhost").lower(), u.port or 5432,
                u.database, u.username, tuple(sorted((u.query or {}).items())))

    try:
        return key(a) == key(b)
    except Exception:  # noqa: BLE001 - an unparsable URL names no database we can match
        return False


def record_stack(home: Path, prefect_api_url: str, api_url: str,
                 database_url: str | None) -> Path:
    """Write the stack file (0600, atomically); it is removed when this process exits."""
    info = StackInfo(prefect_api_url=prefect_api_url, api_url=api_url,
                     database_url=without_password(database_url) if database_url else None,
                     pid=os.getpid(), started_at=datetime.now(UTC))
    path = stack_path(home)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(info.model_dump_json(indent=2))
    os.replace(tmp, path)
    atexit.register(remove_stack, home, os.getpid())
    return path


def remove_stack(home: Path, pid: int | None = None) -> None:
    """Remove the stack file (only the one `pid` wrote, when given)."""
    path = stack_path(home)
    info = read_stack(home)
    if pid is not None and info is not None and info.pid != pid:
        return
    with suppress(FileNotFoundError):
        path.unlink()


def read_stack(home: Path) -> StackInfo | None:
    """The recorded stack, or None (no file, or one that cannot be read)."""
    try:
        return StackInfo.model_validate(json.loads(stack_path(home).read_text()))
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prefect_answers(api_url: str, timeout: float = CHECK_TIMEOUT) -> bool:
    import httpx

    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def database_answers(url: str, timeout: float = CHECK_TIMEOUT) -> bool:
    import psycopg

    from db.engine import to_libpq_url

    try:
        with psycopg.connect(to_libpq_url(url), connect_timeout=max(1, int(timeout))):
            return True
    except psycopg.Error:
        return False


class Attachment(BaseModel):
    """The outcome of looking for a running stack."""

    stack: StackInfo | None = None
    #: One line for the user when a recorded stack could not be used.
    message: str | None = None


def find_stack(home: Path, *, use_database: bool) -> Attachment:
    """The running stack if its file exists and its servers answer, else why not."""
    info = read_stack(home)
    if info is None:
        return Attachment()
    where = stack_path(home)
    if not prefect_answers(info.prefect_api_url):
        stale = not _pid_alive(info.pid)
        if stale:
            with suppress(OSError):
                where.unlink()
        return Attachment(message=(
            f"the stack recorded in {where} (Prefect at {info.prefect_api_url}) does not "
            f"answer{'; its process is gone, file removed' if stale else ''}: "
            "running without it (ephemeral Prefect server)"))
    if use_database and info.database_url and not database_answers(info.database_url):
        return Attachment(message=(
            f"the stack recorded in {where} answers, but its database does not: running "
            "without it (ephemeral Prefect server, configured database)"))
    return Attachment(stack=info)
