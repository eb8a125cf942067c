"""A real Prefect server subprocess (own PREFECT_HOME, free port, SQLite) for this package."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from channels.simulators.server import free_port


@dataclass(frozen=True)
class PrefectServer:
    """Where the test server listens and keeps its files."""

    api_url: str
    home: Path

    def client_env(self) -> dict[str, str]:
        """Environment for subprocesses that talk to this server."""
        return {
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str(self.home),
            "PREFECT_LOCAL_STORAGE_PATH": str(self.home / "storage"),
        }


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without Prefect/innsync server settings the test session set."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PREFECT_") and k not in {"INNSYNC_DATABASE_URL", "INNSYNC_HOME"}}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", **extra)
    return env


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not healthy after {timeout} s")


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL what is left."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@pytest.fixture(scope="package")
def own_prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """`prefect server start` in a subprocess; the scheduler runs as in production."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", home)
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env=clean_env(PREFECT_HOME=str(home), PREFECT_UI_ENABLED="false"),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_healthy(f"{server.api_url}/health", process, timeout=120)
        yield server
    finally:
        stop_group(process)
        log.close()


@pytest.fixture
def prefect_client_settings(own_prefect_server: PrefectServer) -> Iterator[PrefectServer]:
    """This process's Prefect client pointed at the test server."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    drain_prefect_workers()
    with temporary_settings(updates={
        PREFECT_API_URL: own_prefect_server.api_url,
        PREFECT_HOME: own_prefect_server.home,
        PREFECT_LOCAL_STORAGE_PATH: own_prefect_server.home / "storage",
    }):
        yield own_prefect_server
        drain_prefect_workers()


def drain_prefect_workers() -> None:
    """Flush and stop Prefect's process-wide event and log workers.

    They are singletons that keep the API URL they started with: without this, flows run
    later in this process (against the session's test harness) would send their events to
    this package's server, long stopped, and the harness would wait minutes at teardown.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def _drain() -> None:
        try:
            result = APILogWorker.instance().drain()
            if inspect.isawaitable(result):
                await result
        except RuntimeError:
            pass  # never started
        drained = EventsWorker.drain_all()
        if inspect.isawaitable(drained):
            await drained

    run_coro_as_sync(_drain())
