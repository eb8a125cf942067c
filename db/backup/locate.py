"""Find a backup from what a user gives (a path or a record id), without Prefect: the CLI
checks a backup exists before starting anything."""

from __future__ import annotations

from db.backup import records
from db.backup.storage import resolve_backup_path
from db.engine import session_scope
from innsync.settings import get_settings


def resolve_backup(file_path: str | None, backup_id: int | None) -> tuple[str, int | None]:
    """(backup directory URL, record id) from a path or an id; paths checked against the root."""
    settings = get_settings()
    if backup_id is not None:
        with session_scope() as session:
            row = records.get_record(session, backup_id)
            if row is None or not row.file_path:
                raise LookupError(f"backup {backup_id} not found")
            file_path = row.file_path
    if not file_path:
        raise ValueError("give a file path or a backup id")
    path = resolve_backup_path(file_path, settings.resolved_backup_root, settings.backup_remotes)
    if backup_id is None:
        with session_scope() as session:
            row = records.find_by_path(session, path)
            backup_id = row.id if row else None
    return path, backup_id
