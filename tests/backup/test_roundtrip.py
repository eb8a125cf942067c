"""Round trip, corruption, interruption and all-or-nothing restore on a real database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from db.backup.manifest import ManifestError
from db.backup.restore import SubsetNeedsTables
from db.backup.storage import Store
from db.backup.verify import BackupIncomplete, ChecksumMismatch, stage_backup, verify_backup
from tests.backup.conftest import data_dump, make_backup, restore_into

ROOT = Path(__file__).resolve().parents[2]


def test_round_trip_equals_pg_dump(source_db: str, scratch_db: Callable[[], str],
                                   backup_root: Path) -> None:
    before = data_dump(source_db)
    store = make_backup(source_db, backup_root)
    target = scratch_db()
    result = restore_into(target, store)
    assert result.tables["reservations"] == 500
    assert data_dump(target) == before
    with psycopg.connect(target, autocommit=True) as conn:  # sequences were reset
        conn.execute("INSERT INTO guests (first_name, last_name) VALUES ('New', 'Guest')")
        conn.execute("INSERT INTO system_backups (status) VALUES ('completed')")


def test_restore_replaces_existing_rows(source_db: str, backup_root: Path) -> None:
    before = data_dump(source_db)
    store = make_backup(source_db, backup_root)
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute("UPDATE guests SET first_name = 'changed' WHERE id = 1")
        conn.execute("DELETE FROM reservations WHERE id > 400")
        conn.execute("INSERT INTO guests (id, first_name, last_name) VALUES (9999, 'x', 'y')")
    restore_into(source_db, store)
    assert data_dump(source_db) == before


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_byte_in_any_file_refuses(source_db: str, scratch_db: Callable[[], str],
                                          backup_root: Path) -> None:
    store = make_backup(source_db, backup_root)
    target = scratch_db()
    empty = data_dump(target)
    files = sorted(Path(store.path).iterdir())
    assert any(f.name == "manifest.json" for f in files) and len(files) > 10
    for f in files:
        original = f.read_bytes()
        for offset in (0, len(original) // 2, len(original) - 1):
            _flip(f, offset)
            with pytest.raises(ManifestError):
                verify_backup(store)
            with pytest.raises(ManifestError):
                restore_into(target, store)
            f.write_bytes(original)
    assert data_dump(target) == empty
    verify_backup(store)


def test_writer_failure_leaves_nothing_complete(source_db: str, backup_root: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import db.backup.create as create

    real = create._write

    def failing(batches, columns, store, table, **kw):  # type: ignore[no-untyped-def]
        if table == "reservations":
            raise OSError("disk full (simulated)")
        return real(batches, columns, store, table, **kw)

    monkeypatch.setattr(create, "_write", failing)
    with pytest.raises(OSError):
        make_backup(source_db, backup_root)
    store = Store.open(str(backup_root / "b1"))
    assert not store.exists("manifest.json")
    # The failed backup's own new directory is removed (nothing half-written stays).
    assert not Path(store.path).exists()
    with pytest.raises(BackupIncomplete):
        verify_backup(store)


def _spawn(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ})


def test_backup_killed_midway_is_incomplete(source_db: str, backup_root: Path) -> None:
    proc = _spawn(f"""
        import sys, time
        import db.backup.create as create
        real = create._write
        def slow(batches, columns, store, table, **kw):
            out = real(batches, columns, store, table, **kw)
            print("WROTE", table, flush=True)
            time.sleep(60)
            return out
        create._write = slow
        from tests.backup.conftest import make_backup
        from pathlib import Path
        make_backup({source_db!r}, Path({str(backup_root)!r}))
    """)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("WROTE")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store.open(str(backup_root / "b1"))
    with pytest.raises(BackupIncomplete):
        stage_backup(store)


def test_restore_failing_midway_changes_nothing(source_db: str, backup_root: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_backup(source_db, backup_root)
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute("UPDATE guests SET first_name = 'after-backup' WHERE id = 2")
    before = data_dump(source_db)
    import db.backup.restore as restore

    real = restore.copy_file_into
    calls = {"n": 0}

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 8:
            raise RuntimeError("connection lost (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(restore, "copy_file_into", failing)
    with pytest.raises(RuntimeError):
        restore_into(source_db, store)
    assert data_dump(source_db) == before


def test_restore_killed_midway_changes_nothing(source_db: str, backup_root: Path) -> None:
    store = make_backup(source_db, backup_root)
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute("UPDATE guests SET first_name = 'after-backup' WHERE id = 2")
    before = data_dump(source_db)
    proc = _spawn(f"""
        import time
        import db.backup.restore as restore
        real = restore.copy_file_into
        n = [0]
        def slow(*a, **k):
            out = real(*a, **k)
            n[0] += 1
            if n[0] == 10:
                print("LOADED", flush=True)
                time.sleep(60)
            return out
        restore.copy_file_into = slow
        from db.backup.storage import Store
        from tests.backup.conftest import restore_into
        restore_into({source_db!r}, Store.open({store.path!r}))
    """)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("LOADED")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert data_dump(source_db) == before


def test_checksum_error_type(source_db: str, backup_root: Path) -> None:
    store = make_backup(source_db, backup_root, tables=["guests"])
    f = Path(store.path) / "guests.parquet"
    _flip(f, 100)
    with pytest.raises(ChecksumMismatch):
        verify_backup(store)


def test_big_table_path_rebuilds_constraints(source_db: str, scratch_db: Callable[[], str],
                                             backup_root: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import db.backup.restore as restore

    monkeypatch.setattr(restore, "REINDEX_ROWS", 100)  # guests and reservations take it
    store = make_backup(source_db, backup_root)
    target = scratch_db()
    before_schema = _schema(target)
    restore_into(target, store)
    assert data_dump(target) == data_dump(source_db)
    assert _schema(target) == before_schema  # every constraint and index is back
    with psycopg.connect(target, autocommit=True) as conn, pytest.raises(psycopg.Error):
        conn.execute("INSERT INTO reservations (property_id, guest_id, check_in, check_out) "
                     "VALUES (1, 424242, '2026-01-01', '2026-01-02')")


def _schema(url: str) -> list[str]:
    import subprocess

    from tests.backup.conftest import pg_bin

    out = subprocess.run([pg_bin("pg_dump", url), "--schema-only", url], check=True,
                         capture_output=True, text=True).stdout
    return sorted(line for line in out.splitlines()
                  if line.strip() and not line.startswith(("\\restrict", "\\unrestrict")))


def test_partial_restore_truncates_only_empty_dependents(
    source_db: str, scratch_db: Callable[[], str], backup_root: Path
) -> None:
    store = make_backup(source_db, backup_root, tables=["properties"])
    target = scratch_db()  # rooms, channels... reference properties and are empty here
    assert restore_into(target, store).tables == {"properties": 2}
    before = data_dump(source_db)
    with pytest.raises(SubsetNeedsTables) as err:  # dependents hold rows
        restore_into(source_db, store)
    assert {"room_types", "reservations", "channels"} <= set(err.value.needed)
    assert data_dump(source_db) == before
