"""The CLI in a second shell attaches to the stack `innsync up` recorded in $INNSYNC_HOME."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from channels.simulators.server import free_port
from innsync.cli_stack import find_stack, read_stack, record_stack, remove_stack
from tests.deployments.conftest import PrefectServer, clean_env

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.prefect_server]


def _write_stack(home: Path, prefect_api: str, db_url: str | None, pid: int) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "stack.json").write_text(json.dumps({
        "prefect_api_url": prefect_api, "api_url": "http://127.0.0.1:1",
        "database_url": db_url, "pid": pid, "started_at": datetime.now(UTC).isoformat()}))


def _cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "innsync.cli", *args],
                          env=clean_env(INNSYNC_HOME=str(home), **env), cwd=ROOT,
                          capture_output=True, text=True, timeout=240)


def test_record_stack_is_owner_only_without_password(tmp_path: Path) -> None:
    path = record_stack(tmp_path, "http://127.0.0.1:4200/api", "http://127.0.0.1:8000",
                        "postgresql+psycopg://app:s3cret@db.example:5432/innsync")
    assert path.stat().st_mode & 0o777 == 0o600
    assert "s3cret" not in path.read_text()
    info = read_stack(tmp_path)
    assert info is not None and info.database_url == \
        "postgresql+psycopg://app@db.example:5432/innsync"
    remove_stack(tmp_path, pid=os.getpid() + 1)  # another process's file: left alone
    assert path.exists()
    remove_stack(tmp_path, pid=os.getpid())
    assert not path.exists()


def test_a_dead_stack_is_reported_and_its_stale_file_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_stack(tmp_path, f"http://127.0.0.1:{free_port()}/api", None, dead.pid)
    found = find_stack(tmp_path, use_database=False)
    assert found.stack is None
    assert found.message is not None and "does not answer" in found.message
    assert not (tmp_path / "stack.json").exists()


def test_cli_uses_the_recorded_prefect_server_and_database(
        tmp_path: Path, own_prefect_server: PrefectServer, database_url: str) -> None:
    home = tmp_path / "home"
    _write_stack(home, own_prefect_server.api_url, database_url, os.getpid())
    done = _cli(home, "backup", "create", "--table", "properties",
                PREFECT_HOME=str(own_prefect_server.home))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "does not answer" not in done.stderr
    run_id = re.search(r"flow run ([0-9a-f-]{36})", done.stderr)
    assert run_id, done.stderr[-2000:]
    # The run is on the recorded server (no ephemeral one), the backup in the recorded DB.
    run = httpx.get(f"{own_prefect_server.api_url}/flow_runs/{run_id.group(1)}", timeout=5)
    assert run.status_code == 200 and run.json()["state"]["type"] == "COMPLETED"
    listed = _cli(home, "backup", "list", "--json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] in {b["filePath"] for b in
                                                   json.loads(listed.stdout)}


def test_unanswering_stack_falls_back_in_one_line_and_errors_are_one_line(
        tmp_path: Path, database_url: str) -> None:
    home = tmp_path / "home"
    _write_stack(home, f"http://127.0.0.1:{free_port()}/api", None, os.getpid())
    started = time.monotonic()
    done = _cli(home, "backup", "restore", "987654321", INNSYNC_DATABASE_URL=database_url)
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, done.stderr
    assert "does not answer" in lines[0] and "ephemeral" in lines[0]
    assert "backup 987654321 not found" in lines[1]
    assert "Traceback" not in done.stderr and "confirm" not in done.stdout
    # A file of a live process is not removed (its server may be restarting).
    assert (home / "stack.json").exists()
    print(f"error path took {elapsed:.1f} s")


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(
        tmp_path: Path, database_url: str) -> None:
    home = tmp_path / "home"
    bad = database_url.rsplit("/", 1)[0] + "/no_such_database_here"
    done = _cli(home, "status", INNSYNC_DATABASE_URL=bad)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert len([ln for ln in done.stderr.splitlines() if ln.strip()]) == 1, done.stderr
    assert "no_such_database_here" in done.stderr
    debug = _cli(home, "--debug", "status", INNSYNC_DATABASE_URL=bad)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_restore_verifies_before_asking(tmp_path: Path, database_url: str) -> None:
    from db.backup.create import BackupOptions, run_backup
    from db.backup.storage import Store
    from db.engine import to_libpq_url

    home, root = tmp_path / "home", tmp_path / "root"
    root.mkdir()
    run_backup(to_libpq_url(database_url), Store.open(str(root / "good")),
               BackupOptions(tables=["properties", "room_types"]))
    env = {"INNSYNC_DATABASE_URL": database_url, "INNSYNC_BACKUP_ROOT": str(root)}

    def restore(path: Path, answer: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "innsync.cli", "backup", "restore",
                               str(path)], input=answer,
                              env=clean_env(INNSYNC_HOME=str(home), **env), cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    declined = restore(root / "good", "n\n")
    assert declined.returncode == 1
    assert "verifies; replace the restored tables' contents?" in declined.stdout
    assert "flow run" not in declined.stderr  # nothing ran
    broken = root / "broken"
    subprocess.run(["cp", "-r", str(root / "good"), str(broken)], check=True)
    with (broken / "properties.parquet").open("ab") as fh:
        fh.write(b"junk")
    refused = restore(broken, "y\n")
    assert refused.returncode == 1
    assert "does not verify" in refused.stderr and "checksum" in refused.stderr
    assert "replace the restored" not in refused.stdout  # never asked
    assert "Traceback" not in refused.stderr


def test_cli_flows_heartbeat_at_least_as_often_as_innsync_expects(tmp_path: Path) -> None:
    """main() lowers Prefect's heartbeat (here 600 s) to INNSYNC_HEARTBEAT_SECONDS without
    importing Prefect itself (a command that runs no flow never pays that import)."""
    script = ("import sys\n"
              "from innsync import cli\n"
              "def hb() -> None:\n"
              "    print('prefect' in sys.modules)\n"
              "    from prefect.settings import get_current_settings\n"
              "    print(get_current_settings().flows.heartbeat_frequency)\n"
              "cli.app.command('hb')(hb)\n"
              "cli.main()\n")
    done = subprocess.run([sys.executable, "-c", script, "hb"], cwd=ROOT,
                          env=clean_env(INNSYNC_HOME=str(tmp_path / "home"),
                                        PREFECT_FLOWS_HEARTBEAT_FREQUENCY="600",
                                        INNSYNC_HEARTBEAT_SECONDS="45"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "45"]


def test_the_same_database_is_recognised_in_any_spelling() -> None:
    """The CLI sends work to the stack's API only when it would touch the same database."""
    from innsync.cli_stack import same_database

    ours = "postgresql://postgres@127.0.0.1:5432/innsync_bench"
    assert same_database(ours, "postgresql+psycopg://postgres@127.0.0.1/innsync_bench")
    assert same_database("postgresql://app:secret@DB.example/x", "postgres://app@db.example:5432/x")
    assert not same_database(ours, "postgresql+psycopg://postgres@127.0.0.1:5432/other")
    assert not same_database(ours, "postgresql://postgres@127.0.0.1:5433/innsync_bench")
    assert not same_database(ours, "postgresql://someone@127.0.0.1:5432/innsync_bench")
    assert not same_database(ours, "not a url")
