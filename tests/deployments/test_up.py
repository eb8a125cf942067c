"""`innsync up` end to end: the whole stack in a temp home, a booking pull completes, Ctrl-C
stops every process it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.soak import descendants
from channels.simulators.server import free_port, free_port_run
from tests.deployments.conftest import clean_env, stop_group

pytestmark = [pytest.mark.slow, pytest.mark.prefect_server]

ROOT = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc)."""
    return set(descendants(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (its parent has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_ok(url: str, deadline: float, proc: subprocess.Popen[bytes]) -> None:
    while time.monotonic() < deadline:
        assert proc.poll() is None, "innsync up exited early"
        try:
            if httpx.get(url, timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in time")


def _completed_pulls(prefect_api: str) -> int:
    flows = httpx.post(f"{prefect_api}/flows/filter",
                       json={"flows": {"name": {"any_": ["pull-batch"]}}}, timeout=5).json()
    if not flows:
        return 0
    runs = httpx.post(f"{prefect_api}/flow_runs/filter", json={
        "flows": {"id": {"any_": [f["id"] for f in flows]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
    }, timeout=5).json()
    return len(runs)


def _second_shell_backup(home: Path, prefect_api: str, api_port: int) -> None:
    """`innsync backup create` in another shell uses the recorded stack: it runs on the
    stack's API with this machine's CLI key (cli.key, 0600), its flow run is on the stack's
    Prefect server, its backup in the stack's database."""
    stack = json.loads((home / "stack.json").read_text())
    assert (home / "stack.json").stat().st_mode & 0o777 == 0o600
    assert stack["prefect_api_url"] == prefect_api
    assert stack["api_url"] == f"http://127.0.0.1:{api_port}"
    done = subprocess.run([sys.executable, "-m", "innsync.cli", "backup", "create"],
                          env=clean_env(INNSYNC_HOME=str(home)), cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "does not answer" not in done.stderr
    assert "(on the running stack)" in done.stderr and "running here" not in done.stderr
    assert (home / "cli.key").stat().st_mode & 0o777 == 0o600
    run_id = re.search(r"flow run ([0-9a-f-]{36})", done.stderr)
    assert run_id, done.stderr[-2000:]
    run = httpx.get(f"{prefect_api}/flow_runs/{run_id.group(1)}", timeout=5)
    assert run.status_code == 200 and run.json()["state"]["type"] == "COMPLETED"


def test_innsync_up_runs_the_stack_and_stops_it_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    api_port, prefect_port, sim_port = free_port(), free_port(), free_port_run(4)
    out = tmp_path / "up.out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "innsync.cli", "up", "--api-port", str(api_port),
         "--prefect-port", str(prefect_port), "--sim-port", str(sim_port),
         "--demo-reservations", "200"],
        env=clean_env(INNSYNC_HOME=str(home)), cwd=ROOT, stdout=out.open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    prefect_api = f"http://127.0.0.1:{prefect_port}/api"
    try:
        deadline = time.monotonic() + 300  # a loaded 2-core CI box; ~60 s when idle
        _wait_ok(f"http://127.0.0.1:{api_port}/api/health", deadline, proc)
        _wait_ok(f"{prefect_api}/health", deadline, proc)
        while _completed_pulls(prefect_api) == 0:
            assert time.monotonic() < deadline, "no pull-batch run completed"
            assert proc.poll() is None, "innsync up exited early"
            time.sleep(2)
        assert "innsync is up" in out.read_text()
        assert (home / "admin.key").exists()
        _second_shell_backup(home, prefect_api, api_port)
        children = _descendants(proc.pid)
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        assert len(children) >= 4  # prefect server, simulators, deployments, api
        proc.send_signal(signal.SIGINT)
        assert proc.wait(120) == 0
    finally:
        stop_group(proc)
    text = out.read_text()
    assert "stopped." in text and "Traceback" not in text, text[-3000:]
    assert not (home / "stack.json").exists()  # removed on a clean stop
    deadline = time.monotonic() + 20
    left = {pid for pid in children | {postmaster} if _alive(pid)}
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = {pid for pid in left if _alive(pid)}
    assert not left, f"processes left running: {left}"
