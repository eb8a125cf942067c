"""A full restore keeps the audit trail and the partner tokens in use, and records itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg

from tests.backup.conftest import make_backup, restore_into


def _trail(url: str) -> list[tuple[int, str, str, str | None]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, actor, action, entity_id FROM audit_logs "
                            "ORDER BY id").fetchall()


def _audit(conn: psycopg.Connection, actor: str, action: str, entity_id: str) -> None:
    conn.execute("INSERT INTO audit_logs (actor, action, entity_type, entity_id) "
                 "VALUES (%s, %s, 'test', %s)", (actor, action, entity_id))


def test_rows_written_since_the_backup_survive_and_the_restore_is_recorded(
        source_db: str, backup_root: Path) -> None:
    from db.backup.restore import RestoreOptions, RestoreRecord, restore_staged
    from db.backup.verify import stage_backup

    with psycopg.connect(source_db, autocommit=True) as conn:
        _audit(conn, "alice", "update", "before-backup")
    at_backup = _trail(source_db)
    store = make_backup(source_db, backup_root)
    with psycopg.connect(source_db, autocommit=True) as conn:
        _audit(conn, "bob", "delete", "after-backup-1")
        _audit(conn, "bob", "delete", "after-backup-2")
        conn.execute("UPDATE guests SET first_name = 'changed' WHERE id = 1")
    since = _trail(source_db)[len(at_backup):]
    assert [r[3] for r in since] == ["after-backup-1", "after-backup-2"]

    staged = stage_backup(store)
    try:
        result = restore_staged(source_db, staged, RestoreOptions(),
                                record=RestoreRecord(actor="carol", backup_id=42,
                                                     file_path=str(store.url)))
    finally:
        staged.cleanup()

    trail = _trail(source_db)
    assert trail[:len(at_backup)] == at_backup          # the backup's rows, same ids
    assert trail[len(at_backup):-1] == since             # written since: kept, same ids
    last_id, actor, action, entity_id = trail[-1]
    assert (actor, action, entity_id) == ("carol", "restore", "42")
    assert last_id > since[-1][0]                        # past every row, never from 1
    with psycopg.connect(source_db) as conn:
        after = conn.execute("SELECT after FROM audit_logs WHERE id = %s",
                             (last_id,)).fetchone()[0]
        assert after["backup_id"] == 42
        assert after["tables"]["guests"] == result.tables["guests"]
        assert conn.execute("SELECT first_name FROM guests WHERE id = 1").fetchone()[0] \
            != "changed"                                 # the rest was restored
        conn.execute("INSERT INTO audit_logs (actor, action, entity_type) "
                     "VALUES ('next', 'x', 'test')")     # the sequence is past the max
        conn.commit()


def test_other_history_is_re_appended_once(source_db: str, scratch_db: Callable[[], str],
                                           backup_root: Path) -> None:
    store = make_backup(source_db, backup_root)
    backup_rows = [(a, b, c) for _, a, b, c in _trail(source_db)]
    target = scratch_db()
    with psycopg.connect(target, autocommit=True) as conn:  # its own trail, ids from 1
        _audit(conn, "target", "create", "t-1")
        _audit(conn, "target", "create", "t-2")
    own = _trail(target)
    restore_into(target, store)
    trail = _trail(target)
    assert trail[:2] == own                               # the target's rows untouched
    assert sorted((a, b, c) for _, a, b, c in trail[2:]) == sorted(backup_rows)
    restore_into(target, store)                           # again: nothing duplicated
    assert _trail(target) == trail


def test_current_partner_tokens_are_kept(source_db: str, scratch_db: Callable[[], str],
                                         backup_root: Path) -> None:
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute("INSERT INTO partner_auth_tokens (channel_name, account_key, "
                     "token_encrypted, exchange_count) VALUES "
                     "('expedia', 'acct-a', 'old-a', 1), ('expedia', 'acct-b', 'old-b', 1)")
    store = make_backup(source_db, backup_root)
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute("UPDATE partner_auth_tokens SET token_encrypted = 'new-a', "
                     "exchange_count = 2 WHERE account_key = 'acct-a'")
        conn.execute("DELETE FROM partner_auth_tokens WHERE account_key = 'acct-b'")
    restore_into(source_db, store)
    with psycopg.connect(source_db) as conn:
        rows = conn.execute("SELECT account_key, token_encrypted, exchange_count FROM "
                            "partner_auth_tokens ORDER BY account_key").fetchall()
    # The token in use now stays; one only the backup has comes back.
    assert rows == [("acct-a", "new-a", 2), ("acct-b", "old-b", 1)]
