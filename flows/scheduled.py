"""Flows meant for schedules: one run that covers every enabled channel."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Failed, State
from sqlalchemy import text

from db.engine import session_scope
from flows.channel_sync import sync_bookings


def enabled_channels(channel_names: list[str] | None = None) -> list[tuple[int, str, str]]:
    """(id, name, partner) of every enabled channel, optionally of some partners only."""
    with session_scope() as session:
        rows = session.execute(
            text(
                "SELECT id, name, channel_name FROM channels WHERE enabled "
                "AND (CAST(:names AS text[]) IS NULL OR channel_name = ANY(CAST(:names AS text[]))) "
                "ORDER BY id"
            ),
            {"names": channel_names},
        ).all()
    return [(r.id, r.name, r.channel_name) for r in rows]


def _pull_one(channel_id: int, max_pages: int) -> tuple[str, Any]:
    """Run sync-bookings for one channel; (final state type, result or exception)."""
    # Own thread, own event loop: sync_bookings closes the partner adapters of its loop when
    # it ends, which would cut the connections of the other channels sharing one loop.
    return asyncio.run(_pull(channel_id, max_pages))


async def _pull(channel_id: int, max_pages: int) -> tuple[str, Any]:
    state: State[Any] = await sync_bookings(  # type: ignore[misc]
        channel_id=channel_id, max_pages=max_pages, return_state=True
    )
    return state.type.value, await state.aresult(raise_on_failure=False)


def summarise(
    rows: list[tuple[int, str, str]], outcomes: list[tuple[str, Any] | BaseException]
) -> list[dict[str, Any]]:
    """One line per channel: state and counts (or the error) of its pull."""
    out = []
    for (cid, name, partner), outcome in zip(rows, outcomes, strict=True):
        line: dict[str, Any] = {"channel_id": cid, "channel": name, "partner": partner}
        if isinstance(outcome, BaseException):
            line.update(state="CRASHED", error=str(outcome)[:200])
        else:
            line["state"], data = outcome
            if isinstance(data, dict):
                line.update(
                    new=data.get("new", 0),
                    updated=data.get("updated", 0),
                    errors=len(data.get("errors", [])),
                )
            elif isinstance(data, BaseException):
                line["error"] = str(data)[:200]
        out.append(line)
    return out


@flow(name="sync-all-bookings")
async def sync_all_bookings(channel_names: list[str] | None = None, max_pages: int = 50) -> Any:
    """Pull bookings from every enabled channel at once, each as a sync-bookings subflow."""
    logger = get_run_logger()
    rows = enabled_channels(channel_names)
    if not rows:
        logger.info("no enabled channel")
        return {"channels": []}
    outcomes = await asyncio.gather(
        *[asyncio.to_thread(_pull_one, cid, max_pages) for cid, _, _ in rows],
        return_exceptions=True,
    )
    lines = summarise(rows, list(outcomes))
    await create_table_artifact(  # type: ignore[misc]
        key="sync-all-bookings", table=lines, description="last booking pull per channel"
    )
    result = {"channels": lines}
    if all(line["state"] != "COMPLETED" for line in lines):
        return Failed(message="no channel could be pulled", data=result)
    return result
