"""Annotated field types shared by request bodies, paths and queries.

Every integer that reaches a column is bounded by that column's type (int4 or int8), every
date is an ISO `YYYY-MM-DD` string (never a number), and no text carries a NUL byte: out of
range or malformed input is a 422 at the edge, never a database error (a 500) or a value
sent on to a partner.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from annotated_types import GroupedMetadata, Interval
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")


def _strict_day(value: Any) -> Any:
    """Dates come as `YYYY-MM-DD` text only: pydantic's lax mode would read `0` or
    `1700000000` as a Unix time."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DAY.match(value):
        return value
    raise ValueError("a date is written YYYY-MM-DD")


def _strict_moment(value: Any) -> Any:
    """Timestamps come as ISO 8601 text (or a bare date) only, never as a number."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_MOMENT.match(value.strip()):
        return value
    raise ValueError("a timestamp is written YYYY-MM-DDTHH:MM[:SS][+HH:MM]")


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL (\\u0000) characters")
    return value


def _raw_max(max_length: int) -> BeforeValidator:
    """The documented maxLength holds for the text as sent, before whitespace is stripped
    (else 201 characters with a leading blank pass a 200-character limit)."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) > max_length:
            raise ValueError(f"at most {max_length} characters")
        return value

    return BeforeValidator(check)


@dataclass(frozen=True)
class BoundedText(GroupedMetadata):
    """Text bounded as sent (before any stripping), stripped of surrounding blanks unless
    `strip` is False, optionally matching `pattern`, without NUL: the metadata of
    `Annotated[str, BoundedText(...)]` (a type alias mypy reads as `str`)."""

    max_length: int
    min_length: int = 0
    pattern: str | None = None
    strip: bool = True

    def __iter__(self) -> Iterator[Any]:
        yield from StringConstraints(strip_whitespace=self.strip, min_length=self.min_length,
                                     max_length=self.max_length, pattern=self.pattern)
        yield _raw_max(self.max_length)
        yield AfterValidator(no_nul)


#: Primary keys and references (BIGINT ids start at 1).
Id = Annotated[int, Interval(ge=1, le=INT8_MAX)]
#: Any int4 column.
Int4 = Annotated[int, Interval(ge=INT4_MIN, le=INT4_MAX)]
NonNegative = Annotated[int, Interval(ge=0, le=INT4_MAX)]
Positive = Annotated[int, Interval(ge=1, le=INT4_MAX)]
#: An offset or count sent to SQL as a BIGINT.
BigNonNegative = Annotated[int, Interval(ge=0, le=INT8_MAX)]
Day = Annotated[date, BeforeValidator(_strict_day)]
Moment = Annotated[datetime, BeforeValidator(_strict_moment)]
#: Free text (a note, a filter): bounded, no NUL.
Text = Annotated[str, BoundedText(2000, strip=False)]
ShortText = Annotated[str, BoundedText(200, strip=False)]

Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32), _raw_max(32),
    AfterValidator(no_nul),
]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), _raw_max(200),
    AfterValidator(no_nul),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
TimeZone = Annotated[str, AfterValidator(no_nul), AfterValidator(_timezone)]
#: Hours as a float: finite and bounded (JSON parsers here accept NaN and Infinity).
Hours = Annotated[float, Field(ge=0, le=24 * 365 * 100, allow_inf_nan=False)]
