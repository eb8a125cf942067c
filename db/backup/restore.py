"""Load a verified (staged) backup into a database in one all-or-nothing transaction."""

from __future__ import annotations

import io
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg.copy import LibpqWriter
from pydantic import BaseModel

from db.backup import pgbinary, types
from db.backup.catalog import Column, ForeignKey, Table, quote_ident, read_catalog
from db.backup.create import APPEND_TABLES, MERGE_TABLES
from db.backup.planner import plan_restore
from db.backup.validate import Problem, validate_staged
from db.backup.verify import StagedBackup
from db.backup.writer import connect

log = logging.getLogger(__name__)
BATCH_ROWS = 64 * 1024
#: Binary encoding holds every column's fields and the joined rows at once: smaller batches
#: keep the restore under 300 MB RSS (measured: 64k rows ~390 MB, 16k ~280 MB, same speed).
BINARY_BATCH_ROWS = 16 * 1024
ENCODE_THREADS = 2
#: Above this many rows, secondary indexes are dropped and rebuilt after loading.
REINDEX_ROWS = 50_000
#: The restore session's index-build memory (server side, only while building indexes).
MAINTENANCE_WORK_MEM = os.environ.get("INNSYNC_RESTORE_MAINTENANCE_WORK_MEM", "1GB")
_WRITE_OPTIONS = pacsv.WriteOptions(include_header=False)


class RestoreOptions(BaseModel):
    """The seed's restore options plus a table subset."""

    skip_existing: bool = False
    validate_data: bool = False
    tables: list[str] | None = None


class RestoreRefused(Exception):
    """The backup cannot be restored into this database as it is."""


class RestoreInProgress(RestoreRefused):
    """Another restore is loading into this database: one at a time."""


#: pg_try_advisory_xact_lock(namespace, 0) held by the restore loading into a database
#: (bookings use 7_311, partner tokens 7_312).
RESTORE_LOCK_NAMESPACE = 7_313


class SubsetNeedsTables(RestoreRefused):
    """A table-subset restore would empty tables that other, non-empty tables reference."""

    def __init__(self, message: str, needed: list[str]) -> None:
        super().__init__(message)
        self.needed = needed


class ValidationFailed(RestoreRefused):
    """validateData found problems; nothing was changed."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) found; nothing was restored")
        self.problems = problems


@dataclass
class RestoreResult:
    """What a restore loaded, per table."""

    tables: dict[str, int] = field(default_factory=dict)
    replica_mode: bool = False


def _columns_sql(names: list[str]) -> str:
    return ", ".join(quote_ident(n) for n in names)


def _encoded_chunks(path: str, names: list[str], encode: Callable[[pa.RecordBatch], Any],
                    batch_rows: int = BATCH_ROWS) -> Iterator[Any]:
    """Encoded batches of a Parquet file, on two threads (pyarrow and numpy free the GIL)."""
    batches = pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=names)
    with ThreadPoolExecutor(max_workers=ENCODE_THREADS) as pool:
        inflight: deque[Future[Any]] = deque()
        for i, batch in enumerate(batches):
            inflight.append(pool.submit(encode, batch))
            if len(inflight) > ENCODE_THREADS:  # bounded memory: a few batches in flight
                yield inflight.popleft().result()
            if i % 16 == 15:
                pa.default_memory_pool().release_unused()  # keep RSS flat
        while inflight:
            yield inflight.popleft().result()


def _csv_encoder(null_columns: frozenset[str]) -> Callable[[pa.RecordBatch], bytes]:
    def encode(batch: pa.RecordBatch) -> bytes:
        batch = types.to_copy_batch(batch)
        if null_columns:
            batch = _null_out(batch, null_columns)
        buf = io.BytesIO()
        pacsv.write_csv(batch, buf, _WRITE_OPTIONS)
        return buf.getvalue()
    return encode


def binary_encoders(path: str, names: list[str],
                    columns: list[Column] | None) -> list[pgbinary.Encoder] | None:
    """Binary COPY encoders for every column, or None when one type needs CSV."""
    if columns is None or os.environ.get("INNSYNC_RESTORE_CSV") == "1":
        return None
    stored = pq.read_schema(path)
    encoders = []
    for name, col in zip(names, columns, strict=True):
        enc = pgbinary.encoder(col, stored.field(name).type)
        if enc is None:
            return None
        encoders.append(enc)
    return encoders


def copy_file_into(
    conn: psycopg.Connection, path: str, target: str, names: list[str],
    null_columns: frozenset[str] = frozenset(), *, freeze: bool = False,
    columns: list[Column] | None = None,
) -> int:
    """COPY a Parquet file into `target` (an already quoted name); returns rows.

    Given the target's `columns` (in `names` order) and only simple types, rows go as
    binary COPY (2-3x cheaper for the server to parse than CSV); otherwise as CSV.
    """
    encoders = None if null_columns else binary_encoders(path, names, columns)
    fmt = "binary" if encoders is not None else "csv"
    options = f"FORMAT {fmt}, FREEZE" if freeze else f"FORMAT {fmt}"
    # Written from this thread (no psycopg queue): memory stays at a few encoded batches.
    with conn.cursor() as cur, cur.copy(
        f"COPY {target} ({_columns_sql(names)}) FROM STDIN ({options})",
        writer=LibpqWriter(cur),
    ) as copy:
        if encoders is not None:
            copy.write(pgbinary.HEADER)
            chosen = encoders
            for chunk in _encoded_chunks(path, names, lambda b: pgbinary.encode_batch(b, chosen),
                                         BINARY_BATCH_ROWS):
                copy.write(chunk)
            copy.write(pgbinary.TRAILER)
        else:
            for chunk in _encoded_chunks(path, names, _csv_encoder(null_columns)):
                copy.write(chunk)
    return int(pq.ParquetFile(path).metadata.num_rows)


def _null_out(batch: Any, names: frozenset[str]) -> Any:
    arrays = [pa.nulls(batch.num_rows, col.type) if n in names else col
              for n, col in zip(batch.schema.names, batch.columns, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _try_replica_mode(conn: psycopg.Connection) -> bool:
    """Disable FK triggers for this transaction if permitted (superuser); checked after."""
    try:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False


def _secondary_indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    return [
        (name, ddl)
        for name, ddl in conn.execute(
            """SELECT quote_ident(ci.relname), pg_get_indexdef(i.indexrelid)
               FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
               WHERE i.indrelid = %s::regclass
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
            (f"public.{quote_ident(table)}",),
        ).fetchall()
    ]


def reset_sequences(
    conn: psycopg.Connection, table: Table, recorded: dict[str, Any] | None = None
) -> None:
    """setval each serial/identity sequence to the backed-up value, or max(column) if higher."""
    for col in table.columns:
        row = conn.execute(
            "SELECT pg_get_serial_sequence(%s, %s)", (f"public.{quote_ident(table.name)}", col.name)
        ).fetchone()
        if not (row and row[0]):
            continue
        q = quote_ident(col.name)
        top = conn.execute(f"SELECT max({q}) FROM public.{quote_ident(table.name)}").fetchone()
        high = top[0] if top else None
        last, called = (recorded or {}).get(col.name, (1, False))
        if high is not None and (high > last or (high == last and not called)):
            last, called = high, True
        conn.execute("SELECT setval(%s, %s, %s)", (row[0], last, called))


def orphan_count(conn: psycopg.Connection, fk: ForeignKey, child: str, parent: str) -> int:
    """Rows of `child` whose non-NULL key has no match in `parent` (names already quoted)."""
    cond = " AND ".join(f"p.{quote_ident(r)} = c.{quote_ident(col)}"
                        for col, r in zip(fk.columns, fk.ref_columns, strict=True))
    notnull = " AND ".join(f"c.{quote_ident(col)} IS NOT NULL" for col in fk.columns)
    row = conn.execute(
        f"SELECT count(*) FROM {child} c WHERE {notnull} "
        f"AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {cond})"
    ).fetchone()
    return int(row[0]) if row else 0


class RestoreRecord(BaseModel):
    """Who restored which backup: written to audit_logs in the restore's transaction."""

    actor: str
    backup_id: int | None = None
    file_path: str


AUDIT_TABLE = "audit_logs"


def record_restore(conn: psycopg.Connection, record: RestoreRecord, manifest: dict[str, Any],
                   tables: dict[str, int]) -> None:
    """One audit_logs row for this restore (after the sequence is set past every row)."""
    from psycopg.types.json import Jsonb

    conn.execute(
        f"INSERT INTO public.{AUDIT_TABLE} (actor, action, entity_type, entity_id, before, after)"
        " VALUES (%s, 'restore', 'backup', %s, NULL, %s)",
        (record.actor[:100], str(record.backup_id) if record.backup_id is not None
         else record.file_path[-64:],
         Jsonb({"file_path": record.file_path, "backup_id": record.backup_id,
                "backup_created_at": manifest.get("created_at"),
                "backup_name": manifest.get("name"), "tables": tables})),
    )


def restore_staged(
    url: str,
    staged: StagedBackup,
    options: RestoreOptions,
    *,
    on_table: Callable[[str, int], None] | None = None,
    record: RestoreRecord | None = None,
) -> RestoreResult:
    """Restore `staged` into the database at `url`: all tables or nothing.

    Merge tables (MERGE_TABLES: the audit trail, API keys, backup records, partner tokens)
    keep their current rows; with `record`, the restore itself goes into audit_logs."""
    manifest = staged.manifest
    wanted = options.tables or list(manifest["tables"])
    result = RestoreResult()
    with connect(url) as conn:
        with conn.transaction():
            # One restore at a time (backups may run side by side): a second one is refused.
            locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s, 0)",
                                  (RESTORE_LOCK_NAMESPACE,)).fetchone()
            if not (locked and locked[0]):
                raise RestoreInProgress("another restore is running on this database: "
                                        "try again when it has finished")
            # Never hang behind another session's locks (an API request, a sync): fail instead.
            conn.execute("SET LOCAL lock_timeout = '30s'")
            catalog = read_catalog(conn)
            missing = sorted(t for t in wanted if t not in catalog)
            if missing:
                raise RestoreRefused(f"tables not in this database: {', '.join(missing)}")
            columns = _restorable_columns(manifest, catalog, wanted)
            if options.validate_data:
                problems = validate_staged(conn, staged, catalog, wanted, columns,
                                           skip_existing=options.skip_existing)
                if problems:
                    raise ValidationFailed(problems)
            plan = plan_restore(catalog, wanted)
            result.replica_mode = _try_replica_mode(conn)
            if result.replica_mode:
                plan.deferred = []
            merge = [t for t in plan.order if options.skip_existing or t in MERGE_TABLES]
            replace = [t for t in plan.order if t not in merge]
            if replace:
                replace_all = replace + _empty_dependents(conn, catalog, replace)
                conn.execute("TRUNCATE " + ", ".join(
                    f"public.{quote_ident(t)}" for t in replace_all))
            # Index builds after loading: sorted in memory, by parallel workers (measured on
            # 1M reservations: 1GB with 2 workers ~35% faster than 256MB, 2x faster than 0).
            conn.execute("SELECT set_config('maintenance_work_mem', %s, true)",
                         (MAINTENANCE_WORK_MEM,))
            conn.execute("SET LOCAL max_parallel_maintenance_workers = 2")
            deferred_cols = {t: frozenset(c for fk in plan.deferred if fk.table == t
                                          for c in fk.columns) for t in plan.order}
            pending_fks: list[tuple[str, str, str]] = []
            for table in plan.order:
                rows = _load_table(conn, staged.files[table], catalog[table], columns[table],
                                   merge=table in merge, null_columns=deferred_cols[table],
                                   reindex=manifest["tables"][table]["rows"] >= REINDEX_ROWS,
                                   pending_fks=pending_fks)
                result.tables[table] = rows
                log.info("restored %s: %d rows", table, rows)
                if on_table:
                    on_table(table, rows)
            log.info("tables loaded")
            for fk in plan.deferred:
                _apply_deferred(conn, staged.files[fk.table], catalog[fk.table], fk)
            t0 = time.perf_counter()
            # Re-adding a foreign key validates every row (one join per FK).
            for owner, name, ddl in pending_fks:
                conn.execute(f"ALTER TABLE {owner} ADD CONSTRAINT {name} {ddl}")
            t1 = time.perf_counter()
            if result.replica_mode:
                _check_foreign_keys(conn, catalog, wanted, {n for _, n, _ in pending_fks})
            t2 = time.perf_counter()
            for table in plan.order:
                reset_sequences(conn, catalog[table],
                                manifest["tables"][table].get("sequences"))
            log.info("foreign keys %.2fs, fk checks %.2fs, sequences %.2fs",
                     t1 - t0, t2 - t1, time.perf_counter() - t2)
            if record is not None and AUDIT_TABLE in catalog:
                record_restore(conn, record, manifest, result.tables)
            t3 = time.perf_counter()
        log.info("commit %.2fs", time.perf_counter() - t3)
    return result


def _empty_dependents(conn: psycopg.Connection, catalog: dict[str, Table],
                      replace: list[str]) -> list[str]:
    """Tables outside the restore that reference a replaced table (transitively), if empty.

    TRUNCATE refuses a referenced table unless its referencing tables go too; an empty one
    (say, a table newer than the backup) loses nothing. A non-empty one would lose its rows:
    the restore is refused (RestoreRefused) naming the tables it needs as well.
    """
    chosen = set(replace)
    out: list[str] = []
    needed: list[str] = []
    while True:
        found = [
            t.name for t in catalog.values()
            if t.name not in chosen and any(fk.ref_table in chosen for fk in t.foreign_keys)
        ]
        if not found:
            break
        for name in found:
            has_rows = conn.execute(
                f"SELECT 1 FROM public.{quote_ident(name)} LIMIT 1").fetchone()
            (needed if has_rows else out).append(name)
        chosen.update(found)
    if needed:
        raise SubsetNeedsTables(
            f"restoring only {', '.join(sorted(replace))} would empty tables that "
            f"{', '.join(sorted(needed))} reference (directly or through each other) and "
            f"those hold rows: restore them too (tables: "
            f"{sorted(set(replace) | set(needed))}) or the whole backup",
            sorted(set(needed)),
        )
    return out


def _restorable_columns(
    manifest: dict[str, Any], catalog: dict[str, Table], wanted: list[str]
) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in wanted:
        have = {c.name for c in catalog[t].columns}
        names = [c["name"] for c in manifest["tables"][t]["columns"]]
        extra = [n for n in names if n not in have]
        if extra:
            raise RestoreRefused(f"{t}: backup columns missing in this database: {extra}")
        out[t] = names
    return out


def _constraints(conn: psycopg.Connection, table: str) -> tuple[list[tuple[str, str, str]],
                                                               list[tuple[str, str, str]]]:
    """(primary/unique constraints of `table`, FKs pointing at it) as (table, name, def)."""
    rows = conn.execute(
        """SELECT conrelid::regclass::text, quote_ident(conname), pg_get_constraintdef(oid),
                  contype
           FROM pg_constraint
           WHERE (conrelid = %(t)s::regclass AND contype IN ('p', 'u'))
              OR (confrelid = %(t)s::regclass AND contype = 'f')""",
        {"t": f"public.{quote_ident(table)}"},
    ).fetchall()
    keys = [(t, n, d) for t, n, d, kind in rows if kind in ("p", "u")]
    fks = [(t, n, d) for t, n, d, kind in rows if kind == "f"]
    return keys, fks


def _load_table(
    conn: psycopg.Connection, path: str, table: Table, names: list[str], *, merge: bool,
    null_columns: frozenset[str], reindex: bool, pending_fks: list[tuple[str, str, str]],
) -> int:
    cols = [table.column(n) for n in names]
    table_name = table.name
    target = f"public.{quote_ident(table_name)}"
    if merge:
        tmp = quote_ident(f"_restore_{table_name}")
        conn.execute(f"CREATE TEMP TABLE {tmp} (LIKE {target}) ON COMMIT DROP")
        rows = copy_file_into(conn, path, tmp, names, null_columns, columns=cols)
        listed = _columns_sql(names)
        conn.execute(f"INSERT INTO {target} ({listed}) SELECT {listed} FROM {tmp} "
                     "ON CONFLICT DO NOTHING")
        if table_name in APPEND_TABLES:
            _append_displaced(conn, table, tmp, target, names)
        conn.execute(f"DROP TABLE {tmp}")
        return rows
    if not reindex:
        return copy_file_into(conn, path, target, names, null_columns, columns=cols)
    # Big table: load into a bare heap, then build every index in one sorted pass each
    # (what pg_restore does); FKs pointing here come back (and are validated) at the end.
    indexes = _secondary_indexes(conn, table_name)
    keys, fks = _constraints(conn, table_name)
    for owner, name, _ in fks:
        conn.execute(f"ALTER TABLE {owner} DROP CONSTRAINT {name}")
    pending_fks.extend(fks)
    for owner, name, _ in keys:
        conn.execute(f"ALTER TABLE {owner} DROP CONSTRAINT {name}")
    for name, _ in indexes:
        conn.execute(f"DROP INDEX public.{name}")
    # FREEZE: the table was truncated in this transaction, so rows can be written frozen.
    t0 = time.perf_counter()
    rows = copy_file_into(conn, path, target, names, null_columns, freeze=True, columns=cols)
    t1 = time.perf_counter()
    for owner, name, ddl in keys:
        conn.execute(f"ALTER TABLE {owner} ADD CONSTRAINT {name} {ddl}")
    t2 = time.perf_counter()
    for _, ddl in indexes:
        conn.execute(ddl)
    log.info("%s: copy %.2fs, keys %.2fs, %d indexes %.2fs", table_name, t1 - t0, t2 - t1,
             len(indexes), time.perf_counter() - t2)
    return rows


def _append_displaced(conn: psycopg.Connection, table: Table, tmp: str, target: str,
                      names: list[str]) -> None:
    """Backup rows whose key is taken by a different row (another history) are appended
    with new serial ids, after every row there now, in their original order."""
    key = list(table.primary_key)
    rest = [n for n in names if n not in key]
    if len(key) != 1 or not rest:
        return
    k = quote_ident(key[0])
    listed = _columns_sql(rest)

    def row_text(alias: str) -> str:  # NULL-safe and hashable: the row's text form
        return "(ROW(" + ", ".join(f"{alias}.{quote_ident(n)}" for n in rest) + "))::text"

    t_cols = ", ".join(f"t.{quote_ident(n)}" for n in rest)
    # New ids past the max, computed here (a setval would survive a rollback); the
    # sequences are set past every row at the end of the restore. Rows already appended by
    # an earlier restore of the same backup are not appended again.
    conn.execute(
        f"INSERT INTO {target} ({k}, {listed}) "
        f"SELECT (SELECT coalesce(max({k}), 0) FROM {target}) "
        f"+ row_number() OVER (ORDER BY t.{k}), {t_cols} FROM {tmp} t "
        f"JOIN {target} a ON a.{k} = t.{k} WHERE {row_text('a')} <> {row_text('t')} "
        f"AND {row_text('t')} NOT IN (SELECT {row_text('b')} FROM {target} b)")


def _apply_deferred(conn: psycopg.Connection, path: str, table: Table, fk: ForeignKey) -> None:
    """Fill a cycle-breaking FK column after every table is loaded."""
    key = list(table.primary_key)
    tmp = quote_ident(f"_deferred_{table.name}")
    names = key + list(fk.columns)
    cols = _columns_sql(names)
    conn.execute(f"CREATE TEMP TABLE {tmp} AS SELECT {cols} FROM public.{quote_ident(table.name)}"
                 " WITH NO DATA")
    copy_file_into(conn, path, tmp, names)
    sets = ", ".join(f"{quote_ident(c)} = d.{quote_ident(c)}" for c in fk.columns)
    match = " AND ".join(f"t.{quote_ident(c)} = d.{quote_ident(c)}" for c in key)
    conn.execute(f"UPDATE public.{quote_ident(table.name)} t SET {sets} FROM {tmp} d "
                 f"WHERE {match}")
    conn.execute(f"DROP TABLE {tmp}")


def _check_foreign_keys(conn: psycopg.Connection, catalog: dict[str, Table],
                        wanted: list[str], validated: set[str]) -> None:
    """With FK triggers off, check every FK touching a restored table in one query each.

    Measured: one scan per child table probing every parent through hashed `NOT IN`
    subplans was slower (each parallel worker builds its own hash of the parent) than one
    parallel hash anti-join per foreign key.
    """
    chosen = set(wanted)
    for table in catalog.values():
        for fk in table.foreign_keys:
            if quote_ident(fk.name) in validated:
                continue
            if fk.table in chosen or fk.ref_table in chosen:
                n = orphan_count(conn, fk, f"public.{quote_ident(fk.table)}",
                                 f"public.{quote_ident(fk.ref_table)}")
                if n:
                    raise RestoreRefused(
                        f"{fk.table}: {n} row(s) break foreign key {fk.name} "
                        f"-> {fk.ref_table}; nothing was restored"
                    )
