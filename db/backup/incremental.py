"""Incremental backups: per-table key indexes (primary key -> 64-bit row hash) and chains.

An incremental backup stores, per table with a primary key:

    <table>.parquet          rows that are new or changed since the parent (full columns)
    <table>.deleted.parquet  primary keys present in the parent and gone now

A table without a primary key is copied whole (`mode: full`). The parent's (primary key ->
64-bit row hash) index is computed from the parent chain's rows when the incremental is
made (full backups stay as fast as before: no hashing, nothing extra stored). Row hashes
are computed client-side from the Arrow batches (the same values whether read from the
database or from a backup file), so a row counts as unchanged only when its primary key
and its 64-bit hash both match.

Restoring an incremental verifies the whole chain (each manifest names its parent's
manifest SHA-256), then writes each table's state at the last backup to one local file:
a row from backup k is kept unless a later backup changed or deleted its key. The restore
then runs exactly as for a full backup taken at that moment.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from db.backup import types
from db.backup.manifest import ManifestError, load_manifest
from db.backup.storage import MANIFEST, Store
from db.backup.verify import (
    BackupIncomplete,
    StagedBackup,
    backup_key,
    read_manifest,
    stage_single,
)
from db.backup.workdir import make_workdir
from db.backup.writer import (
    TableFile,
    iter_snapshot_batches,
    write_parquet,
    write_table_file,
)

if TYPE_CHECKING:
    from db.backup.create import BackupOptions

HASH = "_row_hash"
HASH_BATCH_ROWS = 16 * 1024
MAX_CHAIN = 1000
_NULL = np.uint64(0x9E3779B97F4A7C15)
_MULT = np.uint64(1000003)


class IncrementalRefused(Exception):
    """An incremental backup cannot be made on this parent (take a full backup)."""


class ParentMissing(ManifestError):
    """A backup of the chain is missing or is not the one the child was made on."""


# --------------------------------------------------------------------------- row hashes


def _column_hash(col: pa.Array) -> np.ndarray:
    """A uint64 hash per value; NULL gets its own constant."""
    from pandas.util import hash_array  # pandas costs ~50 MB RSS: only incrementals need it

    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        values = pc.fill_null(col, "").to_numpy(zero_copy_only=False)
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
        values = pc.fill_null(col, b"").to_numpy(zero_copy_only=False)
    elif pa.types.is_decimal(t):
        values = pc.fill_null(col.cast(pa.string()), "").to_numpy(zero_copy_only=False)
    elif pa.types.is_boolean(t):
        values = pc.fill_null(col, False).to_numpy(zero_copy_only=False).astype(np.uint64)
    elif t.bit_width in (8, 16, 32, 64):  # ints, floats (bit pattern), dates, times, stamps
        ints = col.view(getattr(pa, f"int{t.bit_width}")())
        values = pc.fill_null(ints, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        values = values.view(np.uint64)
    else:
        values = pc.fill_null(col.cast(pa.string()), "").to_numpy(zero_copy_only=False)
    hashed: np.ndarray = hash_array(values, categorize=False)
    if col.null_count:
        hashed[col.is_null().to_numpy(zero_copy_only=False)] = _NULL
    return hashed


def row_hashes(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    """A 64-bit hash of every row (all columns, in order), as int64."""
    n = batch.num_rows
    h = np.full(n, 0x345678, dtype=np.uint64)
    mult = _MULT
    with np.errstate(over="ignore"):
        for i, col in enumerate(batch.columns):
            arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            h = (h ^ _column_hash(arr)) * mult
            mult = mult + np.uint64(82520 + 2 * (batch.num_columns - i))
    return pa.array(h.view(np.int64), pa.int64())


def key_schema(schema: pa.Schema, pk: list[str], with_hash: bool = True) -> pa.Schema:
    """Schema of a key index (primary key columns, then the row hash)."""
    fields = [schema.field(c) for c in pk]
    return pa.schema(fields + ([pa.field(HASH, pa.int64(), nullable=False)] if with_hash else []))


def key_batch(batch: pa.RecordBatch, pk: list[str]) -> pa.RecordBatch:
    """The (primary key, row hash) rows of a batch."""
    arrays = [batch.column(batch.schema.get_field_index(c)) for c in pk] + [row_hashes(batch)]
    return pa.RecordBatch.from_arrays(arrays, schema=key_schema(batch.schema, pk))


class KeyLookup:
    """Exact primary-key lookup into a key table (sorted 64-bit key hashes, then compared)."""

    def __init__(self, index: pa.Table, pk: list[str]) -> None:
        self.pk = pk
        self.index = index.combine_chunks()
        hashes = _key_hashes(self.index, pk)
        self.order = np.argsort(hashes, kind="stable")
        self.sorted = hashes[self.order]

    def find(self, rows: pa.Table | pa.RecordBatch) -> np.ndarray:
        """Per row, the position in the index of the row with the same key, or -1."""
        n = rows.num_rows
        pos = np.full(n, -1, dtype=np.int64)
        if n == 0 or self.index.num_rows == 0:
            return pos
        hashes = _key_hashes(rows, self.pk)
        lo = np.searchsorted(self.sorted, hashes, "left")
        hi = np.searchsorted(self.sorted, hashes, "right")
        one = np.flatnonzero(hi - lo == 1)
        if len(one):
            cand = self.order[lo[one]]
            same = np.ones(len(one), dtype=bool)
            for c in self.pk:
                got = rows.column(c).take(pa.array(one))
                want = self.index.column(c).take(pa.array(cand))
                same &= np.asarray(pc.equal(got, want).to_numpy(zero_copy_only=False),
                                   dtype=bool)
            pos[one[same]] = cand[same]
        for i in np.flatnonzero(hi - lo > 1):  # 64-bit key-hash collisions: compare each
            key = tuple(rows.column(c)[int(i)].as_py() for c in self.pk)
            for j in self.order[lo[i]:hi[i]]:
                if tuple(self.index.column(c)[int(j)].as_py() for c in self.pk) == key:
                    pos[i] = j
        return pos

    def contains(self, rows: pa.Table | pa.RecordBatch) -> np.ndarray:
        """Boolean mask: which rows have their key in the index."""
        return self.find(rows) >= 0


def _key_hashes(rows: pa.Table | pa.RecordBatch, pk: list[str]) -> np.ndarray:
    table = pa.table([rows.column(c) for c in pk], names=pk)
    return np.asarray(row_hashes(table).to_numpy(zero_copy_only=False)).view(np.uint64)


# -------------------------------------------------------------------- making a delta


def parent_index(
    parent: Store, table: str, secret_key: bytes | None, passphrase: str | None, workdir: str
) -> pa.Table:
    """The (primary key, row hash) index of `table` as of the parent (checksums verified).

    Computed from the parent chain's rows (no index is stored: 64-bit hashes do not
    compress, and a stored index made an incremental ~75% of a full backup's size).
    """
    chain = read_chain(parent)
    entry = chain[-1][1]["tables"].get(table)
    if entry is None:
        raise IncrementalRefused(f"table {table!r} is not in the parent backup")
    pk = list(entry["primary_key"])
    parts = [
        stage_single(store, body, secret_key=secret_key, passphrase=passphrase,
                     workdir=_subdir(workdir, i), tables=[table], extras=True)
        for i, (store, body) in enumerate(chain)
    ]
    schema = pq.read_schema(parts[-1].files[table])
    batches = []
    # Small batches: hashing text goes through Python string objects, one per value.
    for i, batch in enumerate(end_state_batches(parts, table, HASH_BATCH_ROWS)):
        batches.append(key_batch(batch, pk))
        if i % 16 == 15:
            pa.default_memory_pool().release_unused()
    return pa.Table.from_batches(batches, key_schema(schema, pk)).combine_chunks()


def _subdir(workdir: str, i: int) -> str:
    path = os.path.join(workdir, f"{i:04d}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def export_table_delta(
    url: str,
    snapshot_id: str,
    table: str,
    meta: dict[str, Any],
    store: Store,
    parent_url: str,
    *,
    compress: bool,
    key: bytes | None,
    secret_key: bytes | None = None,
    passphrase: str | None = None,
    where: str | None = None,
) -> TableFile:
    """Write one table of an incremental backup: new or changed rows, deleted keys."""
    from db.backup.create import columns_from_meta

    columns = columns_from_meta(meta)
    pk = list(meta["primary_key"])
    batches = iter_snapshot_batches(url, snapshot_id, table, columns, where)
    if not pk:  # no key to match rows on: the whole table, replacing the parent's
        result = write_table_file(batches, columns, store, table, compress=compress, key=key)
        result.extra = {"mode": "full"}
        return result
    parent = Store.open(parent_url)
    pmeta = read_manifest(parent)
    pentry = pmeta["tables"].get(table)
    if pentry is None or [c["name"] for c in pentry["columns"]] != [c.name for c in columns]:
        raise IncrementalRefused(f"{table}: columns differ from the parent backup's")
    workdir = make_workdir("incr")
    try:
        index = parent_index(parent, table, secret_key, passphrase, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    state: dict[str, Any] = {"lookup": KeyLookup(index, pk)}
    state["hashes"] = state["lookup"].index.column(HASH).to_numpy()
    seen: list[pa.RecordBatch] = []
    pa.default_memory_pool().release_unused()

    def changed() -> Iterator[pa.RecordBatch]:
        lookup, parent_hashes = state["lookup"], state["hashes"]
        for i, batch in enumerate(batches):
            if i % 16 == 15:
                pa.default_memory_pool().release_unused()  # keep RSS flat
            keys = key_batch(batch, pk)
            seen.append(keys.select(pk))
            pos = lookup.find(keys)
            same = pos >= 0
            same[same] = parent_hashes[pos[same]] == keys.column(HASH).to_numpy()[same]
            if not same.all():
                yield batch.filter(pa.array(~same))

    result = write_table_file(changed(), columns, store, table, compress=compress, key=key)
    state.clear()  # the parent lookup is done with: free it before the deletion pass
    current = KeyLookup(pa.Table.from_batches(seen, key_schema(types.schema(columns), pk,
                                                                False)), pk)
    seen.clear()
    step = 64 * 1024
    gone = pa.concat_tables(
        [index.slice(o, step).select(pk).filter(pa.array(~current.contains(index.slice(o, step))))
         for o in range(0, index.num_rows, step)]
        or [index.select(pk)]
    )
    name, rows, size, sha = write_parquet(gone.to_batches(), gone.schema, store,
                                          f"{table}.deleted.parquet", compress=compress, key=key)
    result.extra = {"mode": "delta",
                    "deleted": {"file": name, "rows": rows, "bytes": size, "sha256": sha}}
    return result


def parent_link(parent_url: str) -> dict[str, Any]:
    """The manifest entry naming a parent: where it is and its manifest's SHA-256."""
    parent = Store.open(parent_url)
    if not parent.exists(MANIFEST):
        raise IncrementalRefused(f"parent backup {parent_url} is incomplete or missing")
    raw = parent.read_bytes(MANIFEST)
    body = load_manifest(raw)
    chain = list(body.get("chain") or []) + [body.get("name")]
    return {
        "parent": {"path": parent.url, "name": body.get("name"), "backup_id": body.get("backup_id"),
                   "manifest_sha256": hashlib.sha256(raw).hexdigest(),
                   "snapshot_time": body.get("snapshot_time")},
        "chain": chain,
    }


def prepare_incremental(
    parent_url: str, alembic_revision: str | None, tables: list[str],
    options: BackupOptions, secret_key: bytes | None,
) -> tuple[dict[str, Any], BackupOptions]:
    """Check the parent can carry this incremental: (manifest link, options).

    The incremental inherits the parent's service-key encryption (a passphrase parent needs
    the passphrase again); schema revision and table set must match the parent's.
    """
    try:
        body = read_manifest(Store.open(parent_url))
    except BackupIncomplete as exc:
        raise IncrementalRefused(f"parent backup {parent_url} is incomplete or missing") from exc
    if body.get("alembic_revision") != alembic_revision:
        raise IncrementalRefused(
            f"the parent backup is from schema revision {body.get('alembic_revision')}, the "
            f"database is at {alembic_revision}: take a full backup")
    if sorted(body["tables"]) != sorted(tables):
        raise IncrementalRefused("an incremental backup covers the same tables as its parent: "
                                 f"{sorted(body['tables'])}")
    passphrase = options.passphrase.get_secret_value() if options.passphrase else None
    backup_key(body, secret_key, passphrase)  # wrong or missing key/passphrase: refused now
    enc = body.get("encryption") or {}
    if enc.get("kdf") == "service-secret" and not (options.encrypt or options.passphrase):
        options = options.model_copy(update={"encrypt": True})
    return parent_link(parent_url), options


# ------------------------------------------------------------------ reading a chain


def _locate(child: Store, link: dict[str, Any]) -> Store:
    """The parent's store: the sibling directory of its name when it is there (a plain name,
    checked with the manifest), else its recorded path, which must be inside the backup root
    or a configured remote like any path a user gives."""
    from db.backup.storage import PathNotAllowed, check_allowed

    if link.get("name"):
        sibling = Store.open(child.url.rsplit("/", 1)[0] + "/" + link["name"])
        if sibling.exists(MANIFEST):
            return sibling
    try:
        return Store.open(check_allowed(str(link["path"])))
    except PathNotAllowed as exc:
        raise ParentMissing(
            f"parent backup {str(link.get('name'))[:100]} is missing beside this backup, and "
            f"its recorded path is not an allowed backup location ({exc})") from None


def read_chain(store: Store) -> list[tuple[Store, dict[str, Any]]]:
    """[(store, manifest)] from the full backup to `store`, every link checked."""
    body = read_manifest(store)
    chain = [(store, body)]
    while body.get("backup_type") == "incremental":
        link = body.get("parent") or {}
        if len(chain) > MAX_CHAIN or "path" not in link:
            raise ManifestError(f"{store.url}: broken incremental chain")
        parent = _locate(store, link)
        if not parent.exists(MANIFEST):
            raise ParentMissing(
                f"parent backup {link.get('name')} ({link['path']}) of {body.get('name')} is "
                "missing: this incremental backup cannot be restored")
        raw = parent.read_bytes(MANIFEST)
        if hashlib.sha256(raw).hexdigest() != link.get("manifest_sha256"):
            raise ParentMissing(
                f"backup at {parent.url} is not the parent {body.get('name')} was made on "
                "(its manifest differs)")
        store, body = parent, read_manifest(parent)
        chain.append((store, body))
    chain.reverse()
    return chain


def stage_chain(
    chain: list[tuple[Store, dict[str, Any]]],
    *,
    secret_key: bytes | None,
    passphrase: str | None,
    workdir: str | None,
    tables: list[str] | None,
    materialize: bool,
) -> StagedBackup:
    """Verify every backup of a chain; with `materialize`, one file per table of its end state."""
    last = chain[-1][1]
    names = tables if tables is not None else list(last["tables"])
    result = StagedBackup(copy.deepcopy(last))
    result.manifest.pop("_mac", None)
    result.manifest["_mac"] = last.get("_mac")
    result.workdir = workdir or make_workdir("restore")
    try:
        parts: list[StagedBackup] = []
        for i, (store, body) in enumerate(chain):
            missing = [t for t in names if t not in body["tables"]]
            if missing:
                raise ManifestError(f"{body.get('name')}: tables missing from the chain: "
                                    f"{missing}")
            sub = os.path.join(result.workdir, f"{i:04d}")
            os.makedirs(sub, mode=0o700)
            parts.append(stage_single(store, body, secret_key=secret_key,
                                      passphrase=passphrase, workdir=sub, tables=names,
                                      extras=True))
        columns = {t: [c["name"] for c in last["tables"][t]["columns"]] for t in names}
        for part in parts:
            for t in names:
                if [c["name"] for c in part.manifest["tables"][t]["columns"]] != columns[t]:
                    raise ManifestError(f"{t}: columns change along the chain")
        if materialize:
            for t in names:
                path, rows = _materialize(parts, t, os.path.join(result.workdir, f"{t}.parquet"))
                result.files[t] = path
                result.manifest["tables"][t]["rows"] = rows
    except BaseException:
        result.cleanup()
        raise
    return result


def _pk_table(path: str, pk: list[str]) -> pa.Table:
    return pq.read_table(path, columns=pk)


def end_state_batches(parts: list[StagedBackup], table: str,
                      batch_rows: int = 64 * 1024) -> Iterator[pa.RecordBatch]:
    """A table's rows as of the chain's end: each piece minus keys a later piece replaced."""
    entries = [p.manifest["tables"][table] for p in parts]
    start = max(i for i, e in enumerate(entries) if e.get("mode", "full") != "delta")
    pieces = list(range(start, len(parts)))
    pk = list(entries[-1]["primary_key"])
    # replaced[k]: keys changed or deleted by any piece after k.
    replaced: dict[int, pa.Table] = {}
    acc: list[pa.Table] = []
    for k in reversed(pieces):
        replaced[k] = pa.concat_tables(acc) if acc else pa.table({})
        if k == start:
            break
        acc.append(_pk_table(parts[k].files[table], pk))
        deleted = parts[k].extras.get((table, "deleted"))
        if deleted:
            acc.append(_pk_table(deleted, pk).cast(acc[-1].schema))
    schema = pq.read_schema(parts[-1].files[table])
    for k in pieces:
        gone = KeyLookup(replaced[k], pk) if replaced[k].num_rows else None
        for batch in pq.ParquetFile(parts[k].files[table]).iter_batches(batch_size=batch_rows):
            if gone is not None:
                batch = batch.filter(pa.array(~gone.contains(batch)))
            if batch.num_rows:
                yield batch.cast(schema)


def _materialize(parts: list[StagedBackup], table: str, out: str) -> tuple[str, int]:
    """Write the table's end state to `out` (or use the one file that holds it)."""
    entries = [p.manifest["tables"][table] for p in parts]
    start = max(i for i, e in enumerate(entries) if e.get("mode", "full") != "delta")
    if start == len(parts) - 1:
        return parts[start].files[table], int(entries[start]["rows"])
    rows = 0
    with pq.ParquetWriter(out, pq.read_schema(parts[-1].files[table]),
                          compression="snappy") as writer:
        for batch in end_state_batches(parts, table):
            writer.write_batch(batch)
            rows += batch.num_rows
    return out, rows
