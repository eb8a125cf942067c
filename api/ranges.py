"""Date ranges for calendar reads and range updates: from <= to, at most three years."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Self

from pydantic import Field, model_validator

from api.errors import Unprocessable
from api.schemas import APIInput
from api.validators import Day

MAX_RANGE_DAYS = 3 * 365 + 1
Weekday = Annotated[int, Field(ge=0, le=6)]


def range_problem(start: date, end: date) -> str | None:
    """Why start..end is not an acceptable calendar range, or None."""
    if start > end:
        return "`from` must not be after `to`"
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        return f"a range covers at most {MAX_RANGE_DAYS} days (three years)"
    return None


def check_range(start: date, end: date) -> None:
    """Raise a 422 for an unacceptable range in query parameters."""
    problem = range_problem(start, end)
    if problem:
        raise Unprocessable(problem)


class RangeUpdate(APIInput):
    """`from`..`to` inclusive (hotel-local dates), optionally only some weekdays
    (0=Monday..6=Sunday); the fields to set are the ones present in the body."""

    start: Day = Field(alias="from")
    end: Day = Field(alias="to")
    weekdays: set[Weekday] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _valid_range(self) -> Self:
        problem = range_problem(self.start, self.end)
        if problem:
            raise ValueError(problem)
        if not self.values():
            raise ValueError("set at least one field besides from, to and weekdays")
        return self

    def values(self) -> dict[str, object]:
        """The fields to set (present in the body), by column name."""
        skip = {"start", "end", "weekdays"}
        return {k: getattr(self, k) for k in self.model_fields_set if k not in skip}
