"""Flows meant for schedules: the every-minute pull of every enabled channel.

The cycle (`sync-all-bookings`) splits the enabled channels into batches: the channels of one
partner, `INNSYNC_PULL_BATCH_SIZE` at a time (default 250). Through deployments (a Prefect
server, INNSYNC_RUN_VIA_DEPLOYMENTS=1, as `innsync up` and workers run it) it creates one
`pull-batch` flow run per batch and ends within seconds; the work pool's workers (or serve
processes, on as many machines as share the database and the Prefect server) take the
batches, so more workers share a cycle. Without deployments (tests, CLI) the batches run
here, side by side.

A batch run pulls its channels as plain async code, `INNSYNC_PULL_BATCH_PARALLEL` at once:
no process, subflow, task run or artifact per channel (one table artifact per batch). Each
channel is still on its own: its own sync log, its own time bound (a hung partner ends its
channel's pull as failed, never the batch's other channels) and its own **pull lease** in the
database (db/repositories/pull_leases.py), taken for the whole batch in one statement and
renewed while the batch runs. A channel whose previous pull still holds its lease is
skipped (BUSY) and is not queued behind it; a killed batch's leases expire by themselves.
A dispatched batch takes its channels' leases when the cycle dispatches it, so a batch still
waiting for a worker keeps the next cycles from queueing its channels again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.runtime import flow_run
from prefect.states import Failed, State

from channels.registry import ACCOUNT_WIDE_PULL
from db.engine import session_scope
from db.repositories.accounts import accounts_of_channels
from db.repositories.channels import enabled_channels_of_partners
from db.repositories.pull_leases import release_leases, renew_leases, take_leases
from db.repositories.sync_logs import close_unfinished_of_flow_run
from flows.channel_sync import pull_account_bookings, pull_bookings
from flows.runner import SYNC_LOG_HOOKS, via_deployments, via_task_worker
from innsync.settings import get_settings
from tasks.leases import renewed
from tasks.limits import allow_partner_burst, current_limits, take_partner_slot
from tasks.resources import ChannelInfo, channel_infos_if_all
from tasks.results import CycleLine, CycleOutcome

#: The deployment each batch of the scheduled pull runs through (deployments/specs.py).
PULL_BATCH_DEPLOYMENT = "pull-batch/on-demand"
#: A batch's leases last this long unless renewed; renewed every LEASE_RENEW_SECONDS.
LEASE_SECONDS = 90.0
LEASE_RENEW_SECONDS = 30.0
#: A dispatched batch holds its channels' leases from its dispatch until it starts (its run
#: then takes them over): a cycle never queues a channel behind its own earlier batch that
#: has not started (a pull worker slower than the cycle would otherwise collect ten more
#: queued batches a minute, without end: 126 after 14 minutes at 1,000 hotels). A batch
#: still waiting after this long (its worker gone) is dispatched again by the next cycle.
QUEUED_LEASE_SECONDS = 300.0
#: Bound of one batch's dispatch (flow-run creation, ~0.1 s normally): a slow Prefect API
#: never keeps the cycle past its interval.
DISPATCH_TIMEOUT_SECONDS = 10.0

Row = tuple[int, str, str]  # channel id, name, partner


def enabled_channels(channel_names: list[str] | None = None) -> list[Row]:
    """(id, name, partner) of every enabled channel, optionally of some partners only."""
    with session_scope() as session:
        return enabled_channels_of_partners(session, channel_names)


def batches(rows: Sequence[Row], size: int,
            accounts: Mapping[int, int] | None = None) -> list[list[Row]]:
    """The cycle's batches: each partner's channels together, in id order, cut every `size`
    channels; the channels of one account of an account-wide partner (`accounts`: channel
    id -> account id) make one batch whatever its size, as the partner keeps one queue for
    them (one fetch per page serves them all)."""
    accounts = accounts or {}
    keyed: dict[tuple[str, int | None], list[Row]] = {}
    for row in sorted(rows):
        account = accounts.get(row[0]) if row[2] in ACCOUNT_WIDE_PULL else None
        keyed.setdefault((row[2], account), []).append(row)
    out: list[list[Row]] = []
    for (_, account), chunk in sorted(keyed.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        if account is not None:
            out.append(chunk)
        else:
            out += [chunk[i:i + size] for i in range(0, len(chunk), size)]
    return out


def account_groups(channel_ids: Sequence[int]) -> dict[int, list[int]]:
    """account id -> its channels among these, for account-wide partners' channels."""
    with session_scope() as session:
        accounts = accounts_of_channels(session, channel_ids, ACCOUNT_WIDE_PULL)
    out: dict[int, list[int]] = {}
    for cid in channel_ids:
        if cid in accounts:
            out.setdefault(accounts[cid], []).append(cid)
    return out


async def _first_slots(names: dict[int, tuple[str, str]], held: set[int]) -> bool:
    """Take the partner rate-limit slots of every held channel's first fetch in blocks (a
    burst each, as upserted for the partner's channels), not one Prefect call per channel.
    False when that failed (the limits unreadable, or one holding no slot at all): each
    fetch then takes its own."""
    wanted = Counter(names[cid][1] for cid in held)
    try:
        bursts = {item.channel.value: item.limit
                  for item in await asyncio.to_thread(current_limits)}
        for partner, burst in bursts.items():  # the pages' slots too, in blocks as large
            allow_partner_burst(partner, burst)
        await asyncio.gather(*[take_partner_slot(partner, count)
                               for partner, count in wanted.items()])
    except Exception as exc:
        get_run_logger().warning("partner slots not taken in blocks (%s): one per fetch", exc)
        return False
    return True


def _lease_holder() -> str:
    run_id = flow_run.get_id()
    return f"pull-batch {run_id or uuid.uuid4()}"


def _take(holder: str, ids: list[int], seconds: float = LEASE_SECONDS) -> list[int]:
    with session_scope() as session:
        return take_leases(session, ids, holder, seconds)


def _renew(holder: str, ids: list[int]) -> None:
    with session_scope() as session:
        renew_leases(session, holder, ids, LEASE_SECONDS)


def _release(holder: str, ids: list[int]) -> None:
    with session_scope() as session:
        release_leases(session, holder, ids)


def _close_log(channel_id: int, reason: str) -> None:
    run_id = flow_run.get_id()
    if run_id is None:
        return
    with session_scope() as session:
        close_unfinished_of_flow_run(session, uuid.UUID(str(run_id)), "failed", reason,
                                     channel_id=channel_id)


async def _pull_one(line: CycleLine, max_pages: int, holder: str, bound: float,
                    slot_taken: bool, info: ChannelInfo | None) -> None:
    try:
        async with asyncio.timeout(bound):
            out, status = await pull_bookings(line.channel_id, max_pages=max_pages,
                                              in_batch=True, first_slot_taken=slot_taken,
                                              info=info)
        line.state = "FAILED" if status == "failed" else "COMPLETED"
        line.new, line.updated, line.errors = out.new, out.updated, len(out.errors)
        if out.errors:
            line.error = out.errors[0][:200]
    except TimeoutError:
        line.state, line.error = "TIMEDOUT", f"TimedOut: not done within {bound:.0f}s"
        with contextlib.suppress(Exception):  # else the reaper closes it later
            await asyncio.to_thread(_close_log, line.channel_id, line.error)
    except Exception as exc:  # one channel's failure spares the batch's others
        line.state, line.error = "FAILED", f"{type(exc).__name__}: {exc}"[:200]
    finally:
        with contextlib.suppress(Exception):  # else it expires after LEASE_SECONDS
            await asyncio.to_thread(_release, holder, [line.channel_id])


async def _pull_account(account_id: int, lines: list[CycleLine], max_pages: int, holder: str,
                        bound: float, slot_taken: bool) -> None:
    """Pull an account-wide partner's channels of one account together (one fetch per page
    for all: flows/channel_sync.pull_account_bookings), one line per channel."""
    ids = [line.channel_id for line in lines]
    try:
        async with asyncio.timeout(bound):
            results = await pull_account_bookings(account_id, ids, max_pages=max_pages,
                                                  first_slot_taken=slot_taken)
        for line in lines:
            out, status = results[line.channel_id]
            line.state = "FAILED" if status == "failed" else "COMPLETED"
            line.new, line.updated, line.errors = out.new, out.updated, len(out.errors)
            if out.errors:
                line.error = out.errors[0][:200]
    except TimeoutError:
        for line in lines:
            line.state, line.error = "TIMEDOUT", f"TimedOut: not done within {bound:.0f}s"
            with contextlib.suppress(Exception):  # else the reaper closes it later
                await asyncio.to_thread(_close_log, line.channel_id, line.error)
    except Exception as exc:  # one account's failure spares the batch's others
        for line in lines:
            line.state, line.error = "FAILED", f"{type(exc).__name__}: {exc}"[:200]
    finally:
        with contextlib.suppress(Exception):  # else they expire after LEASE_SECONDS
            await asyncio.to_thread(_release, holder, ids)


@flow(name="pull-batch", persist_result=True,
      timeout_seconds=get_settings().batch_run_timeout_seconds,
      **SYNC_LOG_HOOKS)
async def pull_batch(channel_ids: list[int], max_pages: int = 50,
                     holder: str | None = None) -> CycleOutcome | State[Any]:
    """Pull the bookings of a batch of channels (see module doc): one line per channel,
    BUSY for a channel whose previous pull still holds its lease. `holder`: the leases the
    dispatch took for this batch (taken over here)."""
    logger = get_run_logger()
    settings = get_settings()
    names = {cid: (name, partner) for cid, name, partner in enabled_channels()}
    holder = holder or _lease_holder()
    held = set(await asyncio.to_thread(_take, holder, [c for c in channel_ids if c in names]))
    lines = []
    for cid in channel_ids:
        name, partner = names.get(cid, ("", ""))
        line = CycleLine(channel_id=cid, channel=name, partner=partner)
        if cid not in names:
            line.state, line.error = "SKIPPED", "not an enabled channel"
        elif cid not in held:
            line.state = "BUSY"
        lines.append(line)
    gate = asyncio.Semaphore(settings.pull_batch_parallel)

    async def pull(line: CycleLine) -> None:
        async with gate:
            await _pull_one(line, max_pages, holder, settings.sync_run_timeout_seconds,
                            slots_taken, infos.get(line.channel_id))

    groups = await asyncio.to_thread(account_groups, sorted(held))
    in_account = {cid for ids in groups.values() for cid in ids}
    infos = await asyncio.to_thread(channel_infos_if_all, sorted(held - in_account))
    # One first fetch per channel, but one per account for an account's channels.
    slots_taken = await _first_slots(
        names, (held - in_account) | {ids[0] for ids in groups.values()})
    by_id = {line.channel_id: line for line in lines}

    async def pull_account(account_id: int, ids: list[int]) -> None:
        async with gate:
            await _pull_account(account_id, [by_id[cid] for cid in ids], max_pages, holder,
                                settings.sync_run_timeout_seconds, slots_taken)

    try:
        async with renewed(lambda: _renew(holder, sorted(held)), LEASE_RENEW_SECONDS,
                           f"the pull leases of {len(held)} channels"):
            await asyncio.gather(
                *[pull(line) for line in lines
                  if line.channel_id in held and line.channel_id not in in_account],
                *[pull_account(account, ids) for account, ids in groups.items()])
    finally:
        # Not awaited: a batch cancelled at its time bound still drops its leases here
        # (an await would be cancelled too, leaving them to expire after LEASE_SECONDS).
        with contextlib.suppress(Exception):
            _release(holder, sorted(held))
    done = sum(line.state == "COMPLETED" for line in lines)
    logger.info("pull-batch: %d channels, %d pulled, %d busy, %d failed", len(lines), done,
                sum(line.state == "BUSY" for line in lines),
                sum(line.state in ("FAILED", "TIMEDOUT") for line in lines))
    await acreate_table_artifact(  # type: ignore[misc]
        key=f"pull-batch-{(lines[0].partner if lines else 'none').replace('.', '-')}",
        table=[line.model_dump(mode="json", exclude_none=True) for line in lines],
        description="last scheduled booking pull of these channels",
    )
    result = CycleOutcome(channels=lines)
    if held and not done:
        return Failed(message="no channel of the batch could be pulled", data=result)
    return result


async def dispatch(groups: list[list[Row]], max_pages: int,
                   to_task_workers: bool = False) -> list[CycleLine]:
    """Start one pull-batch flow run per batch and return at once: through its deployment
    (a work pool worker or serve process takes it), or, with `to_task_workers`, as a
    background task a pull worker runs at once in its warm process (flows/background.py).
    A batch is dispatched with its channels' leases taken (QUEUED_LEASE_SECONDS) and only
    with the channels it got: one whose earlier pull, queued or running, still holds it is
    BUSY, and a batch with none left is not dispatched."""
    lines = []
    for group in groups:
        batch = [CycleLine(channel_id=cid, channel=name, partner=partner)
                 for cid, name, partner in group]
        holder = f"pull-batch {uuid.uuid4()}"
        target = "the pull workers" if to_task_workers else PULL_BATCH_DEPLOYMENT
        ids: list[int] = []
        try:
            async with asyncio.timeout(DISPATCH_TIMEOUT_SECONDS):
                ids = await asyncio.to_thread(_take, holder, [line.channel_id for line in batch],
                                              QUEUED_LEASE_SECONDS)
                held = set(ids)
                for line in batch:
                    if line.channel_id not in held:
                        line.state = "BUSY"
                        line.error = "its previous pull, queued or running, holds its lease"
                mine = [line for line in batch if line.channel_id in held]
                if mine and to_task_workers:
                    task_run_id = await asyncio.to_thread(_delay_batch, ids, max_pages, holder)
                    for line in mine:
                        line.state, line.task_run_id = "DISPATCHED", task_run_id
                elif mine:
                    run_id = await _run_batch_deployment(ids, max_pages, group[0][2], holder)
                    for line in mine:
                        line.state, line.flow_run_id = "DISPATCHED", run_id
        except Exception as exc:  # one batch's dispatch failing spares the others
            for line in batch:
                if line.state != "BUSY":
                    line.state = "CRASHED"
                    line.error = f"could not start on {target}: {type(exc).__name__} {exc}"[:300]
            with contextlib.suppress(Exception):  # else they expire after QUEUED_LEASE_SECONDS
                await asyncio.to_thread(_release, holder, ids)
        lines += batch
    return lines


async def _run_batch_deployment(ids: list[int], max_pages: int, partner: str,
                                holder: str) -> str:
    from prefect.deployments import run_deployment

    run = await run_deployment(  # type: ignore[misc]
        PULL_BATCH_DEPLOYMENT,
        parameters={"channel_ids": ids, "max_pages": max_pages, "holder": holder},
        timeout=0,
        tags=[f"partner-{partner.replace('.', '-')}"],
        as_subflow=False,
    )
    return str(run.id)


def _delay_batch(ids: list[int], max_pages: int, holder: str) -> str:
    from flows.background import pull_channel_batch

    future = pull_channel_batch.delay(ids, max_pages, holder)
    return str(future.task_run_id)


async def _run_batch(group: list[Row], max_pages: int) -> list[CycleLine]:
    state: State[Any] = await pull_batch(  # type: ignore[misc]
        channel_ids=[cid for cid, _, _ in group], max_pages=max_pages, return_state=True
    )
    result = await state.aresult(raise_on_failure=False)
    if isinstance(result, CycleOutcome):
        lines = result.channels
    else:
        lines = [CycleLine(channel_id=cid, channel=name, partner=partner, state="CRASHED",
                           error=str(result)[:200]) for cid, name, partner in group]
    run_id = str(state.state_details.flow_run_id) if state.state_details.flow_run_id else None
    for line in lines:
        line.flow_run_id = run_id
    return lines


def _per_batch(lines: list[CycleLine]) -> list[dict[str, Any]]:
    """The cycle's table: a line per batch run and state, not per channel (thousands)."""
    table: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    for line in lines:
        key = (line.partner, line.flow_run_id or line.task_run_id, line.state)
        row = table.setdefault(key, {"partner": line.partner, "flow_run_id": line.flow_run_id,
                                     "task_run_id": line.task_run_id, "state": line.state,
                                     "channels": 0, "new": 0, "error": line.error})
        row["channels"] += 1
        row["new"] += line.new or 0
    return [{k: v for k, v in row.items() if v is not None} for row in table.values()]


@flow(name="sync-all-bookings", persist_result=True)
async def sync_all_bookings(
    channel_names: list[str] | None = None, max_pages: int = 50, dispatch_runs: bool | None = None
) -> CycleOutcome | State[Any]:
    """Pull bookings from every enabled channel, in batches (see module doc).

    `dispatch_runs` (default: when deployments are in use) starts one pull-batch flow run
    per batch through its deployment and returns; otherwise the batches run here, at once."""
    logger = get_run_logger()
    rows = enabled_channels(channel_names)
    if not rows:
        logger.info("no enabled channel")
        return CycleOutcome()
    if dispatch_runs is None:
        dispatch_runs = via_deployments()
    with session_scope() as session:
        accounts = accounts_of_channels(session, [row[0] for row in rows], ACCOUNT_WIDE_PULL)
    groups = batches(rows, get_settings().pull_batch_size, accounts)
    if dispatch_runs:
        lines = await dispatch(groups, max_pages, to_task_workers=via_task_worker())
        ok_states = {"DISPATCHED"}
    else:
        per_batch = await asyncio.gather(*[_run_batch(group, max_pages) for group in groups])
        lines = [line for group in per_batch for line in group]
        ok_states = {"COMPLETED", "BUSY"}
    await acreate_table_artifact(  # type: ignore[misc]
        key="sync-all-bookings",
        table=_per_batch(lines),
        description="last booking cycle: one line per batch (its run has one per channel)",
    )
    result = CycleOutcome(channels=lines)
    if all(line.state not in ok_states for line in lines):
        return Failed(message="no channel could be pulled", data=result)
    return result
