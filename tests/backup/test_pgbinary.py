"""Binary COPY encoding: every supported type loads the same values as the CSV path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pyarrow.parquet as pq

from db.backup import pgbinary
from db.backup.catalog import read_catalog
from db.backup.restore import binary_encoders, copy_file_into
from db.backup.writer import connect, iter_batches, write_table_file

TABLE = """
CREATE TABLE enc (
    id bigint PRIMARY KEY, i2 smallint, i4 integer, f4 real, f8 double precision, b boolean,
    d date, ts timestamp, tz timestamptz, v varchar(10), c char(3), t text, j json, jb jsonb,
    by bytea, n numeric(12, 2), n0 numeric(18, 0), nf numeric(8, 8), n4 numeric(9, 4)
);
INSERT INTO enc VALUES
 (1, -32768, 2147483647, 1.5, -0.0, true, '1999-12-31', '1970-01-01 00:00:00.000001',
  '2000-01-01 00:00:00+00', 'ü€', 'a', '', '{"a": 1}', '{"b": [1, "x"]}', '\\x00ff',
  -1234567890.12, 999999999999999999, 0.00000001, -0.0001),
 (2, NULL, NULL, 'NaN', 'Infinity', NULL, '0044-03-15', '2262-01-01 12:00:00',
  '1969-07-20 20:17:40.5+00', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 0, -1, '-Infinity', 1e-300, false, '2026-11-24', '1900-02-28 23:59:59.999999',
  '2026-11-24 05:00:00.123456+05', '', '   ', E'line\\nbreak,"q"', 'null', 'null', '',
  0, -1, -0.99999999, 12345.6789);
"""


def _csv(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, options="-c TimeZone=UTC -c extra_float_digits=1") as conn:
        return conn.execute("SELECT e::text FROM enc e ORDER BY id").fetchall()


def test_binary_copy_equals_source(scratch_db: Callable[[], str], tmp_path: Path) -> None:
    from db.backup.storage import Store

    url = scratch_db()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TABLE)
    with connect(url) as conn:
        table = read_catalog(conn)["enc"]
        store = Store.open(str(tmp_path))
        f = write_table_file(iter_batches(conn, "enc", table.columns), table.columns, store,
                             "enc")
    path = str(tmp_path / f.file)
    names = [c.name for c in table.columns]
    encoders = binary_encoders(path, names, table.columns)
    assert encoders is not None  # every column above has a binary encoder
    assert pgbinary.encode_batch(pq.read_table(path).to_batches()[0], encoders)
    before = _csv(url)
    with connect(url) as conn, conn.transaction():
        conn.execute("CREATE TEMP TABLE enc2 (LIKE enc)")
        copy_file_into(conn, path, "enc2", names, columns=table.columns)
        conn.execute("TRUNCATE enc")
        conn.execute("INSERT INTO enc SELECT * FROM enc2")
    assert _csv(url) == before
