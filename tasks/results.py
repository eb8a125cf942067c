"""Typed results handed from task to flow to caller (pydantic; camelCase on the wire).

Every sync flow returns a `SyncOutcome` (or a subclass): `recordsProcessed/Success/Failed`
are the same numbers the run's sync log holds. Fields are read as attributes; subscripting
(`outcome["recordsSuccess"]`) reads a declared field by name or alias and raises KeyError for
anything else, so no caller can guess at keys.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Result(BaseModel):
    """Base of every result: camelCase aliases, strict field access."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def __getitem__(self, key: str) -> Any:
        fields = type(self).model_fields
        if key in fields:
            return getattr(self, key)
        for name, info in fields.items():
            if info.alias == key:
                return getattr(self, name)
        raise KeyError(key)

    def wire(self) -> dict[str, Any]:
        """The JSON-ready camelCase form (for API bodies, artifacts, legacy dict readers)."""
        return self.model_dump(mode="json", by_alias=True)


class Totals(Result):
    """Counts of one run, as its sync log records them."""

    processed: int = 0
    success: int = 0
    failed: int = 0

    def add(self, processed: int = 0, success: int = 0, failed: int = 0) -> None:
        self.processed += processed
        self.success += success
        self.failed += failed


# ---------------------------------------------------------------- task results


class PushSummary(Result):
    """What one ARI push (a window, or explicit values) sent and what the partner said."""

    updates: int = 0
    ok: int = 0
    failed: int = 0
    transient_failed: int = 0
    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    window: tuple[date, date] | None = None


class StoreResult(Result):
    """One batch of partner bookings stored in one transaction, then acknowledged."""

    processed: int = 0
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    unmapped: int = 0
    acked: int = 0
    overbooked: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    #: (room_type_id, night) whose sold count changed: availability to push to channels.
    touched: list[tuple[int, date]] = Field(default_factory=list)


class PageResult(StoreResult):
    """One page pulled from a partner: what storing it did plus where the next page is."""

    page_errors: list[str] = Field(default_factory=list)
    has_more: bool = False
    cursor: str | None = None
    #: The partner's listing is complete (BookingPage.final): no pulling again after acks.
    final: bool = False
    booking_ids: list[str] = Field(default_factory=list)
    #: One key per message of the page: booking id + a digest of its (masked) content, so a
    #: re-delivery is recognised even when the partner stamps it anew (Booking.com).
    message_keys: list[str] = Field(default_factory=list)


class AccountPageResult(Result):
    """One page of an account-wide partner's queue, routed to its channels by hotel code."""

    channels: dict[int, PageResult] = Field(default_factory=dict)
    #: "<hotel code>:<booking id>" of bookings for hotels no channel of the account maps.
    unroutable: list[str] = Field(default_factory=list)
    #: Bookings of the account's channels that were not pulled now (left unacknowledged).
    left_for_later: int = 0
    has_more: bool = False
    page_errors: list[str] = Field(default_factory=list)


class StatusPushResult(Result):
    """One booking status sent to a partner."""

    error: str | None = None
    not_applicable: bool = False
    #: The partner already showed the wanted status (a repeated push, nothing sent twice).
    already: bool = False
    #: Nothing was sent: the partner's token endpoint asked us to wait this many seconds.
    wait_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.not_applicable


class WindowRow(Result):
    """One line of an ARI run's artifact: a window of one channel."""

    channel: str
    window: str
    updates: int | str
    accepted: int
    refused: int | str
    error: str = ""


class ChannelPush(Result):
    """One channel's ARI push over a range, with its own sync log."""

    channel_id: int
    channel: str
    status: str
    processed: int = 0
    success: int = 0
    failed: int = 0
    errors: list[str] = Field(default_factory=list)
    rows: list[WindowRow] = Field(default_factory=list, exclude=True)
    #: Some windows were not sent: the partner's token endpoint asked us to wait this long.
    wait_seconds: float | None = None


class ChannelPushBrief(Result):
    """Availability pushed to one channel after bookings changed nights."""

    updates: int = 0
    ok: int = 0
    failed: int = 0
    error: str | None = None


# ---------------------------------------------------------------- flow results


class SyncOutcome(Result):
    """The result of a sync flow run (the seed's contract): counts equal the sync log's."""

    success: bool
    records_processed: int = 0
    records_success: int = 0
    records_failed: int = 0
    errors: list[str] = Field(default_factory=list)


class BookingsOutcome(SyncOutcome):
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    unmapped: int = 0
    acked: int = 0
    overbooked: list[str] = Field(default_factory=list)
    availability_pushed: dict[str, ChannelPushBrief] = Field(default_factory=dict)


class BookingFetchOutcome(SyncOutcome):
    booking: str
    new: int = 0
    updated: int = 0
    overbooked: list[str] = Field(default_factory=list)


class AriOutcome(SyncOutcome):
    channels: list[ChannelPush] = Field(default_factory=list)


class ValuesOutcome(SyncOutcome):
    channel: str


class StatusOutcome(SyncOutcome):
    not_applicable: bool = False


class QueueRow(Result):
    """One queue item's fate in a batch (a line of the run's artifact)."""

    item: int
    entity: str
    operation: str
    attempt: int
    result: str
    detail: str = ""


class QueueOutcome(Result):
    success: bool = True
    batches: int = 0
    processed: int = 0
    completed: int = 0
    not_applicable: int = 0
    retrying: int = 0
    failed: int = 0


class ReapSummary(Result):
    """What one reaper pass closed: status and reason per sync log / backup id."""

    sync_logs: dict[int, str] = Field(default_factory=dict)
    backups: dict[int, str] = Field(default_factory=dict)
    removed_paths: list[str] = Field(default_factory=list)
    crashed_flow_runs: int = 0
    #: Background task runs whose task worker died (Running past their bound).
    crashed_task_runs: int = 0


class MaintenanceOutcome(Result):
    reaped: ReapSummary
    #: Ids of the channels found stale (an event was emitted for each).
    stale: list[int] = Field(default_factory=list)
    #: Ids of the channels whose pulls failed too often in the last hour (an event each).
    high_error_rate: list[int] = Field(default_factory=list)
    #: Prefect result files deleted (past the flow-run retention; checked hourly).
    pruned_result_files: int = 0


class ChannelReportRow(Result):
    """One channel's figures for a window (db/repositories/reports.py)."""

    channel_id: int
    channel: str
    channel_name: str
    enabled: bool
    bookings: int = 0
    reservations: int = 0
    room_nights: int = 0
    revenue: Decimal = Decimal("0")
    average_daily_rate: Decimal | None = None
    cancellation_rate: float | None = None
    average_lead_time_days: float | None = None
    sync_runs: int = 0
    sync_success_rate: float | None = None
    last_successful_sync: str | None = None
    open_overbookings: int = 0


class ReportOutcome(Result):
    start: date
    end: date
    channels: list[ChannelReportRow] = Field(default_factory=list)


class CycleLine(Result):
    """One channel's line in the every-minute cycle."""

    channel_id: int
    channel: str
    partner: str
    state: str = ""
    flow_run_id: str | None = None
    #: The background task run that carries the batch to a pull worker (flows/background.py).
    task_run_id: str | None = None
    new: int | None = None
    updated: int | None = None
    errors: int | None = None
    error: str | None = None


class CycleOutcome(Result):
    channels: list[CycleLine] = Field(default_factory=list)


# ---------------------------------------------------------------- backups


class BackupCreated(Result):
    """What create-backup wrote (the same figures its system_backups record holds)."""

    backup_id: int
    file_path: str
    size_bytes: int
    backup_type: str
    parent_id: int | None = None
    tables: dict[str, int] = Field(default_factory=dict)
    rows: int = 0
    alembic_revision: str | None = None
    encrypted: bool = False

    def record_summary(self) -> dict[str, Any]:
        """The part kept in the backup's record (system_backups.metadata)."""
        return self.model_dump(include={"backup_type", "parent_id", "tables", "rows",
                                        "alembic_revision", "encrypted"})


class RestoreOutcome(Result):
    file_path: str
    backup_id: int | None = None
    #: Rows loaded per table.
    tables: dict[str, int] = Field(default_factory=dict)


class VerifyOutcome(RestoreOutcome):
    ok: bool = True
    #: Rows compared per table after a scratch restore (--full), else None.
    compared: dict[str, int] | None = None


class DeleteOutcome(Result):
    backup_id: int | None = None
    file_path: str
    deleted_children: list[int] = Field(default_factory=list)


class PruneOutcome(Result):
    dry_run: bool
    #: Backup id (as text) -> why it is kept.
    keep: dict[str, list[str]] = Field(default_factory=dict)
    delete: list[int] = Field(default_factory=list)


class NightlyOutcome(Result):
    backup: BackupCreated
    prune: PruneOutcome
