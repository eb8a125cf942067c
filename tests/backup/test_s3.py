"""Backups on S3, against moto's real HTTP server on loopback (not a mock object)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.backup.conftest import data_dump


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    mp = pytest.MonkeyPatch()
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}"}.items():
        mp.setenv(k, v)
    import boto3

    boto3.client("s3").create_bucket(Bucket="innsync-backups")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        mp.undo()
        server.stop()


def test_s3_round_trip(s3_endpoint: str, source_db: str,
                       scratch_db: Callable[[], str]) -> None:
    import fsspec

    from db.backup.create import BackupOptions, run_backup
    from db.backup.manifest import ManifestError
    from db.backup.restore import RestoreOptions, restore_staged
    from db.backup.storage import Store, resolve_location
    from db.backup.verify import stage_backup, verify_backup

    fsspec.config.conf.clear()
    base = resolve_location("s3://innsync-backups/nightly", Path("/nonexistent"),
                            ["s3://innsync-backups"])
    store = Store.open(base + "/b1")
    run_backup(source_db, store, BackupOptions(passphrase="s3 pass"))  # type: ignore[arg-type]
    assert not store.local and store.exists("manifest.json")
    verify_backup(store, passphrase="s3 pass")
    target = scratch_db()
    staged = stage_backup(store, passphrase="s3 pass")
    try:
        restore_staged(target, staged, RestoreOptions())
    finally:
        staged.cleanup()
    assert data_dump(target) == data_dump(source_db)
    # A flipped byte on the object store is refused too.
    name = "guests.parquet.enc"
    data = bytearray(store.read_bytes(name))
    data[len(data) // 2] ^= 1
    with store.fs.open(store.join(name), "wb") as fh:
        fh.write(bytes(data))
    with pytest.raises(ManifestError):
        verify_backup(store, passphrase="s3 pass")
