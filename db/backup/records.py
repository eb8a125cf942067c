"""The system_backups catalog: one row per backup, running -> completed | failed."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import SystemBackup


class BackupHasChildren(Exception):
    """Incremental backups are built on this one: deleting it needs force."""


def create_record(
    session: Session, *, location: str, created_by: str | None, backup_type: str,
    parent_id: int | None, flow_run_id: uuid.UUID | None, options: dict[str, Any],
) -> SystemBackup:
    """A new running backup record, owned by this process (host, pid: see innsync/reaper.py)."""
    row = SystemBackup(
        backup_type=backup_type, status="running", location=location, created_by=created_by,
        parent_id=parent_id, flow_run_id=flow_run_id, backup_metadata={"options": options},
        host=socket.gethostname(), pid=os.getpid(),
    )
    session.add(row)
    session.flush()
    return row


def set_path(session: Session, backup_id: int, file_path: str) -> None:
    """Record where the backup's files go."""
    row = session.get(SystemBackup, backup_id)
    assert row is not None
    row.file_path = file_path


def mark_completed(
    session: Session, backup_id: int, *, size_bytes: int, metadata: dict[str, Any]
) -> None:
    """Running -> completed, with size and a summary."""
    row = session.get(SystemBackup, backup_id)
    assert row is not None
    row.status = "completed"
    row.size_bytes = size_bytes
    row.backup_metadata = {**(row.backup_metadata or {}), **metadata}
    row.completed_at = session.scalar(select(func.now()))
    row.error_message = None


def running_records(session: Session) -> list[tuple[SystemBackup, datetime]]:
    """Every backup still marked running, oldest first, with the database's clock."""
    now = session.scalar(select(func.now()))
    assert now is not None
    rows = session.scalars(select(SystemBackup).where(SystemBackup.status == "running")
                           .order_by(SystemBackup.created_at, SystemBackup.id)).all()
    return [(row, now) for row in rows]


def mark_failed(session: Session, backup_id: int, error: str, *, only_running: bool = False) -> bool:
    """Running -> failed with the error (with `only_running`, a finished row is left alone)."""
    row = session.get(SystemBackup, backup_id, with_for_update=only_running)
    if row is not None and (not only_running or row.status == "running"):
        row.status = "failed"
        row.error_message = error[:4000]
        row.completed_at = session.scalar(select(func.now()))
        return True
    return False


def get_record(session: Session, backup_id: int) -> SystemBackup | None:
    """One backup record."""
    return session.get(SystemBackup, backup_id)


def find_by_path(session: Session, file_path: str) -> SystemBackup | None:
    """The record of the backup stored at `file_path`."""
    return session.scalars(
        select(SystemBackup).where(SystemBackup.file_path == file_path.rstrip("/"))
    ).first()


def list_records(
    session: Session, *, limit: int = 50, offset: int = 0, status: str | None = None
) -> tuple[list[SystemBackup], int]:
    """A page of records, newest first, and the total."""
    query = select(SystemBackup)
    if status:
        query = query.where(SystemBackup.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(SystemBackup.created_at.desc(), SystemBackup.id.desc())
        .limit(limit).offset(offset)
    ).all()
    return list(rows), total


def latest_completed(session: Session, location: str | None = None) -> SystemBackup | None:
    """The newest completed backup, in `location` if given (an incremental's default parent)."""
    query = select(SystemBackup).where(SystemBackup.status == "completed",
                                       SystemBackup.file_path.is_not(None))
    if location is not None:
        query = query.where(SystemBackup.location == location)
    return session.scalars(
        query.order_by(SystemBackup.created_at.desc(), SystemBackup.id.desc())
    ).first()


def descendants(session: Session, backup_id: int) -> list[SystemBackup]:
    """Every backup built on `backup_id` (children, grandchildren...), deepest first."""
    found: list[SystemBackup] = []
    frontier = [backup_id]
    while frontier:
        rows = list(session.scalars(
            select(SystemBackup).where(SystemBackup.parent_id.in_(frontier))).all())
        found.extend(rows)
        frontier = [r.id for r in rows]
    return list(reversed(found))


def delete_record(session: Session, backup_id: int) -> None:
    """Remove a record (children keep existing: parent_id is SET NULL)."""
    row = session.get(SystemBackup, backup_id)
    if row is not None:
        session.delete(row)


def all_refs(session: Session) -> list[tuple[int, datetime, str, int | None]]:
    """(id, created_at, status, parent_id) of every backup, for retention."""
    return [
        (r.id, r.created_at, r.status, r.parent_id)
        for r in session.scalars(select(SystemBackup)).all()
    ]
