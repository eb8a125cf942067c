"""Reports (viewer): channel performance over a window of days."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import SessionDep, ViewerDep
from api.ranges import check_range
from api.schemas import APIModel
from api.validators import Day, Id
from db.repositories.reports import channel_report
from tasks.results import ChannelReportRow

router = APIRouter(prefix="/reports", tags=["reports"])

DEFAULT_DAYS = 30


class ChannelReport(APIModel):
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    channels: list[ChannelReportRow]


@router.get("/channels", response_model=ChannelReport, response_model_by_alias=True)
def channels_report(
    session: SessionDep,
    _: ViewerDep,
    start: Annotated[Day | None, Query(alias="from", description="first day (default: "
                                        "29 days before `to`)")] = None,
    end: Annotated[Day | None, Query(alias="to", description="last day (default: today)")]
    = None,
    property_id: Annotated[Id | None, Query(alias="propertyId")] = None,
) -> ChannelReport:
    """Per channel: bookings received in the window, room nights, revenue, ADR, cancellation
    rate, average lead time, sync success rate, last successful sync, open overbookings."""
    end = end or date.today()
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    check_range(start, end)
    rows = channel_report(session, start, end, property_id)
    return ChannelReport(
        start=start, end=end,
        channels=rows,
    )
