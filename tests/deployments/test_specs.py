"""prefect.yaml and deployments/specs.py declare the same deployments (no server needed)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.specs import (
    DEFAULT_AUTO_SYNC_INTERVAL,
    WORK_POOL,
    DeploymentSpec,
    deployment_for,
    deployment_specs,
)

ROOT = Path(__file__).resolve().parents[2]


def _yaml() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return doc


def _specs() -> dict[tuple[str, str], DeploymentSpec]:
    return {(s.entrypoint, s.name): s for s in deployment_specs(DEFAULT_AUTO_SYNC_INTERVAL)}


def _schedule(spec: DeploymentSpec) -> list[dict[str, Any]]:
    if spec.interval is not None:
        return [{"interval": spec.interval, "timezone": spec.timezone}]
    if spec.cron is not None:
        return [{"cron": spec.cron, "timezone": spec.timezone}]
    return []


def _flow_functions(path: Path) -> set[str]:
    """Names of the @flow-decorated functions of a module, read without importing it."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                if isinstance(target, ast.Name) and target.id == "flow":
                    names.add(node.name)
    return names


def test_yaml_and_specs_declare_the_same_deployments() -> None:
    declared = {(d["entrypoint"], d["name"]) for d in _yaml()["deployments"]}
    assert declared == set(_specs())


@pytest.mark.parametrize("entry", _yaml()["deployments"], ids=lambda d: f"{d['entrypoint']}/{d['name']}")
def test_each_deployment_matches_its_spec(entry: dict[str, Any]) -> None:
    spec = _specs()[(entry["entrypoint"], entry["name"])]
    assert entry.get("schedules", []) == _schedule(spec)
    assert entry.get("parameters", {}) == spec.parameters
    assert entry["tags"] == list(spec.tags)
    assert entry["description"] == spec.description
    assert entry["work_pool"]["name"] == WORK_POOL
    limit = entry.get("concurrency_limit")
    if spec.concurrency_limit is None:
        assert limit is None
    else:
        assert limit == {"limit": spec.concurrency_limit,
                         "collision_strategy": spec.collision_strategy or "ENQUEUE"}


def test_every_flow_under_flows_has_a_deployment() -> None:
    declared = {s.entrypoint for s in _specs().values()}
    for path in sorted((ROOT / "flows").glob("*.py")):
        for name in _flow_functions(path):
            assert f"flows/{path.name}:{name}" in declared, f"flows/{path.name}:{name}"


def test_every_entrypoint_points_at_a_flow_that_exists_or_is_announced() -> None:
    for spec in _specs().values():
        path = ROOT / spec.entrypoint.split(":")[0]
        if path.exists():  # flows/queue.py and flows/reports.py may land later
            assert spec.function in _flow_functions(path), spec.entrypoint


def test_queue_processing_cancels_overlapping_runs_and_follows_the_setting() -> None:
    queue = next(s for s in deployment_specs(45) if s.function == "process_queue")
    assert (queue.interval, queue.concurrency_limit, queue.collision_strategy) == (
        45, 1, "CANCEL_NEW")


def test_pull_step_sets_the_working_directory() -> None:
    (step,) = _yaml()["pull"]
    assert "prefect.deployments.steps.set_working_directory" in step


def test_deployment_for_prefers_the_on_demand_deployment() -> None:
    from flows.backup import nightly_backup, restore_backup
    from flows.channel_sync import full_ari_sync, sync_bookings

    assert deployment_for(sync_bookings) == "sync-bookings/on-demand"
    assert deployment_for(restore_backup) == "restore-backup/on-demand"
    assert deployment_for(full_ari_sync) == "full-ari-sync/nightly"
    assert deployment_for(nightly_backup) == "nightly-backup/nightly"


def test_serve_builds_a_runner_deployment_per_existing_flow() -> None:
    from deployments.serve import runner_deployments

    built = {(d.flow_name, d.name): d for d in runner_deployments()}
    queue = built.get(("process-queue", "auto-sync"))
    if queue is not None:
        assert queue.concurrency_limit == 1
        assert queue.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    pull = built[("sync-all-bookings", "every-minute")]
    assert pull.schedules[0].schedule.interval.total_seconds() == 60
    assert pull.entrypoint == "flows.scheduled.sync_all_bookings"
    nightly = built[("nightly-backup", "nightly")]
    assert nightly.parameters["policy"]["keep_monthly"] == 6


def test_only_flows_without_a_deployment_limit_go_to_the_task_worker() -> None:
    """API-started runs of unlimited on-demand flows go to the task worker (flows/runner.py);
    a flow whose deployment limits it keeps its deployment, whose limit is the guarantee; and
    the worker runs nothing but a declared on-demand flow."""
    from flows.background import _declared_flow
    from flows.backup import restore_backup
    from flows.channel_sync import push_availability, sync_bookings
    from flows.queue import process_queue
    from flows.runner import _task_worker_spec

    assert _task_worker_spec(sync_bookings).entrypoint == "flows/channel_sync.py:sync_bookings"
    assert _task_worker_spec(push_availability) is not None
    assert _task_worker_spec(restore_backup) is None
    assert _task_worker_spec(process_queue) is None
    assert _declared_flow("flows/channel_sync.py:sync_bookings") is sync_bookings
    with pytest.raises(LookupError):
        _declared_flow("flows/queue.py:process_queue")  # scheduled only, limited
    with pytest.raises(LookupError):
        _declared_flow("os.py:system")
