"""Restores run one at a time per database (backups may run side by side): a second restore
is refused with a clear reason, and the database is left as it was."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.backup.conftest import make_backup


def test_a_second_restore_is_refused_while_one_runs(source_db: str, backup_root: Path) -> None:
    from db.backup.restore import (
        RESTORE_LOCK_NAMESPACE,
        RestoreInProgress,
        RestoreOptions,
        restore_staged,
    )
    from db.backup.verify import stage_backup

    store = make_backup(source_db, backup_root)
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute("UPDATE guests SET first_name = 'since the backup' WHERE id = 1")
    staged = stage_backup(store)
    try:
        with psycopg.connect(source_db) as running:  # the first restore, mid-load
            running.execute("SELECT pg_advisory_xact_lock(%s, 0)", (RESTORE_LOCK_NAMESPACE,))
            with pytest.raises(RestoreInProgress, match="another restore is running"):
                restore_staged(source_db, staged, RestoreOptions())
            running.rollback()
        with psycopg.connect(source_db) as conn:  # untouched by the refused one
            assert conn.execute("SELECT first_name FROM guests WHERE id = 1").fetchone()[0] \
                == "since the backup"
        restore_staged(source_db, staged, RestoreOptions())  # once it is done: goes ahead
    finally:
        staged.cleanup()
    with psycopg.connect(source_db) as conn:
        assert conn.execute("SELECT first_name FROM guests WHERE id = 1").fetchone()[0] \
            != "since the backup"
