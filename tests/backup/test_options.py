"""skipExisting, validateData, encryption, excluded tables, readability by DuckDB."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from db.backup.create import manifest_body
from db.backup.crypto import BackupDecryptionError, key_from_secret
from db.backup.manifest import dump_manifest, load_manifest
from db.backup.restore import ValidationFailed
from db.backup.verify import verify_backup
from tests.backup.conftest import data_dump, make_backup, restore_into


def _one(url: str, query: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
        return row[0] if row else None


def test_skip_existing_keeps_current_rows(source_db: str, backup_root: Path) -> None:
    store = make_backup(source_db, backup_root)
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute("UPDATE guests SET first_name = 'kept' WHERE id = 1")
        conn.execute("DELETE FROM reservations WHERE id BETWEEN 10 AND 19")
        conn.execute("INSERT INTO guests (id, first_name, last_name) VALUES (5000, 'new', 'x')")
    restore_into(source_db, store, skip_existing=True)
    assert _one(source_db, "SELECT first_name FROM guests WHERE id = 1") == "kept"
    assert _one(source_db, "SELECT count(*) FROM reservations") == 500
    assert _one(source_db, "SELECT count(*) FROM guests WHERE id = 5000") == 1


def _rewrite(store_path: Path, table: str, change: Callable[[pa.Table], pa.Table]) -> None:
    """Tamper with a table file *and* re-seal the manifest (a well-formed but bad backup)."""
    manifest_path = store_path / "manifest.json"
    body = load_manifest(manifest_path.read_bytes())
    body.pop("_mac")
    path = store_path / body["tables"][table]["file"]
    data = change(pq.read_table(path))
    pq.write_table(data, path)
    from db.backup.storage import Store

    sha, size = Store.open(str(store_path)).sha256(path.name)
    body["tables"][table].update(sha256=sha, bytes=size, rows=data.num_rows)
    manifest_path.write_bytes(dump_manifest(body))


def test_validate_data_reports_every_problem(source_db: str, scratch_db: Callable[[], str],
                                            backup_root: Path) -> None:
    store = make_backup(source_db, backup_root)

    def bad_reservations(t: pa.Table) -> pa.Table:
        adults = pc.if_else(pc.equal(t["id"], 5), -3, t["adults"]).cast(pa.int32())
        guest = pc.if_else(pc.equal(t["id"], 6), 777777, t["guest_id"])
        t = t.set_column(t.schema.get_field_index("adults"), t.schema.field("adults"), adults)
        t = t.set_column(t.schema.get_field_index("guest_id"), t.schema.field("guest_id"), guest)
        return pa.concat_tables([t, t.slice(0, 1)])  # a duplicate primary key

    def bad_guests(t: pa.Table) -> pa.Table:
        name = pc.if_else(pc.equal(t["id"], 1), "x" * 150, t["first_name"])
        return t.set_column(1, t.schema.field("first_name"), name)

    _rewrite(Path(store.path), "reservations", bad_reservations)
    _rewrite(Path(store.path), "guests", bad_guests)
    target = scratch_db()
    before = data_dump(target)
    with pytest.raises(ValidationFailed) as info:
        restore_into(target, store, validate_data=True)
    found = {(p.table, p.check) for p in info.value.problems}
    assert {("reservations", "check"), ("reservations", "unique"),
            ("guests", "length")} <= found, found
    assert data_dump(target) == before
    # Without validation the first error still rolls everything back.
    with pytest.raises(Exception):  # noqa: B017
        restore_into(target, store)
    assert data_dump(target) == before


def test_validate_data_finds_orphans_of_a_partial_restore(
    source_db: str, scratch_db: Callable[[], str], backup_root: Path
) -> None:
    store = make_backup(source_db, backup_root, tables=["reservations"])
    target = scratch_db()
    with pytest.raises(ValidationFailed) as info:
        restore_into(target, store, validate_data=True, skip_existing=True)
    checks = {(p.table, p.check, p.column) for p in info.value.problems}
    assert ("reservations", "foreign_key", "guest_id") in checks
    assert ("reservations", "foreign_key", "property_id") in checks
    assert _one(target, "SELECT count(*) FROM reservations") == 0


def test_validate_data_passes_a_good_backup(source_db: str, scratch_db: Callable[[], str],
                                           backup_root: Path) -> None:
    store = make_backup(source_db, backup_root)
    target = scratch_db()
    restore_into(target, store, validate_data=True)
    assert data_dump(target) == data_dump(source_db)


def test_encrypted_with_passphrase(source_db: str, scratch_db: Callable[[], str],
                                   backup_root: Path) -> None:
    store = make_backup(source_db, backup_root, passphrase="correct horse battery")
    files = [p.name for p in Path(store.path).iterdir()]
    assert "guests.parquet.enc" in files and "guests.parquet" not in files
    assert b"Generated" not in (Path(store.path) / "guests.parquet.enc").read_bytes()
    target = scratch_db()
    before = data_dump(target)
    with pytest.raises(BackupDecryptionError, match="wrong key or passphrase"):
        restore_into(target, store, passphrase="wrong horse")
    with pytest.raises(BackupDecryptionError):
        restore_into(target, store)
    assert data_dump(target) == before
    restore_into(target, store, passphrase="correct horse battery")
    assert data_dump(target) == data_dump(source_db)


def test_encrypted_with_service_key(source_db: str, backup_root: Path) -> None:
    from db.backup.create import BackupOptions, run_backup
    from db.backup.storage import Store

    store = Store.open(str(backup_root / "svc"))
    key = key_from_secret("a-service-secret-of-some-length")
    run_backup(source_db, store, BackupOptions(encrypt=True, tables=["guests"]), secret_key=key)
    verify_backup(store, secret_key=key)
    with pytest.raises(BackupDecryptionError):
        verify_backup(store, secret_key=key_from_secret("another-secret-entirely-here"))


def test_excluded_tables_are_left_alone(source_db: str, backup_root: Path) -> None:
    store = make_backup(source_db, backup_root, include_audit_logs=False,
                        include_system_settings=False, compress=False)
    manifest = json.loads((Path(store.path) / "manifest.json").read_text())["body"]
    assert "audit_logs" not in manifest["tables"] and "system_settings" not in manifest["tables"]
    assert pq.ParquetFile(Path(store.path) / "guests.parquet").metadata.row_group(0).column(
        0).compression == "UNCOMPRESSED"
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute("INSERT INTO audit_logs (actor, action, entity_type) VALUES ('a', 'b', 'c')")
        conn.execute("UPDATE system_settings SET value = '42' WHERE key = 's'")
    restore_into(source_db, store)
    assert _one(source_db, "SELECT count(*) FROM audit_logs") == 2
    assert _one(source_db, "SELECT value FROM system_settings WHERE key = 's'") == 42


def test_restore_keeps_current_api_keys_and_backup_records(
    source_db: str, backup_root: Path
) -> None:
    store = make_backup(source_db, backup_root)
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute("INSERT INTO api_keys (name, role, key_prefix, key_hash) "
                     "VALUES ('admin', 'admin', 'abc', 'h1')")
        conn.execute("INSERT INTO system_backups (status, file_path) VALUES ('completed', '/n')")
    restore_into(source_db, store)
    assert _one(source_db, "SELECT count(*) FROM api_keys WHERE key_hash = 'h1'") == 1
    assert _one(source_db, "SELECT count(*) FROM system_backups") == 3


def test_duckdb_reads_a_table_file(source_db: str, backup_root: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    store = make_backup(source_db, backup_root)
    path = Path(store.path) / "reservations.parquet"
    con = duckdb.connect()
    total, amount, first_ts = con.execute(
        f"SELECT count(*), sum(amount), min(created_at) FROM read_parquet('{path}')"
    ).fetchall()[0]
    assert total == 500
    assert str(amount) == str(_one(source_db, "SELECT sum(amount) FROM reservations"))
    assert first_ts == _one(source_db, "SELECT min(created_at) FROM reservations")


def test_manifest_records_types_and_checksums(source_db: str, backup_root: Path) -> None:
    store = make_backup(source_db, backup_root)
    body = verify_backup(store)
    res = body["tables"]["reservations"]
    types = {c["name"]: (c["pg_type"], c["arrow_type"]) for c in res["columns"]}
    assert types["amount"] == ("numeric(12,2)", "decimal128(12, 2)")
    assert types["created_at"][1] == "timestamp[us, tz=UTC]"
    channels = {c["name"]: c["pg_type"] for c in body["tables"]["channels"]["columns"]}
    assert channels["last_successful_sync"] == "jsonb"
    assert channels["account_id"] == "bigint" and channels["updated_at"] == "timestamp with time zone"
    assert len(res["sha256"]) == 64 and res["rows"] == 500
    assert body["alembic_revision"] and body["created_by"] == "test"
    assert manifest_body  # the function tests build manifests with


def test_psycopg_reader_without_psql(source_db: str, scratch_db: Callable[[], str],
                                     backup_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INNSYNC_BACKUP_NO_PSQL", "1")
    store = make_backup(source_db, backup_root)
    target = scratch_db()
    restore_into(target, store)
    assert data_dump(target) == data_dump(source_db)
