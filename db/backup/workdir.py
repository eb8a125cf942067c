"""Scratch directories for decrypted or downloaded backup files.

Each lives under `$INNSYNC_HOME/scratch` (0700), is owner-only (0700, files 0600) and is
named after the process that made it: a run killed with SIGKILL cannot remove its own, so
every new one first removes those whose process is gone (the next start cleans up).
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from db.backup.storage import make_private_dirs


def scratch_root() -> Path:
    from innsync.settings import get_settings

    return get_settings().home / "scratch"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(root: Path | None = None) -> list[str]:
    """Remove scratch directories whose process has exited; their names."""
    root = root or scratch_root()
    removed: list[str] = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return removed
    for entry in entries:
        try:
            pid = int(entry.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
    return removed


def make_workdir(prefix: str = "restore") -> str:
    """A new private scratch directory (stale ones of dead processes removed first)."""
    root = scratch_root()
    make_private_dirs(root)
    os.chmod(root, 0o700)
    clean_stale(root)
    path = root / f"{prefix}-{os.getpid()}-{secrets.token_hex(6)}"
    os.mkdir(path, 0o700)
    return str(path)


def private_file(path: str) -> int:
    """Open `path` for writing, created owner-only (0600); returns the descriptor."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
