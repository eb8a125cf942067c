"""`innsync up` keeps its children alive: a killed API or serve process is started again."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from innsync.launcher import Service, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _wait_dead(svc: Service, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while svc.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not svc.alive()


def test_killed_child_is_restarted_with_a_new_process(tmp_path):
    svc = Service("api", SLEEPER)
    other = Service("deployments", SLEEPER)
    svc.start(tmp_path)
    other.start(tmp_path)
    try:
        supervisor = Supervisor([svc, other], tmp_path)
        assert supervisor.tick() == []  # both alive: nothing to do
        first_pid = svc.process.pid
        os.kill(first_pid, signal.SIGKILL)
        _wait_dead(svc)
        assert supervisor.tick() == ["api"]
        assert svc.alive() and svc.process.pid != first_pid
        assert other.alive()  # the healthy sibling is left alone
    finally:
        svc.stop(timeout=2)
        other.stop(timeout=2)


def test_argv_factory_builds_a_new_command_line_per_start(tmp_path):
    starts: list[int] = []

    def argv() -> list[str]:
        starts.append(len(starts))
        return [*SLEEPER, f"# start {len(starts)}"]

    svc = Service("simulators", [], argv_factory=argv)
    svc.start(tmp_path)
    try:
        assert svc.argv[-1] == "# start 1"
        os.kill(svc.process.pid, signal.SIGKILL)
        _wait_dead(svc)
        Supervisor([svc], tmp_path).tick()
        assert svc.argv[-1] == "# start 2" and svc.alive()
    finally:
        svc.stop(timeout=2)


def test_a_child_that_keeps_dying_stops_the_stack(tmp_path):
    now = [1000.0]
    svc = Service("api", [sys.executable, "-c", "raise SystemExit(3)"])
    svc.start(tmp_path)
    supervisor = Supervisor([svc], tmp_path, clock=lambda: now[0])
    restarts = 0
    with pytest.raises(RuntimeError, match="api died 5 times"):
        for _ in range(20):
            _wait_dead(svc)
            restarts += len(supervisor.tick())
            now[0] += 30  # past each growing pause (at most 30 s), inside the 300 s window
    assert restarts == Supervisor.RESTART_LIMIT
    svc.stop(timeout=2)


def test_restart_waits_out_its_pause(tmp_path):
    now = [0.0]
    svc = Service("api", [sys.executable, "-c", "raise SystemExit(1)"])
    svc.start(tmp_path)
    supervisor = Supervisor([svc], tmp_path, clock=lambda: now[0])
    _wait_dead(svc)
    assert supervisor.tick() == ["api"]
    _wait_dead(svc)
    assert supervisor.tick() == []  # 2 s pause after the first restart
    now[0] += 2.5
    assert supervisor.tick() == ["api"]
    svc.stop(timeout=2)


def test_clean_up_runs_before_the_restart_and_its_failure_does_not_stop_it(tmp_path):
    calls: list[str] = []
    svc = Service("deployments", SLEEPER)
    svc.start(tmp_path)

    def clean_up() -> None:
        calls.append("clean-up" if not svc.alive() else "clean-up while alive")
        raise RuntimeError("Prefect server unreachable")

    try:
        supervisor = Supervisor([svc], tmp_path, before_restart={"deployments": clean_up})
        os.kill(svc.process.pid, signal.SIGKILL)
        _wait_dead(svc)
        assert supervisor.tick() == ["deployments"]  # restarted although the clean-up failed
        assert calls == ["clean-up"] and svc.alive()
    finally:
        svc.stop(timeout=2)
