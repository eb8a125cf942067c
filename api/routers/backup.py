"""Backups (admin): create, list, restore, verify, delete, prune; each runs as a flow run."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import Field, SecretStr

from api import audit
from api.deps import AdminDep, SessionDep, SettingsDep
from api.errors import AppError, Conflict, NotFound, Unprocessable
from api.middleware import public_error
from api.paging import LIST_DOCS, PageDep, page_of
from api.schemas import APIInput, APIModel
from api.validators import Hours, Id, Int4
from db.backup import records
from db.backup.create import BackupOptions, UnknownTables
from db.backup.crypto import BackupDecryptionError
from db.backup.incremental import IncrementalRefused, ParentMissing
from db.backup.manifest import ManifestError
from db.backup.restore import (
    RestoreInProgress,
    RestoreOptions,
    RestoreRefused,
    SubsetNeedsTables,
    ValidationFailed,
)
from db.backup.retention import RetentionPolicy
from db.backup.storage import PathNotAllowed, resolve_backup_path, resolve_location
from db.backup.verify import UnknownRevision
from flows.runner import FlowOutcome, run_flow
from tasks.results import (
    BackupCreated,
    DeleteOutcome,
    PruneOutcome,
    RestoreOutcome,
    VerifyOutcome,
)

router = APIRouter(prefix="/backup", tags=["backup"])


class BackupPathNotAllowed(AppError):
    status_code = 400
    code = "backup_path_not_allowed"


class BackupFailed(AppError):
    status_code = 500
    code = "backup_failed"


class CreateOptions(APIInput):
    include_audit_logs: bool = True
    include_system_settings: bool = True
    compress: bool = True
    location: str | None = None
    tables: list[str] | None = None
    encrypt: bool = False
    passphrase: SecretStr | None = None
    incremental: bool = False
    parent_id: Id | None = None


class CreateBody(APIInput):
    created_by: str | None = None
    options: CreateOptions = Field(default_factory=CreateOptions)


class RestoreBodyOptions(APIInput):
    skip_existing: bool = False
    validate_data: bool = False
    tables: list[str] | None = None


class RestoreBody(APIInput):
    file_path: str | None = None
    backup_id: Id | None = None
    passphrase: SecretStr | None = None
    options: RestoreBodyOptions = Field(default_factory=RestoreBodyOptions)


class VerifyBody(APIInput):
    file_path: str | None = None
    backup_id: Id | None = None
    passphrase: SecretStr | None = None
    full_restore: bool = False


class PruneBody(APIInput):
    dry_run: bool = True
    keep_last: Int4 = 7
    keep_daily: Int4 = 7
    keep_weekly: Int4 = 4
    keep_monthly: Int4 = 6
    keep_within_hours: Hours | None = None


class Result(APIModel):
    success: bool
    flow_run_id: UUID | None = None


class CreateResult(Result):
    file_path: str | None = None
    backup_id: int | None = None
    backup_type: str | None = None
    size_bytes: int | None = None
    rows: int | None = None
    tables: dict[str, int] | None = None


class RestoreResult(Result):
    file_path: str | None = None
    tables: dict[str, int] = Field(default_factory=dict)


class VerifyResult(RestoreResult):
    ok: bool = False


class DeleteResult(Result):
    deleted_children: list[int] = Field(default_factory=list)


class PruneResult(Result):
    dry_run: bool
    keep: dict[str, list[str]]
    delete: list[int]


class BackupOut(APIModel):
    id: int
    backup_type: str
    status: str
    file_path: str | None
    location: str | None
    size_bytes: int | None
    parent_id: int | None
    backup_metadata: dict[str, Any] = Field(serialization_alias="metadata")
    error_message: str | None
    created_by: str | None
    flow_run_id: UUID | None
    created_at: datetime
    completed_at: datetime | None


def _check_path(value: str | None, settings: SettingsDep, *, backup: bool) -> None:
    if value is None:
        return
    try:
        if backup:
            resolve_backup_path(value, settings.resolved_backup_root, settings.backup_remotes)
        else:
            resolve_location(value, settings.resolved_backup_root, settings.backup_remotes)
    except PathNotAllowed as exc:
        raise BackupPathNotAllowed(str(exc)) from exc


def _raise_for(outcome: FlowOutcome) -> None:
    """Map a failed flow run to a typed error (the flow-run id in the details)."""
    if outcome.ok:
        return
    exc, details = outcome.error, {"flowRunId": str(outcome.flow_run_id)}
    if isinstance(exc, ValidationFailed):
        raise Unprocessable(str(exc), code="backup_validation_failed",
                            details={**details, "problems": [p.to_dict() for p in exc.problems]})
    if isinstance(exc, BackupDecryptionError):
        raise Unprocessable(str(exc), code="backup_decryption_failed", details=details)
    if isinstance(exc, IncrementalRefused):
        raise Unprocessable(str(exc), code="incremental_refused", details=details)
    if isinstance(exc, ParentMissing):
        raise Unprocessable(str(exc), code="backup_parent_missing", details=details)
    if isinstance(exc, records.BackupHasChildren):
        raise Conflict(str(exc), code="backup_has_children", details=details)
    if isinstance(exc, UnknownRevision):
        raise Conflict(str(exc), code="backup_newer_schema", details=details)
    if isinstance(exc, ManifestError):
        raise Unprocessable(str(exc), code="backup_corrupt", details=details)
    if isinstance(exc, RestoreInProgress):
        raise Conflict(str(exc), code="restore_running", details=details)
    if isinstance(exc, SubsetNeedsTables):
        raise Conflict(str(exc), code="restore_refused",
                       details={**details, "needsTables": exc.needed})
    if isinstance(exc, RestoreRefused):
        raise Conflict(str(exc), code="restore_refused", details=details)
    if isinstance(exc, UnknownTables):
        raise Unprocessable(str(exc), code="unknown_tables", details=details)
    if isinstance(exc, PathNotAllowed):
        raise BackupPathNotAllowed(str(exc), details=details)
    if isinstance(exc, LookupError):
        raise NotFound(str(exc), details=details)
    if isinstance(exc, FileNotFoundError):
        raise Unprocessable(f"a file of this backup is missing: {exc.filename or exc}",
                            code="backup_incomplete", details=details)
    raise BackupFailed(public_error(f"{type(exc).__name__}: {exc}"), details=details)


@router.post("/create", response_model=CreateResult, response_model_exclude_none=True)
def create(body: CreateBody, session: SessionDep, settings: SettingsDep,
           principal: AdminDep) -> CreateResult:
    """Back up the database (one consistent snapshot, Parquet per table)."""
    from flows.backup import create_backup

    _check_path(body.options.location, settings, backup=False)
    if body.options.parent_id is not None and not body.options.incremental:
        raise Unprocessable("parentId is only for incremental backups")
    options = BackupOptions(**body.options.model_dump())
    session.commit()  # release our row locks before the flow runs
    outcome = run_flow(create_backup, created_by=body.created_by or principal.actor,
                       options=options)
    _raise_for(outcome)
    created = outcome.value_as(BackupCreated)
    audit.record(session, principal.actor, "create", "backup", created.backup_id,
                 None, {"file_path": created.file_path})
    return CreateResult(success=True, flow_run_id=outcome.flow_run_id,
                        file_path=created.file_path, backup_id=created.backup_id,
                        backup_type=created.backup_type, size_bytes=created.size_bytes,
                        rows=created.rows, tables=created.tables)


@router.get("/list", response_model=list[BackupOut], **LIST_DOCS)
def list_backups(session: SessionDep, _: AdminDep, page: PageDep,
                 status: str | None = None) -> list[BackupOut]:
    """Backup records, newest first."""
    rows, total = records.list_records(session, limit=page.limit, offset=page.offset,
                                       status=status)
    return page_of(BackupOut, rows, total, page)


@router.post("/restore", response_model=RestoreResult)
def restore(body: RestoreBody, session: SessionDep, settings: SettingsDep,
            principal: AdminDep) -> RestoreResult:
    """Verify then restore a backup, all or nothing."""
    from flows.backup import restore_backup

    if body.file_path is None and body.backup_id is None:
        raise Unprocessable("give filePath or backupId")
    _check_path(body.file_path, settings, backup=True)
    session.commit()  # the restore takes table locks: hold none ourselves
    outcome = run_flow(restore_backup, file_path=body.file_path, backup_id=body.backup_id,
                       options=RestoreOptions(**body.options.model_dump()),
                       passphrase=body.passphrase, restored_by=principal.actor)
    _raise_for(outcome)
    restored = outcome.value_as(RestoreOutcome)
    # Recorded by the restore itself, in its own transaction, as done by this key.
    return RestoreResult(success=True, flow_run_id=outcome.flow_run_id,
                         file_path=restored.file_path, tables=restored.tables)


@router.post("/verify", response_model=VerifyResult)
def verify(body: VerifyBody, settings: SettingsDep, _: AdminDep) -> VerifyResult:
    """Check a backup's manifest and checksums (optionally a scratch restore)."""
    from flows.backup import verify_backup

    if body.file_path is None and body.backup_id is None:
        raise Unprocessable("give filePath or backupId")
    _check_path(body.file_path, settings, backup=True)
    outcome = run_flow(verify_backup, file_path=body.file_path, backup_id=body.backup_id,
                       passphrase=body.passphrase, full_restore=body.full_restore)
    _raise_for(outcome)
    verified = outcome.value_as(VerifyOutcome)
    return VerifyResult(success=True, ok=True, flow_run_id=outcome.flow_run_id,
                        file_path=verified.file_path, tables=verified.tables)


@router.post("/prune", response_model=PruneResult)
def prune(body: PruneBody, session: SessionDep, principal: AdminDep) -> PruneResult:
    """Apply retention (dry run unless dryRun is false)."""
    from flows.backup import prune_backups

    policy = RetentionPolicy(**body.model_dump(exclude={"dry_run"}))
    session.commit()
    outcome = run_flow(prune_backups, policy=policy, dry_run=body.dry_run)
    _raise_for(outcome)
    pruned = outcome.value_as(PruneOutcome)
    return PruneResult(success=True, flow_run_id=outcome.flow_run_id, dry_run=pruned.dry_run,
                       keep=pruned.keep, delete=pruned.delete)


# `:int`: /backup/list is its own resource (DELETE there is a 405, not a bad id).
@router.delete("/{backup_id:int}", response_model=DeleteResult)
def delete(backup_id: Id, session: SessionDep, principal: AdminDep,
           force: bool = False) -> DeleteResult:
    """Delete a backup's files and record (force: also the incrementals built on it)."""
    from flows.backup import delete_backup

    row = records.get_record(session, backup_id)
    if row is None:
        raise NotFound(f"backup {backup_id} not found")
    before = audit.snapshot(row)
    session.commit()
    outcome = run_flow(delete_backup, backup_id=backup_id, force=force)
    _raise_for(outcome)
    audit.record(session, principal.actor, "delete", "backup", backup_id, before, None)
    deleted = outcome.value_as(DeleteOutcome)
    return DeleteResult(success=True, flow_run_id=outcome.flow_run_id,
                        deleted_children=deleted.deleted_children)
