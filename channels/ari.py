"""Pure ARI planning: per-date values -> fewest ARIUpdate ranges, deltas and request splitting."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from channels.base import ARIUpdate

ALL_WEEKDAYS = frozenset(range(7))
_ONE = timedelta(days=1)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DayValues:
    """What one room type / rate plan should show on one date (None = leave unchanged)."""

    available: int | None = None
    rate: Decimal | None = None
    currency: str | None = None
    min_los: int | None = None
    max_los: int | None = None
    closed_to_arrival: bool | None = None
    closed_to_departure: bool | None = None
    stop_sell: bool | None = None

    def as_update_fields(self) -> dict[str, Any]:
        """The non-None fields, as ARIUpdate keyword arguments."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


#: (partner room type code, partner rate plan code or None)
ARIKey = tuple[str, str | None]
Calendar = Mapping[ARIKey, Mapping[date, DayValues]]


def values_of(update: ARIUpdate) -> DayValues:
    """The per-day values an update carries."""
    return DayValues(
        available=update.available,
        rate=update.rate,
        currency=update.currency,
        min_los=update.min_los,
        max_los=update.max_los,
        closed_to_arrival=update.closed_to_arrival,
        closed_to_departure=update.closed_to_departure,
        stop_sell=update.stop_sell,
    )


def days_of(update: ARIUpdate) -> Iterator[date]:
    """Every date an update applies to (range filtered by its weekday mask)."""
    day = update.start
    while day <= update.end:
        if update.weekdays is None or day.weekday() in update.weekdays:
            yield day
        day += _ONE


def expand(updates: Iterable[ARIUpdate]) -> dict[ARIKey, dict[date, DayValues]]:
    """Inverse of compress: per-date values (later updates win)."""
    out: dict[ARIKey, dict[date, DayValues]] = {}
    for update in updates:
        key = (update.partner_room_type_code, update.partner_rate_plan_code)
        values = values_of(update)
        cal = out.setdefault(key, {})
        for day in days_of(update):
            cal[day] = values
    return out


def delta(previous: Calendar, current: Calendar) -> dict[ARIKey, dict[date, DayValues]]:
    """Only the dates whose values differ from what the partner last acknowledged."""
    out: dict[ARIKey, dict[date, DayValues]] = {}
    for key, days in current.items():
        before = previous.get(key, {})
        changed = {day: v for day, v in days.items() if before.get(day) != v}
        if changed:
            out[key] = changed
    return out


def _make(key: ARIKey, start: date, end: date, weekdays: frozenset[int] | None, v: DayValues) -> ARIUpdate:
    return ARIUpdate(
        partner_room_type_code=key[0],
        partner_rate_plan_code=key[1],
        start=start,
        end=end,
        weekdays=None if weekdays is None or weekdays >= ALL_WEEKDAYS else weekdays,
        **v.as_update_fields(),
    )


def _spans(days: Mapping[date, DayValues]) -> Iterator[list[tuple[date, DayValues]]]:
    """Maximal gap-free runs of dates, in order."""
    span: list[tuple[date, DayValues]] = []
    for day in sorted(days):
        if span and day - span[-1][0] != _ONE:
            yield span
            span = []
        span.append((day, days[day]))
    if span:
        yield span


def _runs(key: ARIKey, span: Sequence[tuple[date, DayValues]]) -> list[ARIUpdate]:
    out: list[ARIUpdate] = []
    start, current = span[0]
    prev = start
    for day, v in span[1:]:
        if v != current:
            out.append(_make(key, start, prev, None, current))
            start, current = day, v
        prev = day
    out.append(_make(key, start, prev, None, current))
    return out


def _weekly_segments(span: Sequence[tuple[date, DayValues]]) -> Iterator[Sequence[tuple[date, DayValues]]]:
    """Cut a span into segments in which every weekday keeps one value."""
    begin = 0
    seen: dict[int, DayValues] = {}
    for i, (day, v) in enumerate(span):
        wd = day.weekday()
        if seen.setdefault(wd, v) != v:
            yield span[begin:i]
            begin, seen = i, {wd: v}
    yield span[begin:]


def _by_weekday(key: ARIKey, segment: Sequence[tuple[date, DayValues]]) -> list[ARIUpdate]:
    groups: dict[DayValues, list[date]] = {}
    for day, v in segment:
        groups.setdefault(v, []).append(day)
    out = []
    for v, days in groups.items():
        mask = frozenset(d.weekday() for d in days)
        out.append(_make(key, days[0], days[-1], mask, v))
    return out


def compress(calendar: Calendar, *, weekday_patterns: bool = False) -> list[ARIUpdate]:
    """Fewest ARIUpdates for per-date values: equal consecutive days collapse into ranges,
    and with `weekday_patterns` repeating weekly patterns become weekday-masked ranges."""
    out: list[ARIUpdate] = []
    for key in sorted(calendar, key=lambda k: (k[0], k[1] or "")):
        for span in _spans(calendar[key]):
            if not weekday_patterns:
                out.extend(_runs(key, span))
                continue
            plain = _runs(key, span)
            weekly: list[ARIUpdate] = []
            for segment in _weekly_segments(span):
                runs = _runs(key, segment)
                masked = _by_weekday(key, segment)
                weekly.extend(masked if len(masked) < len(runs) else runs)
            # Segment cuts can split a run in two, so keep the weekly plan only if it wins.
            out.extend(weekly if len(weekly) < len(plain) else plain)
    out.sort(key=lambda u: (u.partner_room_type_code, u.partner_rate_plan_code or "", u.start))
    return out


def split_days(update: ARIUpdate, max_days: int) -> list[ARIUpdate]:
    """Cut one update into pieces of at most `max_days` calendar days (empty pieces dropped)."""
    if max_days < 1:
        raise ValueError("max_days must be >= 1")
    pieces: list[ARIUpdate] = []
    start = update.start
    while start <= update.end:
        end = min(update.end, start + timedelta(days=max_days - 1))
        piece = update.model_copy(update={"start": start, "end": end})
        days = list(days_of(piece))
        if days:
            pieces.append(piece.model_copy(update={"start": days[0], "end": days[-1]}))
        start = end + _ONE
    return pieces


def clip_horizon(update: ARIUpdate, first: date | None, last: date | None) -> ARIUpdate | None:
    """The part of an update between `first` and `last` (inclusive), or None if nothing is left."""
    start = max(update.start, first) if first else update.start
    end = min(update.end, last) if last else update.end
    if start > end:
        return None
    piece = update.model_copy(update={"start": start, "end": end})
    days = list(days_of(piece))
    if not days:
        return None
    return piece.model_copy(update={"start": days[0], "end": days[-1]})


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """Consecutive batches of at most `size` items."""
    if size < 1:
        raise ValueError("size must be >= 1")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of an input update bound for one request; `index` points back at the input."""

    index: int
    update: ARIUpdate


def plan_requests(
    updates: Sequence[ARIUpdate],
    *,
    max_days: int | None = None,
    window_days: int | None = None,
    max_updates: int | None = None,
    first: date | None = None,
    last: date | None = None,
) -> tuple[list[list[Part]], list[int]]:
    """Split updates into requests by partner limits.

    Each update is clipped to `first`..`last` and cut to `max_days`; the pieces are then grouped
    so one request spans at most `window_days` dates and holds at most `max_updates` pieces.
    Returns (requests, indexes of updates entirely outside the horizon).
    """
    parts: list[Part] = []
    outside: list[int] = []
    for index, update in enumerate(updates):
        clipped = clip_horizon(update, first, last) if (first or last) else update
        if clipped is None:
            outside.append(index)
            continue
        pieces = split_days(clipped, max_days) if max_days else [clipped]
        parts.extend(Part(index, piece) for piece in pieces)
    parts.sort(key=lambda p: (p.update.start, p.index))
    requests: list[list[Part]] = []
    current: list[Part] = []
    window_start: date | None = None
    for part in parts:
        too_wide = (
            window_days is not None
            and window_start is not None
            and (part.update.end - window_start).days >= window_days
        )
        too_many = max_updates is not None and len(current) >= max_updates
        if current and (too_wide or too_many):
            requests.append(current)
            current, window_start = [], None
        if window_start is None:
            window_start = part.update.start
        current.append(part)
    if current:
        requests.append(current)
    return requests, outside
