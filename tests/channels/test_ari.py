from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest

from channels.ari import (
    DayValues,
    chunked,
    clip_horizon,
    compress,
    days_of,
    delta,
    expand,
    plan_requests,
    split_days,
)
from channels.base import ARIUpdate

D0 = date(2027, 3, 1)  # a Monday
KEY = ("123456701", "8001001")


def cal(values: list[DayValues], start: date = D0) -> dict[date, DayValues]:
    return {start + timedelta(days=i): v for i, v in enumerate(values)}


def v(rate: str = "100", avail: int = 5, **kw: object) -> DayValues:
    return DayValues(available=avail, rate=Decimal(rate), currency="EUR", **kw)  # type: ignore[arg-type]


def test_consecutive_equal_days_collapse() -> None:
    days = cal([v()] * 10 + [v("120")] * 5 + [v()] * 3)
    out = compress({KEY: days})
    assert [(u.start, u.end, u.rate) for u in out] == [
        (D0, D0 + timedelta(days=9), Decimal("100")),
        (D0 + timedelta(days=10), D0 + timedelta(days=14), Decimal("120")),
        (D0 + timedelta(days=15), D0 + timedelta(days=17), Decimal("100")),
    ]
    assert out[0].available == 5 and out[0].weekdays is None and out[0].min_los is None


def test_gaps_break_ranges() -> None:
    days = cal([v()] * 3)
    days[D0 + timedelta(days=5)] = v()
    assert len(compress({KEY: days})) == 2


def test_unchanged_calendar_sends_nothing() -> None:
    days = cal([v()] * 30)
    assert delta({KEY: days}, {KEY: dict(days)}) == {}
    assert compress(delta({KEY: days}, {KEY: dict(days)})) == []


def test_delta_returns_only_changed_dates() -> None:
    before = cal([v()] * 5)
    after = dict(before)
    after[D0 + timedelta(days=2)] = v("99")
    after[D0 + timedelta(days=9)] = v()  # new date, never sent
    other = ("123456702", None)
    out = delta({KEY: before}, {KEY: after, other: cal([v()])})
    assert out == {KEY: {D0 + timedelta(days=2): v("99"), D0 + timedelta(days=9): v()}, other: cal([v()])}


def test_weekend_pattern_becomes_two_masked_updates() -> None:
    week = [v()] * 5 + [v("150")] * 2  # Mon-Fri 100, Sat-Sun 150
    days = cal(week * 8)
    plain = compress({KEY: days})
    masked = compress({KEY: days}, weekday_patterns=True)
    assert len(plain) == 16
    assert len(masked) == 2
    by_rate = {u.rate: u for u in masked}
    assert by_rate[Decimal("150")].weekdays == frozenset({5, 6})
    assert by_rate[Decimal("100")].weekdays == frozenset({0, 1, 2, 3, 4})
    assert expand(masked) == {KEY: days}


def test_weekday_detection_falls_back_to_ranges_when_not_cheaper() -> None:
    days = cal([v()] * 40)
    out = compress({KEY: days}, weekday_patterns=True)
    assert len(out) == 1 and out[0].weekdays is None


def random_calendar(rng: random.Random, n_keys: int = 3) -> dict[tuple[str, str | None], dict[date, DayValues]]:
    palette = [v(str(r), a) for r in (90, 100, 150) for a in (0, 3)] + [v(stop_sell=True)]
    out: dict[tuple[str, str | None], dict[date, DayValues]] = {}
    for k in range(n_keys):
        days: dict[date, DayValues] = {}
        day = D0 + timedelta(days=rng.randint(0, 6))
        for _ in range(rng.randint(1, 120)):
            if rng.random() < 0.05:
                day += timedelta(days=rng.randint(1, 5))  # gap
            if rng.random() < 0.7 and days:
                days[day] = days[max(days)]
            elif rng.random() < 0.5 and len(days) >= 7:
                days[day] = days[day - timedelta(days=7)] if day - timedelta(days=7) in days else rng.choice(palette)
            else:
                days[day] = rng.choice(palette)
            day += timedelta(days=1)
        out[(f"R{k}", None if k == 0 else f"P{k}")] = days
    return out


@pytest.mark.parametrize("weekdays", [False, True])
def test_property_compress_roundtrips_and_never_overlaps(weekdays: bool) -> None:
    rng = random.Random(7)
    for _ in range(300):
        calendar = random_calendar(rng)
        updates = compress(calendar, weekday_patterns=weekdays)
        assert expand(updates) == calendar
        assert sum(len(list(days_of(u))) for u in updates) == sum(len(d) for d in calendar.values())
        runs = compress(calendar)
        assert len(updates) <= len(runs)
        for u in updates:
            assert u.start <= u.end
            assert u.start.weekday() in (u.weekdays or range(7)) and u.end.weekday() in (u.weekdays or range(7))


def test_property_delta_plus_previous_gives_current() -> None:
    rng = random.Random(11)
    for _ in range(100):
        prev, cur = random_calendar(rng, 2), random_calendar(rng, 2)
        changed = delta(prev, cur)
        merged = {k: {**prev.get(k, {}), **changed.get(k, {})} for k in cur}
        for key, days in cur.items():
            assert {d: merged[key][d] for d in days} == days


def upd(start: date, end: date, weekdays: frozenset[int] | None = None) -> ARIUpdate:
    return ARIUpdate(partner_room_type_code="R", start=start, end=end, weekdays=weekdays, available=1)


def test_split_days_covers_exactly() -> None:
    u = upd(D0, D0 + timedelta(days=99))
    pieces = split_days(u, 31)
    assert [len(list(days_of(p))) for p in pieces] == [31, 31, 31, 7]
    assert pieces[0].start == D0 and pieces[-1].end == u.end


def test_split_days_drops_pieces_without_masked_weekdays() -> None:
    u = upd(D0, D0 + timedelta(days=13), frozenset({5}))  # two Saturdays
    pieces = split_days(u, 3)
    assert [p.start for p in pieces] == [D0 + timedelta(days=5), D0 + timedelta(days=12)]
    assert all(p.start == p.end for p in pieces)
    with pytest.raises(ValueError):
        split_days(u, 0)


def test_clip_horizon() -> None:
    u = upd(D0, D0 + timedelta(days=10))
    assert clip_horizon(u, D0 + timedelta(days=3), D0 + timedelta(days=5)) == upd(D0 + timedelta(days=3), D0 + timedelta(days=5))
    assert clip_horizon(u, D0 + timedelta(days=20), None) is None


def test_chunked() -> None:
    assert chunked([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_plan_requests_month_windows_and_limits() -> None:
    today = D0
    updates = [upd(D0, D0 + timedelta(days=364)), upd(D0 + timedelta(days=800), D0 + timedelta(days=900)),
               upd(D0 + timedelta(days=5), D0 + timedelta(days=6))]
    requests, outside = plan_requests(updates, max_days=31, window_days=31, max_updates=2,
                                      first=today, last=today + timedelta(days=730))
    assert outside == [1]
    parts = [p for r in requests for p in r]
    assert {p.index for p in parts} == {0, 2}
    for r in requests:
        assert len(r) <= 2
        assert (max(p.update.end for p in r) - min(p.update.start for p in r)).days < 31
    covered = [d for p in parts if p.index == 0 for d in days_of(p.update)]
    assert sorted(covered) == list(days_of(updates[0]))
