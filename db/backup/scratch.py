"""verify --full: restore into a scratch database and compare every table row by row."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.engine import make_url

from db.backup.create import columns_from_meta
from db.backup.restore import RestoreOptions, restore_staged
from db.backup.verify import StagedBackup
from db.backup.writer import connect, iter_batches


class ComparisonFailed(Exception):
    """A table restored into the scratch database differs from its backup file."""


def _sorted(table: pa.Table, key: list[str]) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in key]) if key else table


def restore_and_compare(server_url: str, staged: dict[str, Any]) -> dict[str, int]:
    """Restore into a new database on the same server, compare, drop it; rows per table."""
    from db import migrate
    from db.engine import to_sqlalchemy_url

    manifest = staged["manifest"]
    name = f"innsync_verify_{secrets.token_hex(4)}"
    admin = make_url(server_url).set(database="postgres").render_as_string(hide_password=False)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate.upgrade(manifest.get("alembic_revision") or "head", to_sqlalchemy_url(url))
        restore_staged(url, StagedBackup(**staged), RestoreOptions())
        out: dict[str, int] = {}
        with connect(url) as conn:
            for table, entry in manifest["tables"].items():
                columns = columns_from_meta(entry)
                key = entry.get("primary_key") or [c.name for c in columns]
                got = pa.Table.from_batches(list(iter_batches(conn, table, columns)),
                                            schema=pq.read_schema(staged["files"][table]))
                want = pq.read_table(staged["files"][table])
                if not _sorted(got, key).equals(_sorted(want, key)):
                    raise ComparisonFailed(f"{table}: restored rows differ from the backup")
                out[table] = want.num_rows
        return out
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
