"""Issue 11: backup locations, manifest file entries, fresh directories, subset restores,
owner-only files and scratch directories."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from db.backup.manifest import ManifestError, dump_manifest, load_manifest
from db.backup.restore import RestoreInProgress, RestoreRefused, SubsetNeedsTables
from db.backup.storage import (
    MANIFEST,
    BackupDirectoryExists,
    PathNotAllowed,
    Store,
    check_entry_name,
    resolve_backup_path,
    resolve_location,
)
from db.backup.verify import verify_backup
from tests.backup.conftest import data_dump, make_backup, restore_into

REMOTES = ["s3://bucket/backups"]


@pytest.mark.parametrize("bad", [
    "file::/tmp/x",                       # fsspec protocol chaining, local
    "simplecache::file:///tmp/x",         # chaining with a URL
    "s3://bucket/backups::file:///tmp",   # chaining after an allowed prefix
    "nightly::x",
    "a\x00b",
    "a\x01b",
    "x" * 10_000,
    "../outside",
    "nightly/../../x",
    "/etc",
    "file:///etc",
    "file://s3://bucket/backups/x",
    "memory://x",
    "s3://bucket/backupsX/y",             # a prefix of the remote, not inside it
    "s3://other/x",
])
def test_one_parser_refuses_every_hostile_location(tmp_path: Path, bad: str) -> None:
    with pytest.raises(PathNotAllowed):
        resolve_location(bad, tmp_path, REMOTES)
    with pytest.raises(PathNotAllowed):
        resolve_backup_path(bad, tmp_path, REMOTES)


def test_allowed_locations(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    assert resolve_location(None, tmp_path, REMOTES) == str(root)
    assert resolve_location("nightly", tmp_path, REMOTES) == str(root / "nightly")
    assert resolve_location(f"file://{root}/a", tmp_path, REMOTES) == str(root / "a")
    assert resolve_location("s3://bucket/backups/x/", tmp_path, REMOTES) == \
        "s3://bucket/backups/x"
    assert resolve_backup_path(f"{root}/b1/{MANIFEST}", tmp_path, REMOTES) == str(root / "b1")


def test_store_open_never_chains_protocols(tmp_path: Path) -> None:
    with pytest.raises(PathNotAllowed):
        Store.open(f"file::{tmp_path}")
    # A local path is opened as a local path, whatever it looks like.
    odd = tmp_path / "dir:with:colons"
    store = Store.open(str(odd))
    assert store.local and store.path == str(odd)


@pytest.mark.parametrize("bad", ["../x.parquet", "/etc/passwd", "a/b.parquet", "..", ".",
                                 ".hidden", "a\\b", "x\x00y", "", "file::x", 5, None,
                                 "n" * 300])
def test_manifest_entries_are_plain_names(bad: object) -> None:
    with pytest.raises(ManifestError):
        check_entry_name(bad)
    assert check_entry_name("guests.parquet.enc") == "guests.parquet.enc"


def _rewrite_manifest(store: Store, change) -> None:  # type: ignore[no-untyped-def]
    """Re-write a (plain) backup's manifest with `change` applied, checksum recomputed, as
    someone with write access to the backup directory could."""
    body = load_manifest(store.read_bytes(MANIFEST))
    body.pop("_mac")
    change(body)
    Path(store.join(MANIFEST)).write_bytes(dump_manifest(body))


@pytest.mark.parametrize("entry", ["../../outside.parquet", "/etc/hostname",
                                   "sub/guests.parquet"])
def test_a_manifest_cannot_point_outside_its_directory(source_db: str, scratch_db,
                                                       backup_root: Path, tmp_path: Path,
                                                       entry: str) -> None:
    store = make_backup(source_db, backup_root)
    # A real Parquet copy outside the backup directory, with the right checksum: still refused.
    outside = tmp_path / "outside.parquet"
    outside.write_bytes(Path(store.join("guests.parquet")).read_bytes())
    _rewrite_manifest(store, lambda b: b["tables"]["guests"].update(file=entry))
    with pytest.raises(ManifestError, match="plain file name"):
        verify_backup(store)
    target = scratch_db()
    before = data_dump(target)
    with pytest.raises(ManifestError):
        restore_into(target, store)
    assert data_dump(target) == before


def test_each_backup_gets_its_own_new_directory(source_db: str, backup_root: Path) -> None:
    first = make_backup(source_db, backup_root, "b1")
    manifest = Path(first.join(MANIFEST)).read_bytes()
    with pytest.raises(BackupDirectoryExists):
        make_backup(source_db, backup_root, "b1")
    # The first backup is untouched and still verifies.
    assert Path(first.join(MANIFEST)).read_bytes() == manifest
    verify_backup(first)
    # An existing empty directory is not reused either.
    (backup_root / "empty").mkdir()
    with pytest.raises(BackupDirectoryExists):
        make_backup(source_db, backup_root, "empty")
    assert (backup_root / "empty").is_dir()


def test_backup_files_are_owner_only(source_db: str, tmp_path: Path) -> None:
    root = tmp_path / "fresh-root"
    store = make_backup(source_db, root, "b1")
    paths = [root, Path(store.path), *Path(store.path).iterdir()]
    assert len(paths) > 3
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))


def test_missing_table_file_is_refused(source_db: str, backup_root: Path) -> None:
    store = make_backup(source_db, backup_root)
    os.unlink(store.join("guests.parquet"))
    with pytest.raises(FileNotFoundError):
        verify_backup(store)


def test_subset_restore_names_the_tables_it_needs(source_db: str, backup_root: Path) -> None:
    store = make_backup(source_db, backup_root)
    before = data_dump(source_db)
    with pytest.raises(SubsetNeedsTables) as err:
        restore_into(source_db, store, tables=["guests"])
    assert "reservations" in err.value.needed
    assert "reservations" in str(err.value)
    assert data_dump(source_db) == before
    # With the tables it names, the subset restore goes through.
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute("UPDATE guests SET first_name = 'changed' WHERE id = 1")
    restore_into(source_db, store, tables=sorted({"guests", *err.value.needed}))
    assert data_dump(source_db) == before


def test_unknown_table_in_a_subset_restore_is_refused(source_db: str,
                                                      backup_root: Path) -> None:
    store = make_backup(source_db, backup_root)
    with pytest.raises((ManifestError, RestoreRefused)):
        restore_into(source_db, store, tables=["no_such_table"])


def test_scratch_dirs_are_private_and_a_killed_run_is_cleaned_up(tmp_path: Path) -> None:
    from db.backup.workdir import clean_stale, make_workdir, scratch_root

    # A process that made a scratch directory and a decrypted file, then died by SIGKILL.
    script = (
        "import os, signal\n"
        "from db.backup.workdir import make_workdir, private_file\n"
        "d = make_workdir('restore')\n"
        "os.write(private_file(os.path.join(d, 'guests.parquet')), b'plain')\n"
        "print(d, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert out.returncode == -9, out.stderr
    left = Path(out.stdout.strip())
    assert left.is_dir()
    assert stat.S_IMODE(left.stat().st_mode) == 0o700
    assert stat.S_IMODE((left / "guests.parquet").stat().st_mode) == 0o600
    assert stat.S_IMODE(scratch_root().stat().st_mode) == 0o700
    # The next run removes it; its own directory stays.
    mine = make_workdir("verify")
    assert not left.exists()
    assert Path(mine).is_dir()
    assert clean_stale() == []
    os.rmdir(mine)


@pytest.mark.parametrize(("error", "status", "code"), [
    (SubsetNeedsTables("restoring guests needs reservations", ["reservations"]), 409,
     "restore_refused"),
    (RestoreInProgress("another restore is running on this database"), 409, "restore_running"),
    (FileNotFoundError(2, "No such file", "/b/guests.parquet"), 422, "backup_incomplete"),
    (ManifestError("manifest file entry '../x' is not a plain file name"), 422,
     "backup_corrupt"),
    (PathNotAllowed("outside"), 400, "backup_path_not_allowed"),
])
def test_backup_failures_are_4xx_with_the_reason(client, admin_headers, monkeypatch,  # type: ignore[no-untyped-def]
                                                 error, status, code) -> None:
    import uuid

    import api.routers.backup as router
    from flows.runner import FlowOutcome

    monkeypatch.setattr(router, "run_flow", lambda flow, **kw: FlowOutcome(
        uuid.uuid4(), False, error=error))
    resp = client.post("/api/backup/restore", headers=admin_headers,
                       json={"filePath": "b1", "options": {"tables": ["guests"]}})
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["code"] == code
    if isinstance(error, SubsetNeedsTables):
        assert body["details"]["needsTables"] == ["reservations"]


def test_unknown_tables_in_a_backup_are_refused(source_db: str, backup_root: Path) -> None:
    from db.backup.create import UnknownTables

    with pytest.raises(UnknownTables, match="no_such"):
        make_backup(source_db, backup_root, "b9", tables=["guests", "no_such"])
    assert not (backup_root / "b9").exists()


@pytest.mark.parametrize("location", ["file::/tmp/x", "a\u0000b", "x" * 10_000,
                                      "simplecache::file:///tmp"])
def test_hostile_locations_through_the_api(client, admin_headers, location) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/backup/create", headers=admin_headers,
                       json={"options": {"location": location}})
    assert resp.status_code in (400, 422), resp.text
    for path in ("/api/backup/restore", "/api/backup/verify"):
        resp = client.post(path, headers=admin_headers, json={"filePath": location})
        assert resp.status_code in (400, 422), resp.text
