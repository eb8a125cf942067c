"""`innsync demo seed` end to end on its own scratch database (it commits)."""

from __future__ import annotations

import psycopg
from typer.testing import CliRunner

from db.engine import to_sqlalchemy_url
from innsync.cli import app
from innsync.settings import get_settings
from tests.conftest import create_scratch_database, drop_database


def test_demo_seed_command(pg_server, monkeypatch):
    admin, _ = pg_server
    url = create_scratch_database(admin, "innsync_demo_cli")
    monkeypatch.setenv("INNSYNC_DATABASE_URL", to_sqlalchemy_url(url))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        first = runner.invoke(app, ["demo", "seed", "--reservations", "60", "--seed", "3"])
        assert first.exit_code == 0, first.output
        assert "60 reservations" in " ".join(first.output.split())
        again = runner.invoke(app, ["demo", "seed", "--reservations", "60", "--no-migrate"])
        assert again.exit_code == 1 and "--reset" in again.output
        reset = runner.invoke(app, ["demo", "seed", "--reservations", "40", "--reset",
                                    "--no-migrate"])
        assert reset.exit_code == 0, reset.output
        with psycopg.connect(url) as conn:
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM properties), (SELECT count(*) FROM reservations),"
                " (SELECT count(*) FROM guests), (SELECT count(*) FROM channels)").fetchone()
        assert counts == (1, 40, 40, 4)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        drop_database(admin, url)
