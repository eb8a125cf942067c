"""PostgreSQL column types <-> Arrow types, and the CSV conversions used by COPY.

Exactness rules: numeric(p,s) is decimal128(p,s) (p <= 38), any other numeric is its exact
text; timestamptz is read `AT TIME ZONE 'UTC'` and stored as timestamp[us, UTC]; dates stay
date32; bytea is binary; json, jsonb, uuid, arrays, intervals and anything else keep
PostgreSQL's own text form (the manifest records the PostgreSQL type).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from db.backup.catalog import Column, quote_ident

_SIMPLE: dict[str, pa.DataType] = {
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "bytea": pa.binary(),
}


def numeric_precision(typmod: int) -> tuple[int, int] | None:
    """(precision, scale) of a numeric column, None when unconstrained."""
    if typmod < 4:
        return None
    return ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF


def arrow_type(col: Column) -> pa.DataType:
    """The Arrow type a column is stored as in Parquet."""
    if col.typname == "numeric":
        ps = numeric_precision(col.typmod)
        if ps is not None and ps[0] <= 38:
            return pa.decimal128(*ps)
        return pa.string()
    return _SIMPLE.get(col.typname, pa.string())


def select_expr(col: Column) -> str:
    """The SELECT expression whose COPY csv text parses into `arrow_type(col)`."""
    q = quote_ident(col.name)
    if col.typname == "timestamptz":
        return f"({q} AT TIME ZONE 'UTC')"
    if col.typname == "bytea":
        return f"encode({q}, 'hex')"
    return q


def _csv_read_type(col: Column) -> pa.DataType:
    if col.typname == "timestamptz":
        return pa.timestamp("us")
    if col.typname == "bytea":
        return pa.string()
    return arrow_type(col)


def csv_read_options(columns: list[Column], block_size: int) -> pacsv.ReadOptions:
    """Read options for headerless COPY csv output."""
    return pacsv.ReadOptions(column_names=[c.name for c in columns], block_size=block_size)


def csv_convert_options(columns: list[Column]) -> pacsv.ConvertOptions:
    """Typed CSV parsing: unquoted empty is NULL, quoted empty is the empty string."""
    return pacsv.ConvertOptions(
        column_types={c.name: _csv_read_type(c) for c in columns},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        null_values=[""],
        true_values=["t"],
        false_values=["f"],
    )


def schema(columns: list[Column]) -> pa.Schema:
    """The Parquet schema of a table, with the PostgreSQL type in field metadata."""
    return pa.schema(
        [
            pa.field(c.name, arrow_type(c), nullable=not c.not_null,
                     metadata={"pg_type": c.pg_type})
            for c in columns
        ]
    )


def _hex_to_binary(arr: pa.Array) -> pa.Array:
    return pa.array(
        [None if v is None else bytes.fromhex(v) for v in arr.to_pylist()], pa.binary()
    )


def _binary_to_pg_hex(arr: pa.Array) -> pa.Array:
    return pa.array(
        [None if v is None else "\\x" + v.hex() for v in arr.to_pylist()], pa.string()
    )


def from_copy_batch(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """A batch parsed from COPY csv, converted to the stored schema."""
    arrays = []
    for i, field in enumerate(target):
        arr = batch.column(i)
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            arr = arr.cast(field.type)
        elif pa.types.is_binary(field.type):
            arr = _hex_to_binary(arr)
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def to_copy_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A stored batch made writable as COPY csv for a TimeZone=UTC session.

    bytea goes back to PostgreSQL hex text; timestamptz is written as naive UTC text (the
    session's TimeZone reads it back as the same instant): Arrow formats a zoned timestamp
    about 10x slower than a naive one, and that was most of the restore's client CPU.
    """
    if not any(pa.types.is_binary(f.type) or _is_zoned(f.type) for f in batch.schema):
        return batch
    arrays = [
        _binary_to_pg_hex(col) if pa.types.is_binary(col.type)
        else col.cast(pa.timestamp(col.type.unit)) if _is_zoned(col.type)
        else col
        for col in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _is_zoned(t: pa.DataType) -> bool:
    return pa.types.is_timestamp(t) and t.tz is not None


def max_utf8_length(arr: pa.ChunkedArray | pa.Array) -> int:
    """The longest string (in characters) of a string column, 0 when empty."""
    value = pc.max(pc.utf8_length(arr)).as_py()
    return int(value or 0)
