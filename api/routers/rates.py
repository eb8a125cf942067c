"""Rate calendar of a rate plan: read a date range (viewer), range updates (operator)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Self

from fastapi import APIRouter, Query
from pydantic import Field, model_validator

from api import audit
from api.crud import get_or_404, repository_errors
from api.deps import OperatorDep, SessionDep, ViewerDep
from api.errors import Unprocessable
from api.paging import LIST_DOCS, PageDep, page_of
from api.ranges import RangeUpdate, check_range
from api.schemas import APIModel
from api.validators import Day, Id
from db.models import RatePlan
from db.repositories.base import paginate
from db.repositories.calendar import rates_query, upsert_rate_range
from db.repositories.queue import enqueue_range

router = APIRouter(prefix="/rate-plans/{rate_plan_id}/rates", tags=["rates"])

Los = Annotated[int, Field(ge=1, le=365)]


class RateDay(APIModel):
    date: date
    amount: Decimal
    currency: str
    min_los: int | None
    max_los: int | None
    closed_to_arrival: bool
    closed_to_departure: bool
    closed: bool
    updated_at: datetime


class RateRangeUpdate(RangeUpdate):
    amount: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)
    min_los: Los | None = None
    max_los: Los | None = None
    closed_to_arrival: bool | None = None
    closed_to_departure: bool | None = None
    closed: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min_los is not None and self.max_los is not None and self.min_los > self.max_los:
            raise ValueError("minLos must not exceed maxLos")
        nullable = {"min_los", "max_los"}
        if any(v is None and k not in nullable for k, v in self.values().items()):
            raise ValueError("only minLos and maxLos can be null (to clear them)")
        return self


class RateRangeResult(APIModel):
    rate_plan_id: int
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    days: int


@router.get("", response_model=list[RateDay], **LIST_DOCS)
def get_rates(
    rate_plan_id: Id,
    session: SessionDep,
    _: ViewerDep,
    page: PageDep,
    start: Annotated[Day, Query(alias="from")],
    end: Annotated[Day, Query(alias="to")],
) -> list[RateDay]:
    """The stored rate days of a rate plan in from..to (inclusive)."""
    get_or_404(session, RatePlan, rate_plan_id, "rate plan")
    check_range(start, end)
    rows, total = paginate(session, rates_query(rate_plan_id, start, end), page.limit,
                           page.offset)
    return page_of(RateDay, rows, total, page)


@router.put("", response_model=RateRangeResult)
def update_rates(
    rate_plan_id: Id, body: RateRangeUpdate, session: SessionDep, principal: OperatorDep
) -> RateRangeResult:
    """Set amount/restrictions on every day of the range. With `amount`, missing days are
    created; without it only existing days change. A minLos/maxLos that would cross a
    stored value is a 422."""
    plan = get_or_404(session, RatePlan, rate_plan_id, "rate plan")
    values = body.values()
    if "amount" in values:
        values["currency"] = plan.currency
    with repository_errors():
        days = upsert_rate_range(session, rate_plan_id, body.start, body.end, values,
                                 body.weekdays)
    if days == 0 and "amount" not in values:
        raise Unprocessable("no stored rate days in the range; send an amount to create them")
    enqueue_range(session, "rate", rate_plan_id, body.start, body.end)
    change = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
    audit.record(session, principal.actor, "range_update", "rates", rate_plan_id, None,
                 {**change, "days": days})
    return RateRangeResult(rate_plan_id=rate_plan_id, start=body.start, end=body.end, days=days)


# PATCH does the same range update (only the given fields change); its own operation id
# keeps the OpenAPI document valid.
router.add_api_route("", update_rates, methods=["PATCH"], response_model=RateRangeResult,
                     operation_id="update_rates_patch")
