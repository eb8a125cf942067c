"""Prefect tasks for backups: one per table export, one per step; plain data in and out."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

from prefect import get_run_logger, task
from prefect.cache_policies import NONE
from pydantic import SecretStr

from db.backup import progress, records
from db.backup.create import export_small_tables, export_table, write_manifest
from db.backup.incremental import export_table_delta
from db.backup.restore import RestoreOptions, RestoreRecord, restore_staged
from db.backup.storage import Store
from db.backup.verify import StagedBackup, stage_backup
from db.engine import session_scope


def _key(key: SecretStr | None) -> bytes | None:
    return bytes.fromhex(key.get_secret_value()) if key is not None else None


@task(name="backup-table", cache_policy=NONE)
def export_table_task(
    url: SecretStr,
    snapshot_id: str,
    table: str,
    meta: dict[str, Any],
    store_url: str,
    compress: bool,
    key: SecretStr | None,
    where: str | None = None,
) -> dict[str, Any]:
    """Export one table of the shared snapshot to its Parquet file."""
    result = export_table(
        url.get_secret_value(),
        snapshot_id,
        table,
        meta,
        Store.open(store_url),
        compress=compress,
        key=_key(key),
        where=where,
    )
    get_run_logger().info("%s: %d rows, %d bytes", table, result.rows, result.bytes)
    progress.report("table", table, result.rows)
    return dataclasses.asdict(result)


@task(name="backup-small-tables", cache_policy=NONE)
def export_small_tables_task(
    url: SecretStr,
    snapshot_id: str,
    tables: dict[str, dict[str, Any]],
    store_url: str,
    compress: bool,
    key: SecretStr | None,
    where: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Export the small tables of the shared snapshot, one connection, one after another."""
    logger = get_run_logger()

    def done(result: Any) -> None:
        logger.info("%s: %d rows, %d bytes", result.table, result.rows, result.bytes)
        progress.report("table", result.table, result.rows)

    results = export_small_tables(url.get_secret_value(), snapshot_id, tables,
                                  Store.open(store_url), compress=compress, key=_key(key),
                                  where=where, on_table=done)
    return [dataclasses.asdict(r) for r in results]


@task(name="backup-table-delta", cache_policy=NONE)
def export_delta_task(
    url: SecretStr,
    snapshot_id: str,
    table: str,
    meta: dict[str, Any],
    store_url: str,
    parent_url: str,
    compress: bool,
    key: SecretStr | None,
    secret_key: SecretStr | None,
    passphrase: SecretStr | None,
    where: str | None = None,
) -> dict[str, Any]:
    """Export one table's changes since the parent backup (incremental)."""
    result = export_table_delta(
        url.get_secret_value(),
        snapshot_id,
        table,
        meta,
        Store.open(store_url),
        parent_url,
        compress=compress,
        key=_key(key),
        secret_key=_key(secret_key),
        passphrase=passphrase.get_secret_value() if passphrase else None,
        where=where,
    )
    deleted = result.extra.get("deleted", {}).get("rows", 0)
    get_run_logger().info("%s: %d changed rows, %d deleted", table, result.rows, deleted)
    progress.report("table", table, result.rows)
    return dataclasses.asdict(result)


@task(name="write-manifest", cache_policy=NONE)
def write_manifest_task(store_url: str, body: dict[str, Any], key: SecretStr | None) -> int:
    """Write manifest.json last: the backup becomes complete."""
    return write_manifest(Store.open(store_url), body, _key(key))


@task(name="create-backup-record", cache_policy=NONE)
def create_record_task(
    location: str,
    created_by: str | None,
    backup_type: str,
    parent_id: int | None,
    flow_run_id: UUID | None,
    options: dict[str, Any],
) -> int:
    """Insert the running system_backups row; returns its id."""
    with session_scope() as session:
        return records.create_record(
            session,
            location=location,
            created_by=created_by,
            backup_type=backup_type,
            parent_id=parent_id,
            flow_run_id=flow_run_id,
            options=options,
        ).id


@task(name="set-backup-path", cache_policy=NONE)
def set_path_task(backup_id: int, file_path: str) -> None:
    """Record the backup directory."""
    with session_scope() as session:
        records.set_path(session, backup_id, file_path)


@task(name="finish-backup-record", cache_policy=NONE)
def finish_record_task(
    backup_id: int,
    ok: bool,
    size_bytes: int = 0,
    metadata: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Mark the record completed (with size and summary) or failed (with the error)."""
    with session_scope() as session:
        if ok:
            records.mark_completed(
                session, backup_id, size_bytes=size_bytes, metadata=metadata or {}
            )
        else:
            records.mark_failed(session, backup_id, error or "failed")


@task(name="verify-backup-files", cache_policy=NONE)
def stage_task(
    store_url: str, secret_key: SecretStr | None, passphrase: SecretStr | None,
    materialize: bool = True,
) -> dict[str, Any]:
    """Check every checksum (and decrypt) before any database is touched."""
    staged = stage_backup(
        Store.open(store_url),
        secret_key=_key(secret_key),
        passphrase=passphrase.get_secret_value() if passphrase else None,
        materialize=materialize,
    )
    return {"manifest": staged.manifest, "files": staged.files, "workdir": staged.workdir}


@task(name="load-backup", cache_policy=NONE)
def restore_task(url: SecretStr, staged: dict[str, Any], options: RestoreOptions,
                 record: RestoreRecord | None = None) -> dict[str, int]:
    """Load every table in one transaction (all or nothing); recorded in audit_logs."""
    logger = get_run_logger()

    def on_table(table: str, rows: int) -> None:
        logger.info("restored %s: %d rows", table, rows)
        progress.report("table", table, rows)

    progress.report("plan", total=len(options.tables or staged["manifest"]["tables"]))
    result = restore_staged(
        url.get_secret_value(),
        StagedBackup(**staged),
        options,
        on_table=on_table,
        record=record,
    )
    return result.tables


@task(name="delete-backup-files", cache_policy=NONE)
def delete_files_task(store_url: str) -> None:
    """Remove a backup directory and everything in it."""
    Store.open(store_url).remove()
