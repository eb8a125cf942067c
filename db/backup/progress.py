"""Per-table progress of backups and restores, for whoever runs them in this process.

The engine's tasks run in threads of the process that runs the flow (the CLI, the API's
worker, the serve process): a listener set here (the CLI's progress bar) hears every table
as it finishes. No listener: nothing happens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from pydantic import BaseModel


class ProgressEvent(BaseModel):
    """`plan` (tables known, `total` of them) or `table` (one table done, its rows)."""

    kind: str
    table: str | None = None
    rows: int = 0
    total: int | None = None


_lock = threading.Lock()
_listener: Callable[[ProgressEvent], None] | None = None


def set_listener(listener: Callable[[ProgressEvent], None] | None) -> None:
    global _listener
    with _lock:
        _listener = listener


def report(kind: str, table: str | None = None, rows: int = 0, total: int | None = None) -> None:
    with _lock:
        listener = _listener
    if listener is not None:
        try:
            listener(ProgressEvent(kind=kind, table=table, rows=rows, total=total))
        except Exception:  # noqa: BLE001 - a progress display never breaks a backup
            pass
