"""Settings: placeholder secrets refused, generated key kept private and stable."""

from __future__ import annotations

import stat

import pytest
from pydantic import ValidationError

from innsync.crypto import DecryptionError, decrypt_json, derive_key, encrypt_json
from innsync.settings import Settings


@pytest.mark.parametrize("value", ["changeme", "secret", "short"])
def test_placeholder_secret_key_is_refused(value, monkeypatch):
    monkeypatch.setenv("INNSYNC_SECRET_KEY", value)
    with pytest.raises(ValidationError, match="INNSYNC_SECRET_KEY"):
        Settings()


def test_generated_secret_key_is_0600_and_stable(tmp_path, monkeypatch):
    monkeypatch.delenv("INNSYNC_SECRET_KEY", raising=False)
    monkeypatch.setenv("INNSYNC_HOME", str(tmp_path / "home"))
    first = Settings().ensure_secret_key()
    path = tmp_path / "home" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings().ensure_secret_key() == first
    assert len(first) >= 32


def test_defaults_live_under_home(tmp_path, monkeypatch):
    monkeypatch.setenv("INNSYNC_HOME", str(tmp_path))
    monkeypatch.delenv("INNSYNC_BACKUP_ROOT", raising=False)
    s = Settings()
    assert s.resolved_backup_root == (tmp_path / "backups").resolve()
    assert s.pgdata == tmp_path / "pgdata"


def test_secret_is_not_in_repr(monkeypatch):
    monkeypatch.setenv("INNSYNC_SECRET_KEY", "a-real-looking-secret-value-123")
    assert "a-real-looking" not in repr(Settings())


def test_encryption_round_trip_and_wrong_key():
    key = derive_key("one-secret-for-testing")
    token = encrypt_json(key, {"apiSecret": "s3cr3t"})
    assert "s3cr3t" not in token
    assert decrypt_json(key, token) == {"apiSecret": "s3cr3t"}
    with pytest.raises(DecryptionError):
        decrypt_json(derive_key("another-secret-value"), token)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(DecryptionError):
        decrypt_json(key, tampered)
