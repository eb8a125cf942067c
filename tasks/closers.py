"""Closing a hotel's sold nights on its other channels while an account pull goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Generic, TypeVar

Night = tuple[int, date]  # (room type id, night)
P = TypeVar("P")


class HotelClosers(Generic[P]):
    """One close at a time per hotel, and the nights that arrive meanwhile in one.

    `add` hands a page's sold nights of a hotel to that hotel's closer; a closer pushes the
    nights gathered since its last push (`push` reads their values afresh), so the last value
    a partner receives is the latest, and a hotel whose bookings span many pages costs each
    partner one push per round, not one per page. At most `parallel` hotels push at once.
    Every owner (channel) whose nights went into a push gets its result (`on_pushed`)."""

    def __init__(self, push: Callable[[int, set[Night]], Awaitable[P]],
                 on_pushed: Callable[[int, P], None], parallel: int) -> None:
        self._push = push
        self._on_pushed = on_pushed
        self._gate = asyncio.Semaphore(max(1, parallel))
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._pending: dict[int, set[Night]] = {}
        self._owners: dict[int, set[int]] = {}

    def add(self, owner: int, hotel: int, nights: set[Night]) -> None:
        if not nights:
            return
        self._pending.setdefault(hotel, set()).update(nights)
        self._owners.setdefault(hotel, set()).add(owner)
        task = self._tasks.get(hotel)
        if task is None or task.done():
            self._tasks[hotel] = asyncio.create_task(self._drain(hotel))

    async def _drain(self, hotel: int) -> None:
        while self._pending.get(hotel):
            nights, owners = self._pending.pop(hotel), self._owners.pop(hotel)
            async with self._gate:
                pushed = await self._push(hotel, nights)
            for owner in owners:
                self._on_pushed(owner, pushed)

    async def wait(self) -> None:
        """Until every hotel's closer has pushed what it was given (its error raised)."""
        await asyncio.gather(*self._tasks.values())

    def cancel(self) -> None:
        """Stop the closes still in flight (the pull ended early)."""
        for task in self._tasks.values():
            if not task.done():
                task.cancel()
