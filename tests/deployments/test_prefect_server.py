"""Against a real Prefect server: schedules create runs; start_flow goes through deployments."""

from __future__ import annotations

import contextvars
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from flows.runner import FlowOutcome, start_flow
from tests.deployments.conftest import PrefectServer, clean_env, stop_group
from tests.deployments.probe_flow import probe

pytestmark = pytest.mark.prefect_server

ROOT = Path(__file__).resolve().parents[2]


def _runs_of(deployment_id: UUID) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )


def test_interval_schedule_creates_flow_runs(prefect_client_settings: PrefectServer) -> None:
    """Guards the silent failure of stack-notes: with SQLAlchemy 2.1 the scheduler creates none."""
    from prefect.schedules import Interval

    deployment: Any = probe.to_deployment(
        name="every-10s", schedule=Interval(timedelta(seconds=10))
    )
    deployment_id = deployment.apply()
    deadline = time.monotonic() + 45
    runs: list[Any] = []
    while time.monotonic() < deadline and not runs:
        runs = _runs_of(deployment_id)
        time.sleep(1)
    assert runs, "the Prefect scheduler created no run for an interval deployment"
    assert {r.state_type.value for r in runs} == {"SCHEDULED"}
    assert all(r.expected_start_time is not None for r in runs)


@pytest.fixture
def via_deployments(monkeypatch: pytest.MonkeyPatch,
                    prefect_client_settings: PrefectServer) -> Iterator[PrefectServer]:
    from innsync.settings import get_settings

    monkeypatch.setenv("INNSYNC_RUN_VIA_DEPLOYMENTS", "1")
    get_settings.cache_clear()
    yield prefect_client_settings
    get_settings.cache_clear()


def test_start_flow_returns_the_flow_run_id_at_once(via_deployments: PrefectServer) -> None:
    from prefect.client.orchestration import get_client

    deployment: Any = probe.to_deployment(name="on-demand")
    deployment_id = deployment.apply()
    started = time.monotonic()
    out = start_flow(probe, "on-demand", x=21)
    assert time.monotonic() - started < 10
    assert out.ok and not out.finished and isinstance(out.flow_run_id, UUID)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(out.flow_run_id)
    assert run.deployment_id == deployment_id
    assert run.parameters == {"x": 21}
    assert run.state_type is not None and run.state_type.value == "SCHEDULED"


def test_start_flow_wait_returns_the_result(via_deployments: PrefectServer) -> None:
    """wait=True: the run executes elsewhere (here `prefect flow-run execute`, as a worker
    would) and its persisted result comes back."""
    deployment: Any = probe.to_deployment(name="waited")
    deployment_id = deployment.apply()
    before = {r.id for r in _runs_of(deployment_id)}
    outcome: list[FlowOutcome] = []
    # The thread needs this context: the Prefect settings above live in a contextvar.
    context = contextvars.copy_context()
    waiter = threading.Thread(target=context.run, args=(
        lambda: outcome.append(start_flow(probe, "waited", wait=True, x=4)),))
    waiter.start()
    deadline = time.monotonic() + 20
    new: list[Any] = []
    while not new and time.monotonic() < deadline:
        new = [r for r in _runs_of(deployment_id) if r.id not in before]
        time.sleep(0.3)
    assert new, "start_flow(wait=True) created no flow run"
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "flow-run", "execute", str(new[0].id)],
        env=clean_env(**via_deployments.client_env(), PREFECT_RESULTS_PERSIST_BY_DEFAULT="true"),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        waiter.join(150)  # the run's end, not the executing process's exit, is what counts
    finally:
        stop_group(worker)
    assert outcome, "start_flow(wait=True) did not return"
    assert outcome[0].ok and outcome[0].finished and outcome[0].value == 8
    assert outcome[0].flow_run_id == new[0].id


def test_start_flow_runs_in_process_without_the_opt_in(
    prefect_client_settings: PrefectServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from innsync.settings import get_settings

    monkeypatch.delenv("INNSYNC_RUN_VIA_DEPLOYMENTS", raising=False)
    get_settings.cache_clear()
    out = start_flow(probe, "nowhere", x=5)
    assert out.ok and out.finished and out.value == 10 and out.flow_run_id is not None


def test_start_flow_without_a_declared_deployment_is_refused(via_deployments: PrefectServer) -> None:
    with pytest.raises(LookupError):
        start_flow(probe, x=1)


def test_start_flow_async_returns_the_flow_run_id(via_deployments: PrefectServer) -> None:
    import asyncio

    from flows.runner import start_flow_async

    deployment: Any = probe.to_deployment(name="on-demand")
    deployment.apply()
    out = asyncio.run(start_flow_async(probe, "on-demand", x=2))
    assert out.ok and not out.finished and isinstance(out.flow_run_id, UUID)
