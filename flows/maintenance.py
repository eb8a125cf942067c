"""The maintenance flow (every minute): reap dead runs, then tell Prefect which channels are stale.

A channel whose booking pull has not succeeded for INNSYNC_STALE_AFTER_MINUTES gets a Prefect
event `innsync.channel.stale` (resource `innsync.channel.<id>`) on every run while it stays
stale; the automation `innsync up` creates (deployments/automations.py) turns the first one
of each INNSYNC_ALERT_EVERY_MINUTES window into a notification through the operator's block.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from db.engine import session_scope
from db.repositories.health import (
    OperationHealth,
    channel_health,
    high_error_rate,
    stale_channels,
)
from deployments.automations import ERROR_RATE_EVENT, STALE_EVENT
from innsync.reaper import prune_result_files, reap
from innsync.settings import get_settings
from tasks.results import MaintenanceOutcome, ReapSummary


def result_storage() -> Path:
    """Where this process's Prefect persists flow and task results (served runs share it)."""
    from prefect.settings import get_current_settings

    return Path(get_current_settings().results.local_storage_path)


def channel_resource(channel_id: int) -> str:
    """Prefect resource id of a channel (what automations match and group by)."""
    return f"innsync.channel.{channel_id}"


def emit_channel_event(event: str, line: OperationHealth, **payload: Any) -> Any:
    """One event about a channel (resource `innsync.channel.<id>`; None when events are off):
    the channel, its partner and last error, plus `payload`."""
    from prefect.events import emit_event

    return emit_event(
        event=event,
        resource={
            "prefect.resource.id": channel_resource(line.channel_id),
            "prefect.resource.name": line.channel,
            "innsync.partner": line.partner,
        },
        payload={
            "channel_id": line.channel_id,
            "channel": line.channel,
            "partner": line.partner,
            **payload,
            "last_error": (line.last_error or "")[:500],
        },
    )


def emit_error_rate(line: OperationHealth, share: float) -> Any:
    """`innsync.channel.error-rate` for a channel whose pulls fail too often."""
    return emit_channel_event(
        ERROR_RATE_EVENT, line, runs_last_hour=line.runs_last_hour,
        failed_last_hour=line.failed_last_hour, failed_percent=round(100 * line.failed_share),
        alert_percent=round(100 * share))


def emit_stale(line: OperationHealth, stale_after_minutes: int) -> Any:
    """`innsync.channel.stale` for a stale channel."""
    return emit_channel_event(
        STALE_EVENT, line, minutes_since_success=int(line.success_age_seconds // 60),
        stale_after_minutes=stale_after_minutes,
        last_success_at=line.last_success_at.isoformat() if line.last_success_at else None,
        consecutive_failures=line.consecutive_failures, last_status=line.last_status)


def _rescale_partner_limits(logger: Any) -> None:
    """Partner budgets follow the enabled channels (a hotel group that grows gets more)."""
    from deployments.limits import ensure_limits

    try:
        changed = ensure_limits(existing_only=True)
    except Exception as exc:  # the budgets stay as they were; the next run tries again
        logger.warning("could not update the partner rate limits: %s", exc)
        return
    if changed:
        logger.info("partner rate limits follow the enabled channels: %s", ", ".join(changed))


@flow(name="maintenance", persist_result=True)
def maintenance(stale_after_minutes: int | None = None) -> MaintenanceOutcome:
    """Reap runs that died; emit `innsync.channel.stale` / `innsync.channel.error-rate` for
    each stale channel or one with a high error rate; hourly, delete Prefect result files older than the
    flow-run retention."""
    logger = get_run_logger()
    settings = get_settings()
    minutes = stale_after_minutes or settings.stale_after_minutes
    reaped = reap()
    _rescale_partner_limits(logger)
    pruned = prune_result_files(result_storage(), settings.run_retention)
    if pruned:
        logger.info("deleted %d Prefect result files older than %s", pruned,
                    settings.run_retention)
    with session_scope() as session:
        lines = channel_health(session)
    stale = stale_channels(lines, minutes * 60)
    erring = high_error_rate(lines, settings.error_rate_alert)
    for line in erring:
        emit_error_rate(line, settings.error_rate_alert)
        logger.warning("channel %s (%s): %d of %d booking pulls failed in the last hour",
                       line.channel, line.partner, line.failed_last_hour, line.runs_last_hour)
    for line in stale:
        emit_stale(line, minutes)
        logger.warning("channel %s (%s): no successful booking pull for %d min "
                       "(%d failures in a row)", line.channel, line.partner,
                       line.success_age_seconds // 60, line.consecutive_failures)
    return MaintenanceOutcome(
        reaped=ReapSummary(
            sync_logs={k: f"{v.status}: {v.reason}" for k, v in reaped.sync_logs.items()},
            backups={k: f"{v.status}: {v.reason}" for k, v in reaped.backups.items()},
            removed_paths=reaped.removed_paths,
            crashed_flow_runs=reaped.crashed_flow_runs,
            crashed_task_runs=reaped.crashed_task_runs,
        ),
        stale=[s.channel_id for s in stale],
        high_error_rate=[f.channel_id for f in erring],
        pruned_result_files=pruned or 0,
    )
