"""Every deployment of innsync, once: serve.py builds from this list, a test checks prefect.yaml.

Schedules are UTC. Intervals are seconds. A spec whose flow module does not exist yet
(another piece of work still in progress) is skipped by `serve` with a warning.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

from prefect import Flow

from deployments.backup import NIGHTLY_CRON, NIGHTLY_PARAMETERS, NIGHTLY_TIMEZONE

log = logging.getLogger(__name__)

WORK_POOL = "innsync-process"
TIMEZONE = "UTC"
#: One pull of every enabled channel per minute (see docs/operations.md for per-partner cadence).
BOOKING_PULL_INTERVAL = 60
FULL_ARI_CRON = "0 3 * * *"
CHANNEL_REPORT_CRON = "0 6 * * *"
DEFAULT_AUTO_SYNC_INTERVAL = 30
#: Reaper + channel-health events (INNSYNC_MAINTENANCE_INTERVAL).
DEFAULT_MAINTENANCE_INTERVAL = 60


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: which flow, when, with what parameters and limits."""

    name: str
    entrypoint: str  # "flows/<module>.py:<function>", relative to the project root
    description: str
    tags: tuple[str, ...] = ()
    interval: int | None = None
    cron: str | None = None
    timezone: str = TIMEZONE
    parameters: dict[str, Any] = field(default_factory=dict)
    concurrency_limit: int | None = None
    collision_strategy: str | None = None  # ENQUEUE (Prefect's default) or CANCEL_NEW

    @property
    def module(self) -> str:
        """Dotted module of the entrypoint (flows/x.py -> flows.x)."""
        path = self.entrypoint.split(":", 1)[0]
        return path.removesuffix(".py").replace("/", ".")

    @property
    def function(self) -> str:
        return self.entrypoint.split(":", 1)[1]

    def load_flow(self) -> Flow[..., Any] | None:
        """The flow object, or None while its module does not exist yet."""
        try:
            module = importlib.import_module(self.module)
        except ModuleNotFoundError as exc:
            if exc.name != self.module:
                raise  # a real import error inside the module must not be hidden
            return None
        flow = getattr(module, self.function, None)
        if flow is None:
            return None
        if not isinstance(flow, Flow):
            raise TypeError(f"{self.entrypoint} is not a Prefect flow")
        return flow

    def to_deployment(self, flow: Flow[..., Any]) -> Any:
        """A RunnerDeployment for `prefect.serve` with this spec's schedule and limits."""
        from prefect.client.schemas.objects import ConcurrencyLimitConfig
        from prefect.deployments.runner import EntrypointType
        from prefect.schedules import Cron, Interval

        schedule: Any = None
        if self.interval is not None:
            schedule = Interval(self.interval)
        elif self.cron is not None:
            schedule = Cron(self.cron, timezone=self.timezone)
        limit: Any = None
        if self.concurrency_limit is not None:
            limit = ConcurrencyLimitConfig(
                limit=self.concurrency_limit,
                collision_strategy=self.collision_strategy or "ENQUEUE",  # type: ignore[arg-type]
            )
        return flow.to_deployment(
            name=self.name,
            description=self.description,
            tags=list(self.tags),
            schedule=schedule,
            parameters=self.parameters or None,
            concurrency_limit=limit,
            # A module path, not a file path: the flow runs wherever innsync is installed,
            # whatever the working directory of the serving process.
            entrypoint_type=EntrypointType.MODULE_PATH,
        )


def _on_demand(entrypoint: str, description: str, *tags: str, limit: int | None = None) -> DeploymentSpec:
    return DeploymentSpec(
        name="on-demand",
        entrypoint=entrypoint,
        description=description,
        tags=("innsync", "on-demand", *tags),
        concurrency_limit=limit,
    )


def deployment_specs(
    auto_sync_interval: int | None = None, maintenance_interval: int | None = None
) -> list[DeploymentSpec]:
    """All deployments; the queue and maintenance intervals come from settings
    (INNSYNC_AUTO_SYNC_INTERVAL, INNSYNC_MAINTENANCE_INTERVAL)."""
    from innsync.settings import get_settings

    if auto_sync_interval is None:
        auto_sync_interval = get_settings().auto_sync_interval
    if maintenance_interval is None:
        maintenance_interval = get_settings().maintenance_interval
    sync = "flows/channel_sync.py"
    backup = "flows/backup.py"
    return [
        # The seed's auto-sync. One run at a time; a run that would overlap is cancelled
        # rather than queued, so a slow partner never builds a backlog of queue runs.
        DeploymentSpec(
            name="auto-sync",
            entrypoint="flows/queue.py:process_queue",
            description="Drain the data-sync queue (the seed's auto-sync).",
            tags=("innsync", "queue", "scheduled"),
            interval=auto_sync_interval,
            concurrency_limit=1,
            collision_strategy="CANCEL_NEW",
        ),
        # Starts one pull-batch run per batch of channels and ends within seconds: a hung
        # channel holds only its own lease (flows/scheduled.py), never this deployment's.
        DeploymentSpec(
            name="every-minute",
            entrypoint="flows/scheduled.py:sync_all_bookings",
            description="Pull and acknowledge new bookings from every enabled channel.",
            tags=("innsync", "sync", "scheduled"),
            interval=BOOKING_PULL_INTERVAL,
            concurrency_limit=1,
            collision_strategy="CANCEL_NEW",
        ),
        DeploymentSpec(
            name="every-minute",
            entrypoint="flows/maintenance.py:maintenance",
            description="Reap runs that died; emit innsync.channel.stale for stale channels.",
            tags=("innsync", "maintenance", "scheduled"),
            interval=maintenance_interval,
            concurrency_limit=1,
            collision_strategy="CANCEL_NEW",
        ),
        DeploymentSpec(
            name="nightly",
            entrypoint=f"{sync}:full_ari_sync",
            description="Availability, rates and restrictions of every channel for a year.",
            tags=("innsync", "sync", "scheduled"),
            cron=FULL_ARI_CRON,
            concurrency_limit=1,
        ),
        DeploymentSpec(
            name="nightly",
            entrypoint=f"{backup}:nightly_backup",
            description="Full backup, then retention (keep 7 last/7 daily/4 weekly/6 monthly).",
            tags=("innsync", "backup", "scheduled"),
            cron=NIGHTLY_CRON,
            timezone=NIGHTLY_TIMEZONE,
            parameters=NIGHTLY_PARAMETERS,
            concurrency_limit=1,
        ),
        DeploymentSpec(
            name="daily",
            entrypoint="flows/reports.py:channel_report",
            description="Per-channel performance report as a Prefect table artifact.",
            tags=("innsync", "report", "scheduled"),
            cron=CHANNEL_REPORT_CRON,
            concurrency_limit=1,
        ),
        _on_demand(f"{sync}:sync_bookings", "Pull bookings of one channel.", "sync"),
        # No deployment limit: each run leases its own channels (flows/scheduled.py).
        _on_demand("flows/scheduled.py:pull_batch",
                   "A batch of channels' scheduled pull, each channel under its own lease.",
                   "sync"),
        _on_demand(f"{sync}:sync_booking_by_id",
                   "Fetch and store one booking a partner pushed a hint for.", "sync"),
        _on_demand(f"{sync}:push_availability", "Push availability of one channel.", "sync"),
        _on_demand(f"{sync}:push_rates", "Push rates and restrictions of one channel.", "sync"),
        _on_demand(f"{sync}:push_ari_values", "Push explicit ARI values to one channel.", "sync"),
        _on_demand(f"{sync}:update_booking_status", "Send a booking status to its channel.",
                   "sync"),
        _on_demand(f"{backup}:create_backup", "Back up the database.", "backup"),
        # A restore takes table locks and replaces data: never two at once.
        _on_demand(f"{backup}:restore_backup", "Restore a backup.", "backup", limit=1),
        _on_demand(f"{backup}:verify_backup", "Verify a backup's checksums.", "backup"),
        _on_demand(f"{backup}:delete_backup", "Delete a backup.", "backup"),
        _on_demand(f"{backup}:prune_backups", "Apply backup retention.", "backup"),
    ]


def spec_for(flow: Flow[..., Any], specs: list[DeploymentSpec] | None = None) -> DeploymentSpec:
    """The deployment to start `flow` through (its on-demand one if it has one)."""
    candidates = [
        s for s in (specs or deployment_specs())
        if s.module == flow.fn.__module__ and s.function == flow.fn.__name__
    ]
    if not candidates:
        raise LookupError(f"no deployment declared for flow {flow.name!r}")
    return next((s for s in candidates if s.name == "on-demand"), candidates[0])


def deployment_for(flow: Flow[..., Any], specs: list[DeploymentSpec] | None = None) -> str:
    """`<flow-name>/<deployment>` to start `flow` through (its on-demand one if it has one)."""
    return f"{flow.name}/{spec_for(flow, specs).name}"
