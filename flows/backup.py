"""Backup flows: create, restore, verify, delete, prune. Flows orchestrate; tasks work."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import SecretStr

from db.backup import progress, records
from db.backup.create import (
    BackupOptions,
    backup_name,
    encryption_setup,
    exclude_own_record,
    manifest_body,
    read_snapshot_info,
    select_tables,
    split_small,
    table_sizes,
)
from db.backup.crypto import key_from_secret
from db.backup.incremental import IncrementalRefused, prepare_incremental
from db.backup.locate import resolve_backup
from db.backup.restore import RestoreOptions, RestoreRecord
from db.backup.retention import BackupRef, RetentionPolicy, plan_prune
from db.backup.storage import (
    BackupDirectoryExists,
    Store,
    resolve_backup_path,
    resolve_location,
)
from db.backup.writer import TableFile, exported_snapshot
from db.engine import database_url, session_scope, to_libpq_url
from innsync.settings import get_settings
from tasks.backup import (
    create_record_task,
    delete_files_task,
    export_delta_task,
    export_small_tables_task,
    export_table_task,
    finish_record_task,
    restore_task,
    set_path_task,
    stage_task,
    write_manifest_task,
)
from tasks.results import (
    BackupCreated,
    DeleteOutcome,
    NightlyOutcome,
    PruneOutcome,
    RestoreOutcome,
    VerifyOutcome,
)


def _db_url() -> str:
    return to_libpq_url(database_url())


def _service_key() -> bytes:
    return key_from_secret(get_settings().ensure_secret_key())


def _secret(key: bytes | None) -> SecretStr | None:
    return SecretStr(key.hex()) if key is not None else None


def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def resolve_parent(options: BackupOptions, location: str) -> tuple[int, str]:
    """(id, path) of an incremental's parent: `parent_id`, else the newest completed backup
    in the same location."""
    settings = get_settings()
    with session_scope() as session:
        if options.parent_id is not None:
            row = records.get_record(session, options.parent_id)
            if row is None or row.status != "completed" or not row.file_path:
                raise IncrementalRefused(f"backup {options.parent_id} is not a completed backup")
        else:
            row = records.latest_completed(session, location)
            if row is None or not row.file_path:
                raise IncrementalRefused("no completed backup in this location to build an "
                                         "incremental backup on: take a full backup first")
        parent_id, file_path = row.id, row.file_path
    path = resolve_backup_path(file_path, settings.resolved_backup_root, settings.backup_remotes)
    return parent_id, path


def _summary_artifact(key: str, title: str, rows: list[dict[str, Any]]) -> None:
    create_table_artifact(key=key, table=rows, description=title)
    total_rows = sum(int(r.get("rows", 0)) for r in rows)
    total_bytes = sum(int(r.get("bytes", 0)) for r in rows)
    create_markdown_artifact(
        key=f"{key}-summary",
        markdown=f"## {title}\n\n{len(rows)} tables, {total_rows:,} rows, {total_bytes:,} bytes",
    )


def close_backup_hook(flow: Any, flow_run: Any, state: Any) -> None:
    """on_crashed / on_cancellation: the run's backup, if still running, becomes failed with
    the reason and its half-written directory is removed (the reaper does it otherwise)."""
    from innsync.reaper import remove_backup_files

    with session_scope() as session:
        rows = [r for r, _ in records.running_records(session) if r.flow_run_id == flow_run.id]
    for row in rows:
        with session_scope() as session:
            closed = records.mark_failed(session, row.id, f"flow run {state.name}: "
                                         f"{state.message or 'stopped'}", only_running=True)
        if closed and row.file_path:
            remove_backup_files(row.file_path)


@flow(name="create-backup", persist_result=True,
      task_runner=ThreadPoolTaskRunner(max_workers=2),  # type: ignore[arg-type]
      on_crashed=[close_backup_hook], on_cancellation=[close_backup_hook])
def create_backup(
    created_by: str | None = None, options: BackupOptions | None = None
) -> BackupCreated:
    """Back up every selected table from one snapshot; manifest last; record the outcome."""
    logger = get_run_logger()
    options = options or BackupOptions()
    settings = get_settings()
    base = resolve_location(
        options.location, settings.resolved_backup_root, settings.backup_remotes
    )
    parent_id, parent_url = resolve_parent(options, base) if options.incremental else (None, None)
    run_id = UUID(flow_run.get_id()) if flow_run.get_id() else None
    backup_id = create_record_task(
        base,
        created_by,
        "incremental" if options.incremental else "full",
        parent_id,
        run_id,
        options.model_dump(mode="json", exclude={"passphrase"}),
    )
    path = _join(base, backup_name(datetime.now(UTC), backup_id))
    set_path_task(backup_id, path)
    store = Store.open(path)
    try:
        url = _db_url()
        with exported_snapshot(url) as (conn, snapshot_id):
            info = read_snapshot_info(conn, snapshot_id)
            tables = select_tables({t: None for t in info.tables}, options)  # type: ignore[misc]
            link: dict[str, Any] = {}
            if parent_url is not None:
                link, options = prepare_incremental(
                    parent_url, info.alembic_revision, tables, options, _service_key())
            key, encryption = encryption_setup(options, _service_key())
            store.create_fresh()  # never another backup's directory
            filters = exclude_own_record(backup_id)
            progress.report("plan", total=len(tables))
            logger.info("backing up %d tables to %s%s", len(tables), path,
                        f" (incremental on {parent_url})" if parent_url else "")
            small: list[str] = []
            if parent_url is not None:
                futures = [
                    export_delta_task.submit(
                        SecretStr(url), snapshot_id, t, info.tables[t], path, parent_url,
                        options.compress, _secret(key), _secret(_service_key()),
                        options.passphrase, filters.get(t),
                    )
                    for t in tables
                ]
            else:
                # Big tables one task each (in parallel); the small ones in one task.
                small, big = split_small(tables, table_sizes(conn))
                futures = [
                    export_table_task.submit(
                        SecretStr(url),
                        snapshot_id,
                        t,
                        info.tables[t],
                        path,
                        options.compress,
                        _secret(key),
                        filters.get(t),
                    )
                    for t in big
                ]
                if small:
                    batch = export_small_tables_task.submit(
                        SecretStr(url), snapshot_id, {t: info.tables[t] for t in small}, path,
                        options.compress, _secret(key), filters)
            files = [TableFile(**f.result()) for f in futures]
            if parent_url is None and small:
                files += [TableFile(**r) for r in batch.result()]
        body = manifest_body(
            name=path.rsplit("/", 1)[-1],
            backup_id=backup_id,
            info=info,
            files=files,
            options=options,
            created_by=created_by,
            encryption=encryption,
            extra=link,
        )
        manifest_size = write_manifest_task(path, body, _secret(key))
    except BaseException as exc:
        logger.error("backup %s failed: %s", backup_id, exc)
        finish_record_task(backup_id, False, error=f"{type(exc).__name__}: {exc}")
        if isinstance(exc, BackupDirectoryExists):
            raise  # not ours: leave the existing directory alone
        try:
            store.remove()
        except Exception:  # the record already says failed; leftovers have no manifest
            logger.warning("could not remove partial backup %s", path)
        raise
    created = BackupCreated(
        backup_id=backup_id,
        file_path=path,
        size_bytes=sum(f.bytes for f in files) + manifest_size,
        backup_type="incremental" if parent_url else "full",
        parent_id=parent_id,
        tables={f.table: f.rows for f in files},
        rows=sum(f.rows for f in files),
        alembic_revision=info.alembic_revision,
        encrypted=key is not None,
    )
    finish_record_task(backup_id, True, created.size_bytes, created.record_summary())
    _summary_artifact(
        "backup",
        f"Backup {backup_id} at {path}",
        [{"table": f.table, "rows": f.rows, "bytes": f.bytes} for f in files],
    )
    return created


@flow(name="restore-backup", persist_result=True)
def restore_backup(
    file_path: str | None = None,
    backup_id: int | None = None,
    options: RestoreOptions | None = None,
    passphrase: SecretStr | None = None,
    target_url: SecretStr | None = None,
    restored_by: str | None = None,
) -> RestoreOutcome:
    """Verify (and decrypt) everything first, then restore in one transaction; the restore
    is recorded in audit_logs (by `restored_by`), rows written there since the backup stay."""
    options = options or RestoreOptions()
    path, backup_id = resolve_backup(file_path, backup_id)
    staged = stage_task(path, _secret(_service_key()), passphrase)
    try:
        from db.backup.verify import check_revision

        check_revision(staged["manifest"])
        url = target_url or SecretStr(_db_url())
        record = RestoreRecord(actor=restored_by or "unknown", backup_id=backup_id,
                               file_path=path)
        loaded = restore_task(url, staged, options, record)
    finally:
        if staged.get("workdir"):
            shutil.rmtree(staged["workdir"], ignore_errors=True)
    _summary_artifact(
        "restore", f"Restore of {path}", [{"table": t, "rows": n} for t, n in loaded.items()]
    )
    return RestoreOutcome(file_path=path, backup_id=backup_id, tables=loaded)


@flow(name="verify-backup", persist_result=True)
def verify_backup(
    file_path: str | None = None,
    backup_id: int | None = None,
    passphrase: SecretStr | None = None,
    full_restore: bool = False,
) -> VerifyOutcome:
    """Check manifest and every checksum; optionally restore into a scratch database."""
    path, backup_id = resolve_backup(file_path, backup_id)
    # An incremental chain is only materialised when it is going to be restored.
    staged = stage_task(path, _secret(_service_key()), passphrase, full_restore)
    try:
        manifest = staged["manifest"]
        compared: dict[str, int] | None = None
        if full_restore:
            from db.backup.scratch import restore_and_compare

            compared = restore_and_compare(_db_url(), staged)
    finally:
        if staged.get("workdir"):
            shutil.rmtree(staged["workdir"], ignore_errors=True)
    rows = [
        {"table": t, "rows": e["rows"], "bytes": e["bytes"]} for t, e in manifest["tables"].items()
    ]
    _summary_artifact("verify", f"Verified {path}", rows)
    return VerifyOutcome(file_path=path, backup_id=backup_id, ok=True,
                         tables={r["table"]: r["rows"] for r in rows}, compared=compared)


@flow(name="delete-backup", persist_result=True)
def delete_backup(
    backup_id: int | None = None, file_path: str | None = None, force: bool = False
) -> DeleteOutcome:
    """Delete a backup's files and record; with `force` also the incrementals built on it."""
    path, backup_id = resolve_backup(file_path, backup_id)
    settings = get_settings()
    children: list[tuple[int, str | None]] = []
    if backup_id is not None:
        with session_scope() as session:
            children = [(r.id, r.file_path) for r in records.descendants(session, backup_id)]
    if children and not force:
        raise records.BackupHasChildren(
            f"backup {backup_id} is the parent of incremental backup(s) "
            f"{sorted(c for c, _ in children)}: delete with force to remove them too")
    for child_id, child_path in children:
        if child_path:
            resolve_backup_path(child_path, settings.resolved_backup_root,
                                settings.backup_remotes)
            delete_files_task(child_path)
        with session_scope() as session:
            records.delete_record(session, child_id)
    delete_files_task(path)
    if backup_id is not None:
        with session_scope() as session:
            records.delete_record(session, backup_id)
    get_run_logger().info("deleted backup %s at %s (and %d incremental(s) built on it)",
                          backup_id, path, len(children))
    return DeleteOutcome(backup_id=backup_id, file_path=path,
                         deleted_children=[c for c, _ in children])


@flow(name="prune-backups", persist_result=True)
def prune_backups(policy: RetentionPolicy | None = None, dry_run: bool = True) -> PruneOutcome:
    """Apply a retention policy; with dry_run only report what would go."""
    policy = policy or RetentionPolicy()
    with session_scope() as session:
        refs = [BackupRef(*r) for r in records.all_refs(session)]
        paths = {r.id: r.file_path for r in records.list_records(session, limit=100000)[0]}
    plan = plan_prune(refs, policy, datetime.now(UTC))
    logger = get_run_logger()
    if not dry_run:
        settings = get_settings()
        for bid in plan.delete:
            path = paths.get(bid)
            if path:
                resolve_backup_path(path, settings.resolved_backup_root, settings.backup_remotes)
                delete_files_task(path)
            with session_scope() as session:
                records.delete_record(session, bid)
            logger.info("pruned backup %s", bid)
    create_markdown_artifact(
        key="prune",
        markdown=f"## Prune ({'dry run' if dry_run else 'applied'})\n\n"
        f"keep: {sorted(plan.keep)}\n\ndelete: {plan.delete}",
    )
    return PruneOutcome(dry_run=dry_run, keep={str(k): v for k, v in plan.keep.items()},
                        delete=plan.delete)


@flow(name="nightly-backup", persist_result=True)
def nightly_backup(
    created_by: str = "nightly",
    options: BackupOptions | None = None,
    policy: RetentionPolicy | None = None,
) -> NightlyOutcome:
    """The scheduled job: a full backup, then retention applied (never on a failed backup)."""
    created = create_backup(created_by=created_by, options=options)
    pruned = prune_backups(policy=policy, dry_run=False)
    return NightlyOutcome(backup=created, prune=pruned)
