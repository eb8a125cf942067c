"""The API's read of channel_sync_logs: filtered lists and the rows of one flow run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from db.models import Channel, ChannelSyncLog


def sync_logs_query(
    *,
    channel_id: int | None = None,
    property_ids: Sequence[int] | None = None,
    operation: str | None = None,
    status: str | None = None,
    started_from: date | None = None,
    started_to: date | None = None,
    flow_run_id: UUID | None = None,
) -> Select[tuple[ChannelSyncLog]]:
    """Sync logs newest first, filtered; `property_ids` keeps the rows of those properties'
    channels (None: every row)."""
    stmt = select(ChannelSyncLog).order_by(
        ChannelSyncLog.started_at.desc(), ChannelSyncLog.id.desc()
    )
    equals: list[tuple[Any, Any]] = [
        (ChannelSyncLog.channel_id, channel_id),
        (ChannelSyncLog.operation, operation),
        (ChannelSyncLog.status, status),
        (ChannelSyncLog.flow_run_id, flow_run_id),
    ]
    for column, value in equals:
        if value is not None:
            stmt = stmt.where(column == value)
    if property_ids is not None:
        stmt = stmt.where(
            ChannelSyncLog.channel_id.in_(
                select(Channel.id).where(Channel.property_id.in_(list(property_ids)))
            )
        )
    if started_from is not None:
        stmt = stmt.where(ChannelSyncLog.started_at >= started_from)
    if started_to is not None:
        stmt = stmt.where(ChannelSyncLog.started_at < started_to + timedelta(days=1))
    return stmt


def logs_of_flow_run(session: Session, flow_run_id: UUID) -> list[ChannelSyncLog]:
    """Every sync-log row a flow run wrote (one per channel and operation), oldest first."""
    return list(
        session.scalars(
            select(ChannelSyncLog)
            .where(ChannelSyncLog.flow_run_id == flow_run_id)
            .order_by(ChannelSyncLog.id)
        )
    )
