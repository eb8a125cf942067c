"""Flow-level behaviour (real Prefect server): records, failure state, restore flow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from db.backup.create import BackupOptions
from db.backup.restore import RestoreOptions
from db.backup.storage import Store
from db.backup.verify import BackupIncomplete, verify_backup
from db.engine import session_scope
from db.models import SystemBackup
from flows.backup import create_backup, restore_backup
from flows.runner import run_flow
from tests.backup.conftest import data_dump

pytestmark = pytest.mark.usefixtures("prefect_server")


def _record(engine: Engine, backup_id: int) -> SystemBackup:
    with session_scope(engine) as session:
        row = session.get(SystemBackup, backup_id)
        assert row is not None
        return row


def test_create_failure_marks_record_failed(engine: Engine,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import db.backup.create as create

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(create, "_write", failing)
    out = run_flow(create_backup, created_by="t", options=BackupOptions(tables=["guests"]))
    assert not out.ok and isinstance(out.error, OSError)
    with session_scope(engine) as session:
        row = session.query(SystemBackup).order_by(SystemBackup.id.desc()).first()
        assert row is not None
        assert row.status == "failed" and "disk full" in (row.error_message or "")
        path = row.file_path
    assert path is not None
    with pytest.raises(BackupIncomplete):
        verify_backup(Store.open(path))


def test_create_then_restore_flow(engine: Engine, scratch_db: Callable[[], str]) -> None:
    out = run_flow(create_backup, created_by="t",
                   options=BackupOptions(encrypt=True, location="flows"))
    assert out.ok, out.error
    row = _record(engine, out.value["backup_id"])
    assert row.status == "completed" and row.size_bytes and row.flow_run_id == out.flow_run_id
    assert Path(out.value["file_path"]).name.endswith(str(row.id))
    target = scratch_db()
    restored = run_flow(restore_backup, backup_id=row.id, options=RestoreOptions(),
                        target_url=SecretStr(target))
    assert restored.ok, restored.error
    from db.engine import to_libpq_url

    source = to_libpq_url(engine.url.render_as_string(hide_password=False))
    skip = ("system_backups", "api_keys", "audit_logs")
    def rows(url: str) -> list[str]:  # the restore adds one audit row: its sequence moved
        return [x for x in data_dump(url, exclude=skip)
                if "type_zoo" not in x and "audit_logs_id_seq" not in x]

    assert rows(target) == rows(source)
    with psycopg.connect(target) as conn:
        recorded = conn.execute("SELECT actor, entity_id FROM audit_logs WHERE action = "
                                "'restore' AND entity_type = 'backup'").fetchall()
    assert recorded == [("unknown", str(row.id))]
