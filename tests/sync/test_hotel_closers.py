"""An account pull's closes: one at a time per hotel, pages that came meanwhile in one push."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from tasks.closers import HotelClosers, Night

D = date(2027, 3, 1)


class Partner:
    """Records each push (hotel, nights) and how many pushes of one hotel overlapped."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.pushes: list[tuple[int, set[Night]]] = []
        self.running: dict[int, int] = {}
        self.most_at_once: dict[int, int] = {}
        self.total_at_once = 0
        self.most_total = 0
        self.fail_hotel: int | None = None

    async def push(self, hotel: int, nights: set[Night]) -> str:
        self.pushes.append((hotel, set(nights)))
        self.running[hotel] = self.running.get(hotel, 0) + 1
        self.total_at_once += 1
        self.most_at_once[hotel] = max(self.most_at_once.get(hotel, 0), self.running[hotel])
        self.most_total = max(self.most_total, self.total_at_once)
        try:
            await asyncio.sleep(self.seconds)
            if hotel == self.fail_hotel:
                raise RuntimeError(f"partner refused hotel {hotel}")
            return f"push {len(self.pushes)}"
        finally:
            self.running[hotel] -= 1
            self.total_at_once -= 1


def test_pages_that_arrive_while_a_hotel_pushes_go_in_its_next_push() -> None:
    asyncio.run(_pages_that_arrive_while_a_hotel_pushes_go_in_its_next_push())


async def _pages_that_arrive_while_a_hotel_pushes_go_in_its_next_push() -> None:
    partner = Partner()
    got: list[tuple[int, str]] = []
    closers: HotelClosers[str] = HotelClosers(partner.push, lambda o, p: got.append((o, p)), 4)
    closers.add(1, 10, {(5, D)})                         # page 1: hotel 10's push starts
    await asyncio.sleep(0)
    for page in range(2, 6):                             # pages 2-5 come during that push
        closers.add(1 if page % 2 else 2, 10, {(5, D.replace(day=page))})
    await closers.wait()
    # Two pushes, not five: the first page's, then the four others together.
    assert partner.pushes == [(10, {(5, D)}),
                              (10, {(5, D.replace(day=d)) for d in range(2, 6)})]
    assert partner.most_at_once == {10: 1}
    # Every channel whose nights went into a push hears of it (channel 2 only of the second).
    assert sorted(got) == [(1, "push 1"), (1, "push 2"), (2, "push 2")]


def test_hotels_push_side_by_side_up_to_the_limit_each_one_at_a_time() -> None:
    asyncio.run(_hotels_push_side_by_side_up_to_the_limit_each_one_at_a_time())


async def _hotels_push_side_by_side_up_to_the_limit_each_one_at_a_time() -> None:
    partner = Partner()
    closers: HotelClosers[str] = HotelClosers(partner.push, lambda o, p: None, 2)
    for page in range(3):
        for hotel in (10, 11, 12, 13):
            closers.add(hotel, hotel, {(1, D.replace(day=page + 1))})
        await asyncio.sleep(0.01)
    await closers.wait()
    assert partner.most_total == 2
    assert all(n == 1 for n in partner.most_at_once.values())
    for hotel in (10, 11, 12, 13):  # every night of every hotel was pushed, none twice
        nights = [n for h, ns in partner.pushes if h == hotel for n in ns]
        assert sorted(nights) == [(1, D.replace(day=d)) for d in (1, 2, 3)]


def test_a_failed_push_is_raised_by_wait_and_cancel_stops_the_rest() -> None:
    asyncio.run(_a_failed_push_is_raised_by_wait_and_cancel_stops_the_rest())


async def _a_failed_push_is_raised_by_wait_and_cancel_stops_the_rest() -> None:
    partner = Partner()
    partner.fail_hotel = 11
    closers: HotelClosers[str] = HotelClosers(partner.push, lambda o, p: None, 4)
    closers.add(1, 10, {(1, D)})
    closers.add(2, 11, {(1, D)})
    with pytest.raises(RuntimeError, match="hotel 11"):
        await closers.wait()

    slow = Partner(seconds=30)
    stopped: HotelClosers[str] = HotelClosers(slow.push, lambda o, p: None, 4)
    stopped.add(1, 10, {(1, D)})
    await asyncio.sleep(0.01)
    stopped.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopped.wait()
    assert slow.running == {10: 0}
    closers.add(1, 12, set())  # nothing to close: no push
    assert [h for h, _ in partner.pushes] == [10, 11]
