"""Flows meant for schedules: the every-minute pull of every enabled channel.

Every channel is isolated from the others. `sync-all-bookings` only starts work: through
deployments (a Prefect server, INNSYNC_RUN_VIA_DEPLOYMENTS=1, as `innsync up` and workers
run it) it creates one `pull-channel` flow run per channel and ends within seconds; each
`pull-channel` run holds its own channel's slot (a Prefect global concurrency limit named
after the channel id, limit 1, leased so a killed run frees it) and a time bound. A hung
partner therefore keeps only its own channel's slot until its run times out; the other
channels' runs, and the next cycles, go on. Without deployments (tests, CLI) the same
`pull-channel` flows run side by side in this process (each with its own adapter pool).
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.states import Cancelled, Failed, State

from db.engine import session_scope
from db.repositories.channels import enabled_channels_of_partners
from flows.channel_sync import sync_bookings
from flows.runner import SYNC_LOG_HOOKS, via_deployments
from innsync.settings import get_settings
from tasks.results import BookingsOutcome, CycleLine, CycleOutcome

#: The deployment each channel's scheduled pull runs through (deployments/specs.py).
PULL_CHANNEL_DEPLOYMENT = "pull-channel/on-demand"
#: Seconds a pull-channel run waits for its channel's slot before giving up as skipped.
SLOT_WAIT_SECONDS = 5.0
#: Lease of a channel slot: renewed while the run lives, expires this long after a kill.
SLOT_LEASE_SECONDS = 60.0
#: Margin of the pull-channel bound over sync-bookings' own (the inner one fires first).
OUTER_TIMEOUT_MARGIN = 60
#: Bound of one channel's dispatch (slot check + flow-run creation, ~0.1 s normally): a slow
#: Prefect API never keeps the cycle past its interval.
DISPATCH_TIMEOUT_SECONDS = 10.0


def channel_slot(channel_id: int) -> str:
    """Name of the Prefect global concurrency limit that serialises one channel's pulls."""
    return f"channel-{channel_id}-pull"


def enabled_channels(channel_names: list[str] | None = None) -> list[tuple[int, str, str]]:
    """(id, name, partner) of every enabled channel, optionally of some partners only."""
    with session_scope() as session:
        return enabled_channels_of_partners(session, channel_names)


async def _ensure_slot(channel_id: int) -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(channel_slot(channel_id), 1)


async def slot_busy(channel_id: int) -> bool:
    """True while a pull of this channel holds its slot."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            limit = await client.read_global_concurrency_limit_by_name(channel_slot(channel_id))
        except ObjectNotFound:
            return False
    return limit.active_slots >= limit.limit


@flow(name="pull-channel", persist_result=True,
      timeout_seconds=get_settings().sync_run_timeout_seconds + OUTER_TIMEOUT_MARGIN,
      **SYNC_LOG_HOOKS)
async def pull_channel(channel_id: int, max_pages: int = 50) -> Any:
    """One channel's scheduled booking pull, holding that channel's slot (never another's).

    Ends Cancelled ("skipped") when the channel's previous pull still holds the slot."""
    from prefect.concurrency.asyncio import concurrency

    await _ensure_slot(channel_id)
    try:
        async with concurrency(channel_slot(channel_id), occupy=1,
                               timeout_seconds=SLOT_WAIT_SECONDS,
                               lease_duration=SLOT_LEASE_SECONDS, strict=True):
            state: State[Any] = await sync_bookings(  # type: ignore[misc]
                channel_id=channel_id, max_pages=max_pages, return_state=True
            )
    except TimeoutError:
        return Cancelled(message=f"skipped: the previous pull of channel {channel_id} "
                                 "still runs")
    if state.is_completed():
        return await state.aresult()
    return state  # Failed / TimedOut / Crashed: this run ends the same way


async def _pull(channel_id: int, max_pages: int) -> tuple[str, Any]:
    state: State[Any] = await pull_channel(  # type: ignore[misc]
        channel_id=channel_id, max_pages=max_pages, return_state=True
    )
    return state.type.value, await state.aresult(raise_on_failure=False)


def summarise(
    rows: list[tuple[int, str, str]], outcomes: list[tuple[str, Any] | BaseException]
) -> list[CycleLine]:
    """One line per channel: state and counts (or the error) of its pull."""
    out = []
    for (cid, name, partner), outcome in zip(rows, outcomes, strict=True):
        line = CycleLine(channel_id=cid, channel=name, partner=partner)
        if isinstance(outcome, BaseException):
            line.state, line.error = "CRASHED", str(outcome)[:200]
        else:
            line.state, data = outcome
            if isinstance(data, BookingsOutcome):
                line.new, line.updated, line.errors = data.new, data.updated, len(data.errors)
            elif isinstance(data, BaseException):
                line.error = str(data)[:200]
        out.append(line)
    return out


async def dispatch(rows: list[tuple[int, str, str]], max_pages: int) -> list[CycleLine]:
    """One pull-channel flow run per channel through its deployment (returns at once);
    a channel whose previous pull still holds its slot is skipped (BUSY)."""
    from prefect.deployments import run_deployment

    lines = []
    for cid, name, partner in rows:
        line = CycleLine(channel_id=cid, channel=name, partner=partner)
        try:
            async with asyncio.timeout(DISPATCH_TIMEOUT_SECONDS):
                if await slot_busy(cid):
                    line.state = "BUSY"
                else:
                    run = await run_deployment(  # type: ignore[misc]
                        PULL_CHANNEL_DEPLOYMENT,
                        parameters={"channel_id": cid, "max_pages": max_pages},
                        timeout=0,
                        tags=[f"channel-{cid}"],
                        as_subflow=False,
                    )
                    line.state, line.flow_run_id = "DISPATCHED", str(run.id)
        except Exception as exc:  # one channel's dispatch failing spares the others
            line.state = "CRASHED"
            line.error = (f"could not start {PULL_CHANNEL_DEPLOYMENT}: "
                          f"{type(exc).__name__} {exc}"[:300])
        lines.append(line)
    return lines


@flow(name="sync-all-bookings", persist_result=True)
async def sync_all_bookings(
    channel_names: list[str] | None = None, max_pages: int = 50, dispatch_runs: bool | None = None
) -> CycleOutcome | State[Any]:
    """Pull bookings from every enabled channel, each channel on its own (see module doc).

    `dispatch_runs` (default: when deployments are in use) starts one pull-channel flow run
    per channel through its deployment and returns; otherwise the pulls run here, at once."""
    logger = get_run_logger()
    rows = enabled_channels(channel_names)
    if not rows:
        logger.info("no enabled channel")
        return CycleOutcome()
    if dispatch_runs is None:
        dispatch_runs = via_deployments()
    if dispatch_runs:
        lines = await dispatch(rows, max_pages)
        ok_states = {"DISPATCHED", "BUSY"}
    else:
        # One loop is fine: each pull is its own run with its own adapter pool.
        outcomes = await asyncio.gather(
            *[_pull(cid, max_pages) for cid, _, _ in rows], return_exceptions=True
        )
        lines = summarise(rows, list(outcomes))
        ok_states = {"COMPLETED", "CANCELLED"}
    await create_table_artifact(  # type: ignore[misc]
        key="sync-all-bookings",
        table=[line.model_dump(mode="json", exclude_none=True) for line in lines],
        description="last booking pull per channel",
    )
    result = CycleOutcome(channels=lines)
    if all(line.state not in ok_states for line in lines):
        return Failed(message="no channel could be pulled", data=result)
    return result
