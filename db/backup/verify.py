"""Check a backup before anything touches a database: manifest, checksums, keys, revision."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from db.backup import FORMAT_VERSION
from db.backup.crypto import BackupDecryptionError, decrypt_stream, key_from_passphrase
from db.backup.manifest import ManifestError, check_mac, load_manifest
from db.backup.storage import MANIFEST, Store, check_entry_name
from db.backup.workdir import make_workdir, private_file


class BackupIncomplete(ManifestError):
    """No manifest: the backup never finished (or is not a backup)."""


class ChecksumMismatch(ManifestError):
    """A file's bytes differ from what the manifest recorded."""


class UnknownRevision(ManifestError):
    """The backup comes from a schema revision this code base does not know (newer)."""


@dataclass
class StagedBackup:
    """A verified backup: its manifest and a readable plaintext Parquet file per table."""

    manifest: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    #: (table, "deleted" | "keys") -> local file, for the backups of an incremental chain.
    extras: dict[tuple[str, str], str] = field(default_factory=dict)

    def cleanup(self) -> None:
        """Remove decrypted or downloaded copies."""
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def read_manifest(store: Store) -> dict[str, Any]:
    """The manifest of a backup; BackupIncomplete when it has none."""
    if not store.exists(MANIFEST):
        raise BackupIncomplete(f"{store.url}: no manifest.json, the backup is incomplete")
    body = load_manifest(store.read_bytes(MANIFEST))
    if body.get("format_version") != FORMAT_VERSION:
        raise ManifestError(f"unsupported backup format {body.get('format_version')!r}")
    check_entries(body)
    return body


def check_entries(body: dict[str, Any]) -> None:
    """Every file a manifest names is a plain name inside its own backup directory (a
    manifest is data: it never points a read at another directory)."""
    tables = body.get("tables")
    if not isinstance(tables, dict):
        raise ManifestError("manifest.json lists no tables")
    for table, entry in tables.items():
        if not isinstance(entry, dict):
            raise ManifestError(f"manifest entry of {table!r} is not an object")
        check_entry_name(entry.get("file"))
        for kind in ("deleted", "keys"):
            if kind in entry:
                if not isinstance(entry[kind], dict):
                    raise ManifestError(f"manifest entry {table}.{kind} is not an object")
                check_entry_name(entry[kind].get("file"))
    parent = body.get("parent")
    if parent is not None and isinstance(parent, dict) and parent.get("name") is not None:
        check_entry_name(parent.get("name"))


def backup_key(
    manifest: dict[str, Any], secret_key: bytes | None, passphrase: str | None
) -> bytes | None:
    """The key of an encrypted backup, checked against the manifest MAC; None if plain."""
    enc = manifest.get("encryption")
    if not enc:
        return None
    if enc.get("kdf") == "scrypt":
        if not passphrase:
            raise BackupDecryptionError("this backup is encrypted with a passphrase: give it")
        key = key_from_passphrase(passphrase, bytes.fromhex(enc["salt"]))
    else:
        if secret_key is None:
            raise BackupDecryptionError("this backup is encrypted with the service key")
        key = secret_key
    if not check_mac(manifest, key):
        raise BackupDecryptionError("wrong key or passphrase for this backup (manifest MAC)")
    return key


def check_revision(manifest: dict[str, Any]) -> None:
    """Refuse a backup made by a schema revision unknown here (a newer innsync)."""
    from db.migrate import is_known_revision

    revision = manifest.get("alembic_revision")
    if revision and not is_known_revision(revision):
        raise UnknownRevision(
            f"backup schema revision {revision} is unknown to this version of innsync "
            "(made by a newer version?): upgrade innsync before restoring it"
        )


def fetch_file(
    store: Store, entry: dict[str, Any], key: bytes | None, workdir: str | None
) -> str:
    """A local plaintext copy of one backup file, its size and SHA-256 checked first.

    `entry` is a manifest file entry (file, bytes, sha256). Plain local files are read in
    place; remote or encrypted ones are copied (and decrypted) into `workdir`.
    """
    raw: str | None = None
    if key is not None or not store.local:
        if workdir is None:
            raise ValueError("a work directory is needed to stage this file")
        raw = os.path.join(workdir, entry["file"])
    sha, size = _hash_copy(store, entry["file"], raw)
    if sha != entry["sha256"] or size != entry["bytes"]:
        raise ChecksumMismatch(f"{entry['file']}: checksum mismatch, file is corrupt")
    if raw is None:
        return store.join(entry["file"])
    if key is None:
        return raw
    assert workdir is not None
    local = os.path.join(workdir, entry["file"].removesuffix(".enc"))
    with open(raw, "rb") as src, os.fdopen(private_file(local), "wb") as dst:
        decrypt_stream(src, dst, key, entry["file"])
    os.unlink(raw)
    return local


def stage_backup(
    store: Store,
    *,
    secret_key: bytes | None = None,
    passphrase: str | None = None,
    workdir: str | None = None,
    tables: list[str] | None = None,
    materialize: bool = True,
) -> StagedBackup:
    """Verify every checksum (and decrypt) and return local plaintext files; touches no DB.

    An incremental backup brings its whole chain: every backup back to the full one is
    verified, and (with `materialize`) each table's state at the last backup is written to
    one local file, so a chain restores exactly like a full backup of the same moment.
    """
    from db.backup.incremental import read_chain, stage_chain

    chain = read_chain(store)
    if len(chain) > 1:
        return stage_chain(chain, secret_key=secret_key, passphrase=passphrase,
                           workdir=workdir, tables=tables, materialize=materialize)
    return stage_single(store, chain[0][1], secret_key=secret_key, passphrase=passphrase,
                        workdir=workdir, tables=tables)


def stage_single(
    store: Store,
    manifest: dict[str, Any],
    *,
    secret_key: bytes | None = None,
    passphrase: str | None = None,
    workdir: str | None = None,
    tables: list[str] | None = None,
    extras: bool = False,
) -> StagedBackup:
    """Verify (and decrypt) one backup's table files; with `extras` also its key files."""
    key = backup_key(manifest, secret_key, passphrase)
    names = tables if tables is not None else list(manifest["tables"])
    staged = StagedBackup(manifest)
    if key is not None or not store.local:
        staged.workdir = workdir or _mkdtemp()
    try:
        for table in names:
            entry = manifest["tables"].get(table)
            if entry is None:
                raise ManifestError(f"table {table!r} is not in this backup")
            local = fetch_file(store, entry, key, staged.workdir)
            if pq.ParquetFile(local).metadata.num_rows != entry["rows"]:
                raise ManifestError(f"{entry['file']}: row count differs from the manifest")
            staged.files[table] = local
            if extras:
                for kind in ("deleted", "keys"):
                    if kind in entry:
                        staged.extras[(table, kind)] = fetch_file(store, entry[kind], key,
                                                                  staged.workdir)
    except BaseException:
        staged.cleanup()
        raise
    return staged


def _hash_copy(store: Store, name: str, dst: str | None) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    out = os.fdopen(private_file(dst), "wb") if dst else None
    try:
        with store.open_read(name) as fh:
            while chunk := fh.read(8 << 20):
                digest.update(chunk)
                size += len(chunk)
                if out:
                    out.write(chunk)
    finally:
        if out:
            out.close()
    return digest.hexdigest(), size


def _mkdtemp() -> str:
    return make_workdir("restore")


def verify_backup(
    store: Store, *, secret_key: bytes | None = None, passphrase: str | None = None
) -> dict[str, Any]:
    """Full check of a backup and its chain (manifests, checksums, decryption, rows)."""
    staged = stage_backup(store, secret_key=secret_key, passphrase=passphrase,
                          materialize=False)
    try:
        return staged.manifest
    finally:
        staged.cleanup()
