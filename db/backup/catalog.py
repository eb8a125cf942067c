"""Read tables, columns, keys and foreign keys from the PostgreSQL catalog."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

SKIP_TABLES = frozenset({"alembic_version"})


@dataclass(frozen=True)
class Column:
    """One column: name, PostgreSQL type name, formatted type, typmod, nullability."""

    name: str
    typname: str
    pg_type: str
    typmod: int
    not_null: bool


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key from `table`(columns) to `ref_table`(ref_columns)."""

    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass
class Table:
    """A table with its columns, primary key and outgoing foreign keys."""

    name: str
    columns: list[Column]
    primary_key: tuple[str, ...]
    foreign_keys: list[ForeignKey] = field(default_factory=list)

    def column(self, name: str) -> Column:
        """The column called `name`."""
        return next(c for c in self.columns if c.name == name)


_TABLES = """
SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname
"""
_COLUMNS = """
SELECT a.attrelid, a.attname, t.typname, format_type(a.atttypid, a.atttypmod), a.atttypmod,
       a.attnotnull
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attrelid, a.attnum
"""
_KEYS = """
SELECT con.conname, con.contype, con.conrelid, con.confrelid,
       ARRAY(SELECT attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute ON attrelid = con.conrelid AND attnum = k.n ORDER BY k.i),
       ARRAY(SELECT attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute ON attrelid = con.confrelid AND attnum = k.n ORDER BY k.i)
FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
WHERE n.nspname = 'public' AND con.contype IN ('p', 'f')
"""


def read_catalog(conn: psycopg.Connection) -> dict[str, Table]:
    """Every user table in schema public (but alembic_version), keyed by name."""
    names: dict[int, str] = {
        oid: name for oid, name in conn.execute(_TABLES).fetchall() if name not in SKIP_TABLES
    }
    tables = {name: Table(name, [], ()) for name in names.values()}
    for relid, col, typname, pg_type, typmod, not_null in conn.execute(_COLUMNS).fetchall():
        if relid in names:
            tables[names[relid]].columns.append(Column(col, typname, pg_type, typmod, not_null))
    for conname, contype, relid, frelid, cols, fcols in conn.execute(_KEYS).fetchall():
        if relid not in names:
            continue
        table = tables[names[relid]]
        if contype == "p":
            table.primary_key = tuple(cols)
        elif frelid in names:
            table.foreign_keys.append(
                ForeignKey(conname, table.name, tuple(cols), names[frelid], tuple(fcols))
            )
    return tables


def quote_ident(name: str) -> str:
    """A safely double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
