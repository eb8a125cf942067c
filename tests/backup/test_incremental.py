"""Incremental chains: full -> changes -> incremental -> changes -> incremental, restored."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from db.backup.crypto import BackupDecryptionError
from db.backup.incremental import IncrementalRefused, KeyLookup, ParentMissing, row_hashes
from db.backup.storage import Store
from db.backup.verify import ChecksumMismatch, verify_backup
from tests.backup.conftest import data_dump, make_backup, restore_into

NO_PK = "CREATE TABLE IF NOT EXISTS stay_notes (reservation_id bigint, note text, at timestamptz)"

CHANGES_1 = """
INSERT INTO guests (id, first_name, last_name, email) VALUES (1001, 'New', 'Guest', 'n@x');
INSERT INTO reservations (id, property_id, guest_id, room_type_id, confirmation_code,
    check_in, check_out, adults, children, amount, status)
VALUES (9000, 1, 1001, 1, 'C9000', '2026-03-01', '2026-03-02', 1, 0, 10, 'confirmed');
UPDATE guests SET last_name = 'Änderung', updated_at = now() WHERE id IN (3, 7);
UPDATE reservations SET amount = amount + 0.01, status = 'cancelled' WHERE id % 50 = 0;
UPDATE reservations SET notes = NULL WHERE id = 7;
DELETE FROM reservations WHERE id BETWEEN 480 AND 490;
DELETE FROM channel_bookings WHERE id = 2;
UPDATE channels SET config_public = '{"hotelId": "124", "n": 1.50}' WHERE id = 1;
UPDATE type_zoo SET n_free = 1.000, tags = ARRAY['z'] WHERE n_free = -0.5;
INSERT INTO stay_notes VALUES (1, 'first', '2026-01-01 00:00:00+00'), (2, NULL, NULL);
"""

CHANGES_2 = """
DELETE FROM reservations WHERE guest_id = 1001;
DELETE FROM guests WHERE id = 1001;
INSERT INTO guests (id, first_name, last_name) VALUES (1002, 'Later', 'Guest');
INSERT INTO reservations (id, property_id, guest_id, room_type_id, confirmation_code,
    check_in, check_out, adults, children, amount, status, created_at)
VALUES (9001, 1, 1002, 1, 'C480', '2026-03-01', '2026-03-04', 2, 0, 12345.67, 'confirmed',
        '2026-02-01 10:00:00.5+05');
UPDATE reservations SET check_out = check_out + 1 WHERE id = 1;
UPDATE type_zoo SET j = '{"x": [3]}', blob = '\\x01'::bytea WHERE j::text = '{"x": [1,2]}';
UPDATE rates SET amount = 0.10 WHERE date = '2026-01-05';
DELETE FROM inventory WHERE date > '2026-01-08';
DELETE FROM stay_notes WHERE reservation_id = 2;
"""


def _run(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def test_chain_restores_like_a_full_backup(source_db: str, scratch_db: Callable[[], str],
                                           backup_root: Path) -> None:
    _run(source_db, NO_PK)
    full = make_backup(source_db, backup_root, "b0")
    _run(source_db, CHANGES_1)
    inc1 = make_backup(source_db, backup_root, "b1", incremental=True, parent=full)
    _run(source_db, CHANGES_2)
    inc2 = make_backup(source_db, backup_root, "b2", incremental=True, parent=inc1)
    expected = data_dump(source_db)

    tables = verify_backup(inc2)["tables"]
    assert tables["reservations"]["mode"] == "delta" and tables["stay_notes"]["mode"] == "full"
    assert tables["reservations"]["rows"] == 2  # id 1 changed, 9001 new
    assert tables["reservations"]["deleted"]["rows"] == 1  # the one of guest 1001
    assert tables["properties"]["rows"] == 0 and tables["properties"]["deleted"]["rows"] == 0
    assert pq.read_table(Path(inc2.path) / "reservations.deleted.parquet").column(
        "id").to_pylist() == [9000]

    target = scratch_db()
    _run(target, NO_PK)
    restore_into(target, inc2)
    # Rows equal the source's; sequences sit at max(id) like after any restore, and the
    # whole dump equals a full backup's of the same moment.
    assert _rows(data_dump(target)) == _rows(expected)
    same_moment = make_backup(source_db, backup_root, "full-now")
    reference = scratch_db()
    _run(reference, NO_PK)
    restore_into(reference, same_moment)
    assert data_dump(target) == data_dump(reference)
    # The middle of the chain restores the state it was taken at.
    middle = scratch_db()
    _run(middle, NO_PK)
    restore_into(middle, inc1)
    assert _count(middle, "guests WHERE id = 1001") == 1
    assert _count(middle, "reservations") == 490

    # A tampered incremental file, or a missing parent, is refused before any change.
    before = data_dump(target)
    for name in ("guests.parquet", "reservations.deleted.parquet"):
        path = Path(inc1.path) / name
        original = path.read_bytes()
        path.write_bytes(original[:-9] + bytes([original[-9] ^ 1]) + original[-8:])
        with pytest.raises(ChecksumMismatch):
            verify_backup(inc2)
        with pytest.raises(ChecksumMismatch):
            restore_into(target, inc2)
        with pytest.raises(ChecksumMismatch):  # nor is a new incremental built on it
            make_backup(source_db, backup_root, "b3", incremental=True, parent=inc2)
        path.write_bytes(original)
    shutil.move(inc1.path, str(backup_root / "elsewhere"))
    with pytest.raises(ParentMissing, match="missing"):
        restore_into(target, inc2)
    assert data_dump(target) == before


def _rows(dump: list[str]) -> list[str]:
    return [line for line in dump if not line.startswith("SELECT pg_catalog.setval")]


def _count(url: str, what: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {what}").fetchone()
        return int(row[0]) if row else 0


def test_incremental_refusals(source_db: str, backup_root: Path) -> None:
    with pytest.raises(IncrementalRefused, match="needs a parent"):
        make_backup(source_db, backup_root, "x", incremental=True)
    full = make_backup(source_db, backup_root, "b0", tables=["guests"])
    with pytest.raises(IncrementalRefused, match="same tables"):
        make_backup(source_db, backup_root, "b1", incremental=True, parent=full)
    enc = make_backup(source_db, backup_root, "e0", tables=["guests"], passphrase="pw-one")
    with pytest.raises(BackupDecryptionError, match="passphrase"):
        make_backup(source_db, backup_root, "e1", tables=["guests"], incremental=True,
                    parent=enc)
    inc = make_backup(source_db, backup_root, "e2", tables=["guests"], incremental=True,
                      parent=enc, passphrase="pw-one")
    assert verify_backup(Store.open(inc.path), passphrase="pw-one")["backup_type"] == \
        "incremental"


def test_row_hash_and_lookup() -> None:
    a = pa.table({"id": [1, 2, 3], "s": ["x", None, ""], "d": pa.array([1, 2, None],
                                                                       pa.int64())})
    b = pa.table({"id": [1, 2, 3], "s": ["x", "", None], "d": pa.array([1, 2, None],
                                                                       pa.int64())})
    ha, hb = row_hashes(a).to_pylist(), row_hashes(b).to_pylist()
    assert ha[0] == hb[0] and ha[1] != hb[1] and ha[2] != hb[2]
    assert row_hashes(a.slice(1)).to_pylist() == ha[1:]  # independent of batching
    keys = pa.table({"k1": [1, 1, 2], "k2": ["a", "b", "a"]})
    look = KeyLookup(keys, ["k1", "k2"])
    probe = pa.table({"k1": [2, 1, 3], "k2": ["a", "c", "a"]})
    assert look.find(probe).tolist() == [2, -1, -1]
