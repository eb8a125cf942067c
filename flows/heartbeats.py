"""Sync flow runs end without waiting for their heartbeat thread (Prefect 3.9).

Prefect's sync flow engine (`FlowRunEngine.run_context`) joins the flow run's heartbeat
thread when the run ends, and that thread sleeps in steps of one second between its checks
of the stop flag: every sync flow run (backups, restores, verify, prune, the minute's
maintenance) ended up to a second after its work, measured 0.5-1.3 s of a 3 s backup through
the API (py-spy on the API process: `Thread.join` under `_send_heartbeats`). Prefect's async
engine does not join (`join_on_exit=False`): the thread stops by itself within that second
and starts no heartbeat once the stop flag is set. Sync runs get the same here; heartbeats
are sent exactly as before (the zombie-run automation relies on them).

Installed when the `flows` package is imported (every process that runs a flow imports its
module from it: API, CLI, task workers, the serve process's flow-run processes). Prefect is
pinned (pyproject.toml): if its engine no longer has this function, nothing is changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import prefect.flow_engine as _engine

_original: Any = getattr(_engine, "_send_heartbeats", None)


@contextmanager
def _send_heartbeats_without_join(engine: Any, join_on_exit: bool = True) -> Iterator[None]:
    """Prefect's heartbeat context, never joining its thread on exit."""
    with _original(engine, join_on_exit=False):
        yield


def install() -> bool:
    """Replace the engine's heartbeat context (idempotent); False when Prefect has none."""
    if _original is None:
        return False
    _engine._send_heartbeats = _send_heartbeats_without_join  # type: ignore[attr-defined]
    return True


install()
