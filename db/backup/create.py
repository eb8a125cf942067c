"""Plain functions a backup is made of: choose tables, read the snapshot, write the manifest."""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg
from pydantic import BaseModel, SecretStr

from db.backup import FORMAT_VERSION
from db.backup.catalog import Table, quote_ident, read_catalog
from db.backup.crypto import key_from_passphrase
from db.backup.manifest import dump_manifest
from db.backup.storage import MANIFEST, Store
from db.backup.types import arrow_type
from db.backup.writer import TableFile, exported_snapshot, iter_snapshot_batches
from db.backup.writer import write_table_file as _write

#: Tables kept as they are on restore, their backup rows only added when missing: the
#: backup catalog describes files that exist now, the API keys let the admin in, the audit
#: trail must keep what happened since the backup, and the partner tokens in use now are
#: newer than the backup's (a restored, expired token would only cost an exchange).
MERGE_TABLES = frozenset({"system_backups", "api_keys", "audit_logs", "partner_auth_tokens"})
#: Merge tables whose backup rows are re-appended (new ids) when their id is taken by a
#: different row: an append-only trail keeps every entry of both histories.
APPEND_TABLES = frozenset({"audit_logs"})
OPTIONAL_TABLES = {"audit_logs": "include_audit_logs", "system_settings": "include_system_settings"}


class BackupOptions(BaseModel):
    """What to back up and how (the seed's options plus tables, encryption, incremental)."""

    include_audit_logs: bool = True
    include_system_settings: bool = True
    compress: bool = True
    location: str | None = None
    tables: list[str] | None = None
    encrypt: bool = False
    passphrase: SecretStr | None = None
    incremental: bool = False
    parent_id: int | None = None


class SnapshotInfo(BaseModel):
    """What the exporting transaction saw: snapshot id, revision, time, server."""

    snapshot_id: str
    alembic_revision: str | None
    snapshot_time: datetime
    server_version: str
    tables: dict[str, dict[str, Any]]


class UnknownTables(ValueError):
    """`options.tables` names tables the database does not have."""


def select_tables(catalog: dict[str, Table], options: BackupOptions) -> list[str]:
    """The tables a backup with `options` contains (unknown names refused)."""
    if options.tables:
        unknown = sorted(set(options.tables) - set(catalog))
        if unknown:
            raise UnknownTables(f"unknown tables: {', '.join(u[:64] for u in unknown[:20])}")
        names = list(options.tables)
    else:
        names = list(catalog)
    return sorted(
        t for t in names if t not in OPTIONAL_TABLES or getattr(options, OPTIONAL_TABLES[t])
    )


def table_meta(table: Table) -> dict[str, Any]:
    """A table's columns and key as plain data (manifest entry, task parameter)."""
    return {
        "columns": [
            {"name": c.name, "pg_type": c.pg_type, "typname": c.typname, "typmod": c.typmod,
             "not_null": c.not_null, "arrow_type": str(arrow_type(c))}
            for c in table.columns
        ],
        "primary_key": list(table.primary_key),
    }


def read_snapshot_info(conn: psycopg.Connection, snapshot_id: str) -> SnapshotInfo:
    """Catalog, revision and time as of the exported snapshot (same transaction)."""
    has_alembic = conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()
    revision_row = None
    if has_alembic and has_alembic[0] is not None:
        revision_row = conn.execute("SELECT version_num FROM alembic_version LIMIT 1").fetchone()
    row = conn.execute("SELECT now(), current_setting('server_version')").fetchone()
    assert row is not None
    catalog = read_catalog(conn)
    tables = {name: table_meta(t) for name, t in catalog.items()}
    sequences = read_all_sequences(conn)
    for name, meta in tables.items():
        meta["sequences"] = sequences.get(name, {})
    return SnapshotInfo(
        snapshot_id=snapshot_id,
        alembic_revision=revision_row[0] if revision_row else None,
        snapshot_time=row[0],
        server_version=row[1],
        tables=tables,
    )


#: Every serial/identity sequence of a public table, with its owning column.
_OWNED_SEQUENCES = """
SELECT t.relname, a.attname, s.oid::regclass::text
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.deptype IN ('a', 'i')
ORDER BY 1, 2
"""


def read_all_sequences(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    """{table: {column: [last_value, is_called]}} in two round trips (not two per column)."""
    owned = conn.execute(_OWNED_SEQUENCES).fetchall()
    if not owned:
        return {}
    union = " UNION ALL ".join(
        f"SELECT {i}, last_value, is_called FROM {seq}" for i, (_, _, seq) in enumerate(owned))
    values = {int(i): (int(v), bool(c)) for i, v, c in conn.execute(union).fetchall()}
    out: dict[str, dict[str, Any]] = {}
    for i, (table, column, _) in enumerate(owned):
        last, called = values[i]
        out.setdefault(table, {})[column] = [last, called]
    return out


def read_sequences(conn: psycopg.Connection, table: str, columns: list[str]) -> dict[str, Any]:
    """{column: [last_value, is_called]} of the table's serial/identity sequences."""
    out: dict[str, Any] = {}
    for col in columns:
        row = conn.execute("SELECT pg_get_serial_sequence(%s, %s)",
                           (f"public.{quote_ident(table)}", col)).fetchone()
        if row and row[0]:
            seq = conn.execute(f"SELECT last_value, is_called FROM {row[0]}").fetchone()
            if seq:
                out[col] = [int(seq[0]), bool(seq[1])]
    return out


def columns_from_meta(meta: dict[str, Any]) -> list[Any]:
    """Catalog Column objects back from plain table metadata."""
    from db.backup.catalog import Column

    return [Column(c["name"], c["typname"], c["pg_type"], c["typmod"], c["not_null"])
            for c in meta["columns"]]


#: Tables smaller than this (heap bytes) are exported together, in-process, over one
#: snapshot connection: a psql process and a Prefect task per table cost more than the data.
SMALL_TABLE_BYTES = 8 * 1024 * 1024


def table_sizes(conn: psycopg.Connection) -> dict[str, int]:
    """Heap size in bytes of every public table (one catalog query)."""
    rows = conn.execute(
        "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')").fetchall()
    return {str(name): int(size) for name, size in rows}


def split_small(tables: list[str], sizes: dict[str, int],
                limit: int = SMALL_TABLE_BYTES) -> tuple[list[str], list[str]]:
    """(small tables, big tables): small ones go through one batched export."""
    small = [t for t in tables if sizes.get(t, limit) < limit]
    return small, [t for t in tables if t not in small]


def export_small_tables(
    url: str,
    snapshot_id: str,
    tables: dict[str, dict[str, Any]],
    store: Store,
    *,
    compress: bool,
    key: bytes | None,
    where: dict[str, str] | None = None,
    on_table: Any = None,
) -> list[TableFile]:
    """Export several (small) tables of the snapshot over one connection, one after another."""
    from db.backup.writer import iter_batches, snapshot_reader

    out: list[TableFile] = []
    with snapshot_reader(url, snapshot_id) as conn:
        for table, meta in tables.items():
            columns = columns_from_meta(meta)
            done = _write(iter_batches(conn, table, columns, (where or {}).get(table)),
                          columns, store, table, compress=compress, key=key)
            out.append(done)
            if on_table is not None:
                on_table(done)
    return out


def export_table(
    url: str,
    snapshot_id: str,
    table: str,
    meta: dict[str, Any],
    store: Store,
    *,
    compress: bool,
    key: bytes | None,
    where: str | None = None,
) -> TableFile:
    """Stream one table of the snapshot into its Parquet file."""
    columns = columns_from_meta(meta)
    return _write(iter_snapshot_batches(url, snapshot_id, table, columns, where), columns,
                  store, table, compress=compress, key=key)


def exclude_own_record(backup_id: int | None) -> dict[str, str]:
    """Row filters: a backup never contains its own (still running) catalog record."""
    return {"system_backups": f"id <> {int(backup_id)}"} if backup_id is not None else {}


def encryption_setup(
    options: BackupOptions, secret_key: bytes | None
) -> tuple[bytes | None, dict[str, Any] | None]:
    """(key, manifest encryption entry) for the options; (None, None) when not encrypted."""
    if options.passphrase is not None:
        salt = os.urandom(16)
        key = key_from_passphrase(options.passphrase.get_secret_value(), salt)
        return key, {"alg": "AES-256-GCM-STREAM", "kdf": "scrypt", "salt": salt.hex()}
    if options.encrypt:
        if secret_key is None:
            raise ValueError("encryption needs the service secret key")
        return secret_key, {"alg": "AES-256-GCM-STREAM", "kdf": "service-secret"}
    return None, None


def manifest_body(
    *,
    name: str,
    backup_id: int | None,
    info: SnapshotInfo,
    files: list[TableFile],
    options: BackupOptions,
    created_by: str | None,
    encryption: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest content (written last)."""
    opts = options.model_dump(exclude={"passphrase"})
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "backup_id": backup_id,
        "backup_type": "incremental" if options.incremental else "full",
        "alembic_revision": info.alembic_revision,
        "server_version": info.server_version,
        "snapshot_time": info.snapshot_time.isoformat(),
        "created_at": datetime.now(UTC).isoformat(),
        "created_by": created_by,
        "creator": {"host": socket.gethostname(), "program": "innsync"},
        "options": opts,
        "encryption": encryption,
        "tables": {
            f.table: {"file": f.file, "rows": f.rows, "bytes": f.bytes, "sha256": f.sha256,
                      **info.tables[f.table], **f.extra}
            for f in sorted(files, key=lambda f: f.table)
        },
        **(extra or {}),
    }


def write_manifest(store: Store, body: dict[str, Any], key: bytes | None) -> int:
    """Write manifest.json (atomically, last); returns its size."""
    data = dump_manifest(body, key)
    with store.open_write(MANIFEST) as fh:
        fh.write(data)
    return len(data)


def backup_name(now: datetime, backup_id: int | None) -> str:
    """A sortable directory name for a backup."""
    suffix = f"-{backup_id}" if backup_id is not None else ""
    return f"innsync-{now.strftime('%Y%m%dT%H%M%SZ')}{suffix}"


def run_backup(
    url: str,
    store: Store,
    options: BackupOptions,
    *,
    created_by: str | None = None,
    backup_id: int | None = None,
    secret_key: bytes | None = None,
    workers: int = 2,
    parent_url: str | None = None,
) -> dict[str, Any]:
    """A whole backup without Prefect (tests, benchmark): tables in parallel, manifest last.

    With `options.incremental`, `parent_url` is the backup it builds on.
    """
    from db.backup.incremental import (
        IncrementalRefused,
        export_table_delta,
        prepare_incremental,
    )

    if options.incremental and parent_url is None:
        raise IncrementalRefused("an incremental backup needs a parent backup")
    store.create_fresh()
    try:
        with exported_snapshot(url) as (conn, snapshot_id):
            info = read_snapshot_info(conn, snapshot_id)
            tables = select_tables(_catalog_stub(info), options)
            link: dict[str, Any] = {}
            passphrase = options.passphrase.get_secret_value() if options.passphrase else None
            if options.incremental:
                assert parent_url is not None
                link, options = prepare_incremental(
                    parent_url, info.alembic_revision, tables, options, secret_key)
            key, encryption = encryption_setup(options, secret_key)
            filters = exclude_own_record(backup_id)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                if options.incremental:
                    futures = [
                        pool.submit(export_table_delta, url, snapshot_id, t, info.tables[t], store,
                                    link["parent"]["path"], compress=options.compress, key=key,
                                    secret_key=secret_key, passphrase=passphrase,
                                    where=filters.get(t))
                        for t in tables
                    ]
                else:
                    small, big = split_small(tables, table_sizes(conn))
                    futures = [
                        pool.submit(export_table, url, snapshot_id, t, info.tables[t], store,
                                    compress=options.compress, key=key, where=filters.get(t))
                        for t in big
                    ]
                    batch = pool.submit(export_small_tables, url, snapshot_id,
                                        {t: info.tables[t] for t in small}, store,
                                        compress=options.compress, key=key, where=filters)
                files = [f.result() for f in futures]
                if not options.incremental:
                    files += batch.result()
        body = manifest_body(name=store.url.rsplit("/", 1)[-1], backup_id=backup_id, info=info,
                             files=files, options=options, created_by=created_by,
                             encryption=encryption, extra=link)
        write_manifest(store, body, key)
    except BaseException:
        store.remove()  # our own new directory: no half-written backup stays behind
        raise
    return body


def _catalog_stub(info: SnapshotInfo) -> dict[str, Table]:
    return {name: Table(name, [], ()) for name in info.tables}
