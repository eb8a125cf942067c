"""The default database: an embedded PostgreSQL cluster from the pip wheel, no setup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]


def test_embedded_cluster_migrates_and_serves(tmp_path):
    """`innsync db upgrade` with no DATABASE_URL starts the embedded cluster and migrates it;
    a second process attaches to the same cluster; the last one out stops it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNSYNC_")}
    env["INNSYNC_HOME"] = str(tmp_path / "home")
    env["INNSYNC_SECRET_KEY"] = "embedded-test-secret-key-123"
    cli = [sys.executable, "-m", "innsync.cli"]

    up = subprocess.run([*cli, "db", "upgrade"], env=env, cwd=ROOT, capture_output=True,
                        text=True, timeout=180)
    assert up.returncode == 0, up.stderr
    assert (tmp_path / "home" / "pgdata" / "PG_VERSION").exists()

    script = (
        "from db.embedded import embedded_database_url\n"
        "import psycopg\n"
        "url = embedded_database_url('innsync')\n"
        "with psycopg.connect(url) as c:\n"
        "    print(c.execute('select version_num from alembic_version').fetchone()[0])\n"
        "    print(c.execute(\"select count(*) from information_schema.tables "
        "where table_name='reservations'\").fetchone()[0])\n"
        "    print(c.execute('show server_version').fetchone()[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    revision, tables, version = out.stdout.split()
    from db.migrate import head_revision

    assert revision == head_revision()
    assert tables == "1"
    assert int(version.split(".")[0]) >= 15

    # Both processes have exited: the cluster was stopped cleanly (no live postmaster).
    pid_file = tmp_path / "home" / "pgdata" / "postmaster.pid"
    assert not pid_file.exists()
    # ...and it starts again on the next use.
    again = subprocess.run([*cli, "db", "current"], env=env, cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == revision
    assert psycopg  # the driver the embedded path uses


def test_a_cli_start_beside_a_running_cluster_keeps_it_reachable(tmp_path):
    """Every CLI start makes the home owner-only; as root the embedded server runs as another
    user that must still reach pgdata (the soak saw a PANIC: pg_control "Permission
    denied" ten minutes after a CLI start made the home 0700)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNSYNC_")}
    env["INNSYNC_HOME"] = str(tmp_path / "home")
    env["INNSYNC_SECRET_KEY"] = "embedded-test-secret-key-123"
    script = (
        "import subprocess, sys, psycopg\n"
        "from db.embedded import embedded_database_url\n"
        "url = embedded_database_url('innsync')\n"
        # another CLI process starts while the cluster runs: it secures the home
        # (as `innsync up`'s children do, with the cluster's URL in the environment)
        "import os\n"
        "env = dict(os.environ, INNSYNC_DATABASE_URL=url)\n"
        "r = subprocess.run([sys.executable, '-m', 'innsync.cli', 'db', 'current'],"
        " capture_output=True, text=True, env=env)\n"
        "assert r.returncode == 0, r.stderr\n"
        "with psycopg.connect(url, autocommit=True) as c:\n"
        "    c.execute('CHECKPOINT')\n"  # the server itself opens pg_control again
        "    print(c.execute('select 1').fetchone()[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "1"
    home_mode = (tmp_path / "home").stat().st_mode & 0o777
    assert home_mode & 0o077 in (0, 0o011), oct(home_mode)  # never readable by others
