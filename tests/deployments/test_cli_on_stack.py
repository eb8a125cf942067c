"""`innsync backup create|restore` in a second shell run on the running stack's API (a warm
process) with this machine's CLI key, and run in the CLI's own process when they cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from tests.api.live import LiveServer, serve
from tests.deployments.conftest import PrefectServer, clean_env

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.prefect_server]


@pytest.fixture
def stack_api(engine: Engine) -> Iterator[LiveServer]:
    """The real API over HTTP (uvicorn in this process; its flows run here)."""
    from api.app import create_app

    yield from serve(create_app(), engine)


def _home(tmp_path: Path, prefect: PrefectServer, api: LiveServer | str, db_url: str,
          key: str | None) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "stack.json").write_text(json.dumps({
        "prefect_api_url": prefect.api_url,
        "api_url": api if isinstance(api, str) else api.url, "database_url": db_url,
        "pid": os.getpid(), "started_at": datetime.now(UTC).isoformat()}))
    if key is not None:
        (home / "cli.key").write_text(key + "\n")
        (home / "cli.key").chmod(0o600)
    return home


def _cli_key(engine: Engine) -> str:
    from api.auth import create_api_key
    from innsync.cli_remote import CLI_KEY_NAME

    with Session(bind=engine) as session:
        _, key = create_api_key(session, CLI_KEY_NAME, "admin")
        session.commit()
    return key


def _cli(home: Path, prefect: PrefectServer, *args: str,
         **env: str) -> subprocess.CompletedProcess[str]:
    from innsync.settings import get_settings

    # The stack's backup root (this process's settings): the same machine and home in use.
    return subprocess.run(
        [sys.executable, "-m", "innsync.cli", *args],
        env=clean_env(INNSYNC_HOME=str(home), PREFECT_HOME=str(prefect.home),
                      INNSYNC_BACKUP_ROOT=str(get_settings().resolved_backup_root), **env),
        cwd=ROOT, capture_output=True, text=True, timeout=240)


def _audit(engine: Engine, action: str) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT actor FROM audit_logs WHERE entity_type = 'backup' AND action = :a "
            "ORDER BY id"), {"a": action}).scalars())


def _completed_backups(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM system_backups WHERE status = 'completed'")).scalar_one())


def _property(engine: Engine, name: str | None = None) -> str:
    with engine.begin() as conn:
        if name is None:
            conn.execute(text("INSERT INTO properties (code, name) VALUES ('CLI1', 'Before')"))
        else:
            conn.execute(text("UPDATE properties SET name = :n WHERE code = 'CLI1'"), {"n": name})
        return str(conn.execute(text(
            "SELECT name FROM properties WHERE code = 'CLI1'")).scalar_one())


def test_backup_and_restore_run_on_the_stack_api_with_the_cli_key(
        tmp_path: Path, own_prefect_server: PrefectServer, database_url: str,
        engine: Engine, stack_api: LiveServer) -> None:
    from innsync.cli_remote import CLI_KEY_NAME

    home = _home(tmp_path, own_prefect_server, stack_api, database_url, _cli_key(engine))
    _property(engine)
    made = _cli(home, own_prefect_server, "backup", "create", "--table", "properties")
    assert made.returncode == 0, made.stderr[-3000:]
    assert "on the running stack" in made.stderr and "running here" not in made.stderr
    path = made.stdout.strip().splitlines()[-1]
    assert "properties" in made.stderr and "1 rows" in made.stderr
    # The API ran it: it audits the backup under the CLI key (the CLI's own process does not).
    assert [CLI_KEY_NAME in actor for actor in _audit(engine, "create")] == [True]

    assert _property(engine, "After") == "After"
    back = _cli(home, own_prefect_server, "backup", "restore", path, "--yes")
    assert back.returncode == 0, back.stderr[-3000:]
    assert "on the running stack" in back.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM properties WHERE code = 'CLI1'")
                            ).scalar_one() == "Before"
    assert [CLI_KEY_NAME in actor for actor in _audit(engine, "restore")] == [True]

    with engine.connect() as conn:
        backup_id = conn.execute(text("SELECT id FROM system_backups WHERE file_path = :p"),
                                 {"p": path}).scalar_one()
    checked = _cli(home, own_prefect_server, "backup", "verify", str(backup_id))
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "on the running stack" in checked.stderr and "backup is intact" in checked.stderr
    pruned = _cli(home, own_prefect_server, "backup", "prune", "--dry-run")
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    assert "on the running stack" in pruned.stderr and f"keep [{backup_id}]" in pruned.stderr
    gone = _cli(home, own_prefect_server, "backup", "delete", str(backup_id))
    assert gone.returncode == 0, gone.stderr[-3000:]
    assert "on the running stack" in gone.stderr and not Path(path).exists()
    assert [CLI_KEY_NAME in actor for actor in _audit(engine, "delete")] == [True]


def test_a_refused_cli_key_runs_the_backup_here_and_says_so(
        tmp_path: Path, own_prefect_server: PrefectServer, database_url: str,
        engine: Engine, stack_api: LiveServer) -> None:
    home = _home(tmp_path, own_prefect_server, stack_api, database_url, "isk_not-a-key")
    made = _cli(home, own_prefect_server, "backup", "create", "--table", "properties")
    assert made.returncode == 0, made.stderr[-3000:]
    assert "refused" in made.stderr and "running here" in made.stderr
    assert "on the running stack)" not in made.stderr
    assert _audit(engine, "create") == []  # the API did nothing
    assert _completed_backups(engine) == 1


def test_an_unreachable_stack_api_runs_the_backup_here_and_says_so(
        tmp_path: Path, own_prefect_server: PrefectServer, database_url: str,
        engine: Engine, stack_api: LiveServer) -> None:
    from channels.simulators.server import free_port

    home = _home(tmp_path, own_prefect_server, f"http://127.0.0.1:{free_port()}",
                 database_url, _cli_key(engine))
    made = _cli(home, own_prefect_server, "backup", "create", "--table", "properties")
    assert made.returncode == 0, made.stderr[-3000:]
    assert "cannot be reached" in made.stderr and "running here" in made.stderr
    assert _audit(engine, "create") == [] and _completed_backups(engine) == 1


def test_a_backup_that_fails_on_the_stack_is_reported_and_not_run_again_here(
        tmp_path: Path, own_prefect_server: PrefectServer, database_url: str,
        engine: Engine, stack_api: LiveServer) -> None:
    home = _home(tmp_path, own_prefect_server, stack_api, database_url, _cli_key(engine))
    made = _cli(home, own_prefect_server, "backup", "create", "--table", "no_such_table")
    assert made.returncode == 1
    assert "backing up failed" in made.stderr and "no_such_table" in made.stderr
    assert "running here" not in made.stderr
    assert _completed_backups(engine) == 0


def test_a_cli_for_another_database_runs_here(
        tmp_path: Path, own_prefect_server: PrefectServer, database_url: str,
        engine: Engine, stack_api: LiveServer) -> None:
    """The stack's API would back up its own database, not the one this CLI is set to."""
    from sqlalchemy.engine import make_url

    other = make_url(database_url).set(database="some_other_db")
    home = _home(tmp_path, own_prefect_server, stack_api,
                 other.render_as_string(hide_password=False), _cli_key(engine))
    done = _cli(home, own_prefect_server, "backup", "create", "--table", "properties",
                INNSYNC_DATABASE_URL=database_url)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on the running stack" not in done.stderr
    assert _audit(engine, "create") == [] and _completed_backups(engine) == 1  # made here


def test_up_keeps_an_active_cli_key_and_replaces_a_revoked_or_missing_one(
        tmp_path: Path, engine: Engine) -> None:
    from sqlalchemy import update

    from api.auth import lookup_key
    from db.models import ApiKey
    from innsync.cli_remote import CLI_KEY_NAME
    from innsync.launcher import ensure_cli_key
    from tests.api.live import truncate_all

    try:
        path = ensure_cli_key(tmp_path)
        first = path.read_text().strip()
        assert path.stat().st_mode & 0o777 == 0o600
        assert ensure_cli_key(tmp_path).read_text().strip() == first  # kept while active
        with Session(bind=engine) as session:
            principal = lookup_key(session, first)
            assert principal is not None and principal.role == "admin"
            session.execute(update(ApiKey).where(ApiKey.name == CLI_KEY_NAME)
                            .values(revoked_at=datetime.now(UTC)))
            session.commit()
        second = ensure_cli_key(tmp_path).read_text().strip()
        assert second != first
        with Session(bind=engine) as session:  # narrowed to one property: not the CLI's key
            from db.models import Property
            from db.repositories.api_keys import set_scope

            prop = Property(code="SCOPE1", name="Scoped")
            session.add(prop)
            session.flush()
            principal = lookup_key(session, second)
            assert principal is not None
            set_scope(session, principal.key_id, [prop.id])
            session.commit()
        scoped_out = ensure_cli_key(tmp_path).read_text().strip()
        assert scoped_out != second
        path.unlink()
        third = ensure_cli_key(tmp_path).read_text().strip()
        with Session(bind=engine) as session:
            assert lookup_key(session, third) is not None
            assert lookup_key(session, scoped_out) is None  # the replaced ones are revoked
            assert lookup_key(session, second) is None
            assert lookup_key(session, first) is None
    finally:
        with Session(bind=engine) as session:
            truncate_all(session)
