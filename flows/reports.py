"""Report flows: the channel performance report as a Prefect table artifact (daily)."""

from __future__ import annotations

from datetime import date, timedelta

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NONE

from db.engine import session_scope
from db.repositories.reports import channel_report as report_rows
from tasks.results import ChannelReportRow, ReportOutcome

DEFAULT_DAYS = 30


@task(name="channel-report-rows", cache_policy=NONE)
def build_report(start: date, end: date, property_id: int | None) -> list[ChannelReportRow]:
    """One row per channel over start..end."""
    with session_scope() as session:
        return report_rows(session, start, end, property_id)


@flow(name="channel-report", persist_result=True)
async def channel_report(
    start_date: date | None = None,
    end_date: date | None = None,
    property_id: int | None = None,
) -> ReportOutcome:
    """Per-channel performance over start..end (default: the 30 days up to today), published
    as the `channel-report` table artifact."""
    end = end_date or date.today()
    start = start_date or end - timedelta(days=DEFAULT_DAYS - 1)
    rows = build_report(start, end, property_id)
    await acreate_table_artifact(
        key="channel-report",
        table=[r.model_dump(mode="json") for r in rows] or [{"result": "no channels configured"}],
        description=f"Channel performance {start}..{end}: bookings received, room nights, "
        "revenue, ADR, cancellations, lead time, sync success, overbookings",
    )
    get_run_logger().info("channel report %s..%s: %d channels", start, end, len(rows))
    return ReportOutcome(start=start, end=end, channels=rows)
