"""Prefect automations innsync relies on, created or updated by name (idempotent).

- `innsync: crash zombie flow runs`: Prefect's documented zombie-run automation. Every flow
  run emits `prefect.flow-run.heartbeat` events (PREFECT_FLOWS_HEARTBEAT_FREQUENCY, set by
  `innsync up`); a run that stops emitting them (and ends with no state event) for
  INNSYNC_ZOMBIE_AFTER_SECONDS is set Crashed, which also frees its concurrency slots.
- `innsync: channel stale`: each `innsync.channel.stale` event (flows/maintenance.py) sends a
  notification through the operator's Prefect notification block (INNSYNC_ALERT_BLOCK, as
  "<block-type-slug>/<block-name>"), at most once per channel per
  INNSYNC_ALERT_EVERY_MINUTES.
- `innsync: channel error rate`: the same for `innsync.channel.error-rate` (at least
  INNSYNC_ERROR_RATE_ALERT of the last hour's booking pulls failed; Expedia asks partners to
  act at 10 %).

`python -m deployments.automations` creates both against PREFECT_API_URL (the deploy path
with workers); `innsync up` does it at startup.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

ZOMBIE_AUTOMATION = "innsync: crash zombie flow runs"
STALE_AUTOMATION = "innsync: channel stale"
STALE_EVENT = "innsync.channel.stale"
STALE_SUBJECT = "innsync: {{ event.resource['prefect.resource.name'] }} has stopped syncing"
STALE_BODY = (
    "Channel {{ event.resource['prefect.resource.name'] }} "
    "({{ event.payload.partner }}) has had no successful booking pull for "
    "{{ event.payload.minutes_since_success }} minutes "
    "(alert after {{ event.payload.stale_after_minutes }}).\n"
    "Last success: {{ event.payload.last_success_at or 'never' }}; "
    "failures in a row: {{ event.payload.consecutive_failures }}; "
    "last status: {{ event.payload.last_status or 'none' }}.\n"
    "Last error: {{ event.payload.last_error or 'none' }}\n"
    "Details: GET /api/health/channels or `innsync status`."
)


ERROR_RATE_AUTOMATION = "innsync: channel error rate"
ERROR_RATE_EVENT = "innsync.channel.error-rate"
ERROR_RATE_SUBJECT = ("innsync: {{ event.resource['prefect.resource.name'] }}: "
                   "{{ event.payload.failed_percent }}% of booking pulls failed")
ERROR_RATE_BODY = (
    "Channel {{ event.resource['prefect.resource.name'] }} "
    "({{ event.payload.partner }}): {{ event.payload.failed_last_hour }} of "
    "{{ event.payload.runs_last_hour }} booking pulls failed in the last hour "
    "(alert at {{ event.payload.alert_percent }}%).\n"
    "Last error: {{ event.payload.last_error or 'none' }}\n"
    "Details: GET /api/health/channels or `innsync status`."
)


def zombie_automation(within_seconds: int) -> Any:
    """The zombie-run automation (proactive: no heartbeat or state event in time)."""
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description="A Running flow run that stopped sending heartbeats is marked Crashed.",
        trigger=EventTrigger(
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.*"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_seconds),
        ),
        actions=[ChangeFlowRunState(
            state="CRASHED",  # type: ignore[arg-type]
            message=f"Marked Crashed: no heartbeat for {within_seconds} s (innsync automation).",
        )],
    )


def stale_automation(block_document_id: UUID, every_minutes: int) -> Any:
    """The stale-channel notification (reactive: at most one per channel per window)."""
    return _channel_alert(STALE_AUTOMATION, STALE_EVENT, block_document_id, every_minutes,
                          "Notify when a channel has had no successful booking pull for a "
                          "while.", STALE_SUBJECT, STALE_BODY)


def error_rate_automation(block_document_id: UUID, every_minutes: int) -> Any:
    """The high-error-rate notification (reactive: at most one per channel per window)."""
    return _channel_alert(ERROR_RATE_AUTOMATION, ERROR_RATE_EVENT, block_document_id, every_minutes,
                          "Notify when too many of a channel's booking pulls fail.",
                          ERROR_RATE_SUBJECT, ERROR_RATE_BODY)


def _channel_alert(name: str, event: str, block_document_id: UUID, every_minutes: int,
                   description: str, subject: str, body: str) -> Any:
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=name,
        description=description,
        trigger=EventTrigger(
            match={"prefect.resource.id": ["innsync.channel.*"]},
            expect={event},
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(minutes=every_minutes),
        ),
        actions=[SendNotification(block_document_id=block_document_id, subject=subject,
                                  body=body)],
    )


def upsert(automation: Any) -> UUID:
    """Create the automation, or update the one with its name (duplicates removed)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(automation.name)
        if not existing:
            return client.create_automation(automation)
        keep, *extra = existing
        client.update_automation(keep.id, automation)
        for dup in extra:
            client.delete_automation(dup.id)
        return keep.id


def notification_block_id(ref: str) -> UUID:
    """The id of a saved notification block given as "<block-type-slug>/<block-name>"."""
    from prefect.client.orchestration import get_client

    slug, sep, name = ref.partition("/")
    if not sep or not slug or not name:
        raise ValueError(f"INNSYNC_ALERT_BLOCK must be <block-type-slug>/<block-name>, got {ref!r}")
    with get_client(sync_client=True) as client:
        doc = client.read_block_document_by_name(name=name, block_type_slug=slug)
    assert doc.id is not None
    return doc.id


def ensure_automations(alert_block: str | None = None, zombie_after: int | None = None,
                       alert_every_minutes: int | None = None) -> dict[str, str]:
    """Create/update both automations from settings; what was done, by automation name."""
    from innsync.settings import get_settings

    settings = get_settings()
    # Never shorter than three heartbeats: one late heartbeat must not crash a live run.
    window = max(zombie_after or settings.zombie_after_seconds, 3 * settings.heartbeat_seconds)
    done = {ZOMBIE_AUTOMATION: str(upsert(zombie_automation(window)))}
    block = alert_block if alert_block is not None else settings.alert_block
    every = alert_every_minutes or settings.alert_every_minutes
    for name, build in ((STALE_AUTOMATION, stale_automation),
                        (ERROR_RATE_AUTOMATION, error_rate_automation)):
        if block:
            done[name] = str(upsert(build(notification_block_id(block), every)))
        else:
            done[name] = "skipped: set INNSYNC_ALERT_BLOCK to a notification block"
    return done


if __name__ == "__main__":
    for name, outcome in ensure_automations().items():
        print(f"{name}: {outcome}")
