"""Arrow batches -> PostgreSQL binary COPY rows, vectorised (numpy + Arrow kernels).

The server parses binary COPY 2-3x faster than CSV (no text parsing of dates, numbers and
timestamps), and building it here costs less than Arrow's CSV writer. Each column becomes
an Arrow binary array of whole fields (4-byte length + value bytes); one
`binary_join_element_wise` then lays the rows out back to back. Only types whose binary
form is simple are encoded; a table with any other type is loaded as CSV.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from db.backup.catalog import Column
from db.backup.types import numeric_precision

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_PG_EPOCH_DAYS = 10957  # 2000-01-01 - 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400_000_000
_NULL = np.frombuffer(b"\xff\xff\xff\xff", dtype=np.uint8)

Encoder = Callable[[pa.Array], pa.Array]


def _fixed(values: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    """Fields from big-endian fixed-width values (n, w) uint8; NULL where not valid."""
    n, w = values.shape
    length = np.frombuffer(np.array([w], dtype=">i4").tobytes(), dtype=np.uint8)
    rows = np.empty((n, 4 + w), dtype=np.uint8)
    rows[:, :4] = length
    rows[:, 4:] = values
    if valid is None or valid.all():
        offsets = np.arange(0, (n + 1) * (4 + w), 4 + w, dtype=np.int32)
        data = rows.reshape(-1)
    else:
        rows[~valid, :4] = _NULL
        keep = np.ones((n, 4 + w), dtype=bool)
        keep[~valid, 4:] = False
        data = rows[keep]
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.where(valid, 4 + w, 4), out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(data)])


def _valid(arr: pa.Array) -> np.ndarray | None:
    if not arr.null_count:
        return None
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _numbers(dtype: str, fill: object = 0) -> Encoder:
    def encode(arr: pa.Array) -> pa.Array:
        values = pc.fill_null(arr, fill).to_numpy(zero_copy_only=False).astype(dtype)
        return _fixed(values.view(np.uint8).reshape(len(arr), -1), _valid(arr))
    return encode


def _shifted(int_type: pa.DataType, dtype: str, shift: int) -> Encoder:
    def encode(arr: pa.Array) -> pa.Array:
        ints = pc.fill_null(arr.view(int_type), 0).to_numpy(zero_copy_only=False)
        values = (ints.astype(np.int64) - shift).astype(dtype)
        return _fixed(values.view(np.uint8).reshape(len(arr), -1), _valid(arr))
    return encode


def _bool(arr: pa.Array) -> pa.Array:
    values = pc.fill_null(arr, False).to_numpy(zero_copy_only=False).astype(np.uint8)
    return _fixed(values.reshape(-1, 1), _valid(arr))


def _varlen(arr: pa.Array) -> pa.Array:
    """Text-like or bytea fields: 4-byte length (-1 for NULL), then the bytes."""
    data = pc.fill_null(arr.cast(pa.binary()), b"")
    lengths = np.asarray(pc.binary_length(data).to_numpy(zero_copy_only=False), dtype=np.int32)
    valid = _valid(arr)
    if valid is not None:
        lengths = np.where(valid, lengths, -1).astype(np.int32)
    n = len(arr)
    heads = pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(np.arange(0, 4 * (n + 1), 4, dtype=np.int32)),
                         pa.py_buffer(lengths.astype(">i4").tobytes())])
    return _join([heads, data])


def _jsonb(arr: pa.Array) -> pa.Array:
    text = pc.fill_null(arr, "")
    prefixed = pc.binary_join_element_wise(pa.array([b"\x01"] * len(arr), pa.binary()),
                                           text.cast(pa.binary()), b"")
    if arr.null_count:
        prefixed = pc.if_else(arr.is_valid(), prefixed, pa.scalar(None, pa.binary()))
    return _varlen(prefixed)


def _numeric(precision: int, scale: int) -> Encoder:
    """numeric(p, s), p <= 18, from decimal128: fixed digit groups (the server strips zeros)."""
    ni, nf = -(-(precision - scale) // 4), -(-scale // 4)
    pad = 10 ** (4 * nf - scale)

    def encode(arr: pa.Array) -> pa.Array:
        n = len(arr)
        words = np.frombuffer(arr.buffers()[1], dtype="<i8").reshape(-1, 2)
        unscaled = words[arr.offset:arr.offset + n, 0].copy()
        negative = unscaled < 0
        magnitude = np.abs(unscaled)
        whole, frac = np.divmod(magnitude, 10 ** scale)
        frac = frac * pad
        groups = np.empty((n, 4 + ni + nf), dtype=np.int64)
        groups[:, 0] = ni + nf
        groups[:, 1] = ni - 1
        groups[:, 2] = np.where(negative, 0x4000, 0)
        groups[:, 3] = scale
        for i in range(ni):
            groups[:, 4 + i] = (whole // 10 ** (4 * (ni - 1 - i))) % 10000
        for i in range(nf):
            groups[:, 4 + ni + i] = (frac // 10 ** (4 * (nf - 1 - i))) % 10000
        values = groups.astype(">i2").view(np.uint8).reshape(n, -1)
        return _fixed(values, _valid(arr))

    return encode


def encoder(col: Column, arrow: pa.DataType) -> Encoder | None:
    """The binary field encoder for a column stored as `arrow`, or None if unsupported."""
    t, name = arrow, col.typname
    simple: dict[tuple[str, pa.DataType], Encoder] = {
        ("int2", pa.int16()): _numbers(">i2"),
        ("int4", pa.int32()): _numbers(">i4"),
        ("int8", pa.int64()): _numbers(">i8"),
        ("float4", pa.float32()): _numbers(">f4", 0.0),
        ("float8", pa.float64()): _numbers(">f8", 0.0),
        ("bool", pa.bool_()): _bool,
        ("date", pa.date32()): _shifted(pa.int32(), ">i4", _PG_EPOCH_DAYS),
        ("timestamp", pa.timestamp("us")): _shifted(pa.int64(), ">i8", _PG_EPOCH_US),
        ("timestamptz", pa.timestamp("us", tz="UTC")): _shifted(pa.int64(), ">i8",
                                                                 _PG_EPOCH_US),
        ("bytea", pa.binary()): _varlen,
    }
    if (name, t) in simple:
        return simple[(name, t)]
    if pa.types.is_string(t) and name in ("text", "varchar", "bpchar", "json", "name"):
        return _varlen
    if pa.types.is_string(t) and name == "jsonb":
        return _jsonb
    if name == "numeric" and pa.types.is_decimal128(t):
        ps = numeric_precision(col.typmod)
        if ps is not None and ps == (t.precision, t.scale) and t.precision <= 18:
            return _numeric(*ps)
    return None


def _join(parts: list[pa.Array]) -> pa.Array:
    return pc.binary_join_element_wise(*parts, b"")


def encode_batch(batch: pa.RecordBatch, encoders: list[Encoder]) -> memoryview:
    """The binary COPY rows of one batch (no header or trailer)."""
    n = batch.num_rows
    if n == 0:
        return memoryview(b"")
    count = np.frombuffer(np.array([batch.num_columns], dtype=">i2").tobytes(), np.uint8)
    heads = pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(np.arange(0, 2 * (n + 1), 2, dtype=np.int32)),
                         pa.py_buffer(np.tile(count, n))])
    fields = [enc(col) for enc, col in zip(encoders, batch.columns, strict=True)]
    rows = _join([heads, *fields])
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset:rows.offset + n + 1]
    return memoryview(rows.buffers()[2][int(offsets[0]):int(offsets[-1])])
