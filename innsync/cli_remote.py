"""Commands that run on the running stack's API instead of in the CLI's own process.

A backup or restore run in the CLI's process pays for importing Prefect, pandas and pyarrow
and for setting up and finishing a flow run's client before and after the work itself
(bench/backup.py, 300,000 reservations: 6.0 s and ~360 MB in the CLI's process, 2.9 s and
~100 MB sent to a warm stack). When `innsync up` runs on this machine (its stack.json answers)
and uses the same database as this CLI, the `innsync backup` commands send the work to the
stack's API, whose process has all of that loaded already; the flow run is the same (the same
`flows/backup` code, recorded on the stack's Prefect server, audited under the CLI key).

The CLI authenticates with the admin key `innsync up` keeps in $INNSYNC_HOME/cli.key (0600,
`launcher.ensure_cli_key`). With no stack, another database, no readable key, or an API that
cannot be reached or refuses the key, nothing was done there and the command runs here as
before (one line says why). Only this module imports httpx for it: no Prefect import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from innsync.cli_stack import StackInfo

#: The admin key of this machine's CLI, kept by `innsync up` (launcher.ensure_cli_key).
CLI_KEY_FILE = "cli.key"
CLI_KEY_NAME = "innsync CLI (this machine)"
#: The longest a backup or restore may take on the stack before the CLI stops waiting.
WAIT_SECONDS = 6 * 3600.0


@dataclass(frozen=True)
class StackAPI:
    url: str
    key: str


class NotOnStack(Exception):
    """Nothing was done on the stack (unreachable, key refused): run here instead."""


class RemoteFailed(Exception):
    """The stack ran the command and it failed (or refused it): do not run it again here."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.details = details


class _Attached:
    stack: StackInfo | None = None


def remember(stack: StackInfo | None) -> None:
    """The stack the CLI attached to with the same database as its own (None: not shared)."""
    _Attached.stack = stack


def stack_api(home: Path) -> StackAPI | None:
    """Where to send work: the attached stack's API and this machine's CLI key, or None."""
    stack = _Attached.stack
    if stack is None:
        return None
    try:
        key = (home / CLI_KEY_FILE).read_text().strip()
    except OSError:
        return None
    return StackAPI(stack.api_url.rstrip("/"), key) if key else None


def call(api: StackAPI, method: str, path: str, body: dict[str, Any] | None = None,
         params: dict[str, Any] | None = None, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
    """Ask the stack's API and return its JSON answer; NotOnStack when the request was not
    taken (no connection, key refused), RemoteFailed for any other error answer."""
    import httpx

    try:
        answer = httpx.request(method, f"{api.url}/api{path}", json=body, params=params,
                               headers={"X-API-Key": api.key},
                               timeout=httpx.Timeout(timeout, connect=5.0))
    except httpx.ConnectError as exc:
        raise NotOnStack(f"the stack's API at {api.url} cannot be reached ({exc})") from exc
    except httpx.HTTPError as exc:  # sent: the run may be going on there, never run it twice
        raise RemoteFailed(f"no answer from the stack's API at {api.url} "
                           f"({type(exc).__name__}); the run may still be going on there: "
                           "see `innsync backup list`") from exc
    if answer.status_code in (401, 403):
        raise NotOnStack(f"the stack's API at {api.url} refused $INNSYNC_HOME/{CLI_KEY_FILE} "
                         f"(HTTP {answer.status_code}); `innsync up` renews it when it starts")
    try:
        data = answer.json()
    except ValueError:
        data = {}
    if answer.status_code >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        error = error if isinstance(error, dict) else {}
        raise RemoteFailed(str(error.get("message") or f"HTTP {answer.status_code}: "
                               f"{answer.text[:300]}"), error.get("details"))
    if not isinstance(data, dict):
        raise RemoteFailed(f"the stack's answer (HTTP {answer.status_code}) is not an object")
    return data
