"""validateData: check a staged backup against the target schema, reporting every problem."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import psycopg
import pyarrow.compute as pc
import pyarrow.parquet as pq

from db.backup import types
from db.backup.catalog import Table, quote_ident
from db.backup.create import MERGE_TABLES as MERGE

if TYPE_CHECKING:
    from db.backup.verify import StagedBackup



@dataclass
class Problem:
    """One problem: where, which check, how many rows, and a message."""

    table: str
    check: str
    message: str
    column: str | None = None
    rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for APIs and artifacts."""
        return asdict(self)


def _column_problems(table: Table, path: str, names: list[str]) -> list[Problem]:
    """Type, NOT NULL and length checks straight from the Parquet file."""
    problems: list[Problem] = []
    pf = pq.ParquetFile(path)
    stored = pf.schema_arrow
    for name in names:
        col = table.column(name)
        expected = types.arrow_type(col)
        got = stored.field(name).type
        if got != expected:
            problems.append(Problem(table.name, "type", f"stored as {got}, column is "
                                    f"{col.pg_type} ({expected})", name))
            continue
        data = pf.read(columns=[name]).column(0)
        if col.not_null and data.null_count:
            problems.append(Problem(table.name, "not_null", "NULL in a NOT NULL column", name,
                                    data.null_count))
        if col.typname in ("varchar", "bpchar") and col.typmod > 4 and len(data):
            limit = col.typmod - 4
            too_long = pc.sum(pc.greater(pc.utf8_length(data), limit)).as_py() or 0
            if too_long:
                problems.append(Problem(table.name, "length", f"longer than {limit} characters",
                                        name, int(too_long)))
    return problems


def _checks(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    return [
        (name, expr)
        for name, expr in conn.execute(
            """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
               WHERE conrelid = %s::regclass AND contype = 'c'""",
            (f"public.{quote_ident(table)}",),
        ).fetchall()
    ]


def _uniques(conn: psycopg.Connection, table: str) -> list[tuple[str, list[str]]]:
    return [
        (name, list(cols))
        for name, cols in conn.execute(
            """SELECT con.conname, ARRAY(SELECT attname FROM unnest(con.conkey) k(n)
                      JOIN pg_attribute ON attrelid = con.conrelid AND attnum = k.n)
               FROM pg_constraint con WHERE conrelid = %s::regclass AND contype IN ('p', 'u')""",
            (f"public.{quote_ident(table)}",),
        ).fetchall()
    ]


def _count(conn: psycopg.Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def validate_staged(
    conn: psycopg.Connection,
    staged: StagedBackup,
    catalog: dict[str, Table],
    wanted: list[str],
    columns: dict[str, list[str]],
    *,
    skip_existing: bool,
) -> list[Problem]:
    """Every problem restoring `wanted` would hit; the database is left as it was."""
    from db.backup.restore import copy_file_into, orphan_count

    problems: list[Problem] = []
    loaded: dict[str, str] = {}
    with conn.transaction(force_rollback=True):
        for t in wanted:
            col_problems = _column_problems(catalog[t], staged.files[t], columns[t])
            problems += col_problems
            if col_problems:
                continue
            tmp = quote_ident(f"_validate_{t}")
            conn.execute(f"CREATE TEMP TABLE {tmp} (LIKE public.{quote_ident(t)})")
            copy_file_into(conn, staged.files[t], tmp, columns[t],
                           columns=[catalog[t].column(n) for n in columns[t]])
            loaded[t] = tmp
            for name, expr in _checks(conn, t):
                body = expr.removeprefix("CHECK ").removesuffix(" NOT VALID")
                n = _count(conn, f"SELECT count(*) FROM {tmp} WHERE NOT {body}")
                if n:
                    problems.append(Problem(t, "check", f"violates {name}: {expr}", rows=n))
            for name, cols in _uniques(conn, t):
                key = ", ".join(quote_ident(c) for c in cols)
                notnull = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in cols)
                n = _count(conn, f"SELECT count(*) FROM (SELECT 1 FROM {tmp} WHERE {notnull} "
                                 f"GROUP BY {key} HAVING count(*) > 1) d")
                if n:
                    problems.append(Problem(t, "unique", f"duplicate keys for {name} ({key})",
                                            rows=n))
        for t, tmp in loaded.items():
            for fk in catalog[t].foreign_keys:
                parents = []
                merged = skip_existing or fk.ref_table in MERGE
                if fk.ref_table in loaded:
                    parents.append(f"SELECT * FROM {loaded[fk.ref_table]}")
                if fk.ref_table not in wanted or merged:
                    parents.append(f"SELECT * FROM public.{quote_ident(fk.ref_table)}")
                if fk.ref_table in wanted and fk.ref_table not in loaded:
                    continue  # the parent already failed its own checks
                parent = "(" + " UNION ALL ".join(parents) + ")"
                n = orphan_count(conn, fk, tmp, parent)
                if n:
                    problems.append(Problem(t, "foreign_key", f"{fk.name}: no matching "
                                            f"{fk.ref_table} row", ", ".join(fk.columns), n))
        # Tables left out of the restore must not point at replaced rows that will vanish.
        for table in catalog.values():
            if table.name in wanted:
                continue
            for fk in table.foreign_keys:
                if fk.ref_table in loaded and not (skip_existing or fk.ref_table in MERGE):
                    n = orphan_count(conn, fk, f"public.{quote_ident(table.name)}",
                                     loaded[fk.ref_table])
                    if n:
                        problems.append(Problem(table.name, "foreign_key", f"{fk.name}: rows "
                                                f"would lose their {fk.ref_table} row",
                                                ", ".join(fk.columns), n))
    return problems
