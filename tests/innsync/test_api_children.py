"""Issue 11: stopping `innsync api` (SIGTERM) stops the ephemeral Prefect server it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from innsync.cli import child_pids
from tests.api.live import free_port, truncate_all

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def _wait(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not reaped by its dead parent yet) is not running
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stopping_the_api_stops_its_ephemeral_prefect_server(engine, database_url, tmp_path):
    from api.auth import create_api_key

    with Session(bind=engine) as session:
        _, key = create_api_key(session, "children-admin", "admin")
        session.commit()
    port = free_port()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("INNSYNC_", "PREFECT_API_URL"))}
    env.update({
        "INNSYNC_HOME": str(home),
        "INNSYNC_SECRET_KEY": os.environ["INNSYNC_SECRET_KEY"],
        "INNSYNC_DATABASE_URL": database_url,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    })
    proc = subprocess.Popen(
        [sys.executable, "-m", "innsync.cli", "api", "--port", str(port), "--no-migrate"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/api/health", timeout=2).status_code < 500
            except httpx.HTTPError:
                return False

        assert _wait(healthy, 60), "innsync api did not start"
        # An in-process flow run needs a Prefect API: without PREFECT_API_URL Prefect starts
        # its ephemeral server as a child process of the API.
        resp = httpx.post(f"{base}/api/sync/process", headers={"X-API-Key": key}, json={},
                          timeout=180)
        assert resp.status_code == 200, resp.text
        children = child_pids(proc.pid)
        assert children, "no ephemeral Prefect server was started"
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        assert _wait(lambda: not any(_alive(p) for p in children), 20), children
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with Session(bind=engine) as session:
            truncate_all(session)
