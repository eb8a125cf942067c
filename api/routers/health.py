"""Liveness, database readiness (no auth) and channel health (viewer)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import select

from api.deps import SessionDep, ViewerDep
from api.schemas import APIModel
from db.repositories.accounts import recent_unroutable
from db.repositories.health import (
    PULL_OPERATION,
    OperationHealth,
    channel_health,
    high_error_rate,
    stale_channels,
)
from db.repositories.scopes import channels_in_properties
from innsync.settings import get_settings

router = APIRouter(tags=["health"])


class ChannelsSummary(APIModel):
    """Counts only (the endpoint is public): details are at /api/health/channels."""

    enabled: int
    #: Enabled channels whose booking pull has not succeeded for staleAfterMinutes.
    stale: int
    #: Enabled channels whose last booking pull failed (one or more failures in a row).
    failing: int
    #: Sync runs in progress.
    running: int
    stale_after_minutes: int
    #: Reservations for hotel codes no channel of their partner account maps, seen in the
    #: last 24 h: not acknowledged, so the partner e-mails them (details per account at
    #: /api/partner-accounts/{id}/unroutable).
    unroutable: int = 0


class Health(APIModel):
    status: str
    database: str
    version: str
    channels: ChannelsSummary | None = None


class OperationHealthOut(APIModel, OperationHealth):
    """A line of the repository's health view (camelCase) with its verdict."""

    #: For the booking pull of an enabled channel: no success for staleAfterMinutes.
    stale: bool
    #: For the booking pull of an enabled channel: at least INNSYNC_ERROR_RATE_ALERT of the
    #: last hour's runs failed (at least 5 finished).
    high_error_rate: bool = False


class ChannelHealthOut(APIModel):
    stale_after_minutes: int
    channels: list[OperationHealthOut]


def summarise(lines: list[OperationHealth], stale_after_minutes: int) -> ChannelsSummary:
    pulls = [h for h in lines if h.enabled and h.operation == PULL_OPERATION]
    return ChannelsSummary(
        enabled=len(pulls),
        stale=len(stale_channels(lines, stale_after_minutes * 60)),
        failing=sum(1 for h in pulls if h.consecutive_failures > 0),
        running=sum(h.running for h in lines),
        stale_after_minutes=stale_after_minutes,
    )


@router.get("/health", response_model=Health, response_model_exclude_none=True)
def health(session: SessionDep) -> Health:
    from innsync import __version__

    session.execute(select(1))
    minutes = get_settings().stale_after_minutes
    summary = summarise(channel_health(session), minutes)
    summary.unroutable = sum(u.reservations for u in recent_unroutable(session))
    # "degraded" (still HTTP 200: the service answers) when a channel stopped syncing or
    # bookings arrive for hotels innsync does not map.
    status = "degraded" if summary.stale or summary.unroutable else "ok"
    return Health(status=status, database="ok", version=__version__, channels=summary)


@router.get("/health/channels", response_model=ChannelHealthOut)
def channels_health(
    session: SessionDep,
    principal: ViewerDep,
    channel_id: int | None = Query(None, alias="channelId", ge=1),
) -> ChannelHealthOut:
    """Per channel and operation: last attempt, last success, its age, failures in a row
    (a property-scoped key sees its properties' channels)."""
    minutes = get_settings().stale_after_minutes
    lines = channel_health(session, channel_id)
    if principal.property_ids is not None:
        mine = set(session.scalars(channels_in_properties(sorted(principal.property_ids))))
        lines = [h for h in lines if h.channel_id in mine]
    stale = {(h.channel_id, h.operation) for h in stale_channels(lines, minutes * 60)}
    erring = {(h.channel_id, h.operation)
               for h in high_error_rate(lines, get_settings().error_rate_alert)}
    return ChannelHealthOut(
        stale_after_minutes=minutes,
        channels=[OperationHealthOut(**h.model_dump(), stale=(h.channel_id, h.operation) in stale,
                                     high_error_rate=(h.channel_id, h.operation) in erring)
                  for h in lines],
    )
