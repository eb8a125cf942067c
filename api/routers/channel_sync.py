"""The seed's channel API: trigger syncs (each a Prefect flow run) and read their results.

Paths and camelCase shapes follow the seed: `POST /api/channels/{id}/sync-bookings`,
`/sync-availability`, `/sync-rates`, `GET /api/channel-sync-logs` (the channel-booking reads
are in api/routers/channel_bookings.py).
Every trigger answers with the Prefect `flowRunId`. A `config` in a body overrides the
channel's non-secret fields (endpoint, hotelId, propertyId) for that run: the adapter is built
from the stored config with those fields replaced. Any other key (apiKey, apiSecret,
webhookSecret, unknown) answers 422 naming it; values are never echoed, stored or logged.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from api.deps import OperatorDep, SessionDep, ViewerDep
from api.errors import Conflict, NotFound, Unprocessable
from api.middleware import public_error
from api.schemas import COUNT_CAP, APIInput, APIModel, Page, PageDep
from api.validators import Day, Id, Int4
from channels.base import BookingStatus, ChannelName
from db.models import Channel, ChannelBooking, ChannelSyncLog
from flows.runner import FlowOutcome, start_flow
from tasks.resources import OVERRIDABLE

router = APIRouter(tags=["channel sync"])

MAX_RANGE_DAYS = 731


# ---------------------------------------------------------------- bodies


class RunConfigOverride(APIModel):
    """Per-run overrides of a channel's non-secret config fields. Any other key (a secret such
    as apiKey, apiSecret, webhookSecret, or an unknown one) is refused with a 422 naming it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    endpoint: str | None = Field(default=None, description="partner base URL for this run")
    hotel_id: str | None = None
    property_id: str | None = None


class _SyncBody(APIInput):
    channel_name: ChannelName | None = None
    config: RunConfigOverride | None = None

    def overrides(self) -> dict[str, str]:
        """The run's config overrides (endpoint, hotelId, propertyId), or Unprocessable naming
        the refused keys (their values are never echoed, stored or logged)."""
        if self.config is None:
            return {}
        refused = sorted(self.config.model_extra or {})
        if refused:
            raise Unprocessable(
                f"config may override only {', '.join(OVERRIDABLE)} for one run; refused: "
                f"{', '.join(refused)} (secrets always come from the stored channel config; "
                "change them with PATCH /api/channels/{id})",
                code="config_override_refused",
            )
        c = self.config
        if c.endpoint is not None and not c.endpoint.startswith(("http://", "https://")):
            raise Unprocessable(
                "config.endpoint must be an http:// or https:// URL", code="config_override_refused"
            )
        given = {"endpoint": c.endpoint, "hotelId": c.hotel_id, "propertyId": c.property_id}
        return {k: v for k, v in given.items() if v}


class _RangeBody(_SyncBody):
    day: Day | None = Field(default=None, alias="date", description="one day (the seed's field)")
    start_date: Day | None = None
    end_date: Day | None = None

    @model_validator(mode="after")
    def _range(self) -> _RangeBody:
        start = self.start_date or self.day
        end = self.end_date or self.day or start
        if (start is None) != (end is None):
            raise ValueError("give date, or startDate and endDate")
        if start and end:
            if end < start:
                raise ValueError("endDate is before startDate")
            if (end - start).days >= MAX_RANGE_DAYS:
                raise ValueError(f"a range spans at most {MAX_RANGE_DAYS} days")
        return self

    def window(self) -> tuple[date | None, date | None]:
        start = self.start_date or self.day
        return start, self.end_date or self.day or start


class SyncBookingsBody(_SyncBody):
    start_date: Day | None = None
    end_date: Day | None = None

    @model_validator(mode="after")
    def _order(self) -> SyncBookingsBody:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("endDate is before startDate")
        return self


class SyncAvailabilityBody(_RangeBody):
    room_type: str | int | None = Field(default=None, description="PMS room type code or id")
    room_types: list[str | int] | None = None
    available: Int4 | None = Field(default=None, ge=0, description="explicit value to push")


class SyncRatesBody(_RangeBody):
    room_type: str | int | None = None
    room_types: list[str | int] | None = None
    rate_plan: str | int | None = Field(default=None, description="PMS rate plan code or id")
    rate_plans: list[str | int] | None = None
    rate: Decimal | None = Field(default=None, gt=0, max_digits=12, decimal_places=2)


class FullSyncBody(APIInput):
    property_id: Id | None = None
    horizon_days: Int4 = Field(default=365, ge=1, le=730)


class StatusBody(APIInput):
    status: BookingStatus


WaitDep = Annotated[
    bool,
    Query(
        description="with a Prefect server: wait for the run and answer its result "
        "(otherwise the answer comes at once with the flow-run id)"
    ),
]


class SyncResult(APIModel):
    """What a sync trigger answers: the seed's fields plus the Prefect flow-run id.

    `finished` is false when the run was only started (through a deployment, without
    `wait=true`): follow it with the flow-run id in the Prefect UI or the sync logs.
    """

    success: bool
    finished: bool = True
    flow_run_id: str | None = None
    records_processed: int = 0
    records_success: int = 0
    records_failed: int = 0
    errors: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


# ---------------------------------------------------------------- helpers


def _channel(session: Session, channel_id: int, body: _SyncBody | None = None) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"channel {channel_id} not found")
    if body is not None and body.channel_name and body.channel_name != channel.channel_name:
        raise Unprocessable(
            f"channel {channel_id} is {channel.channel_name}, not {body.channel_name}",
            code="channel_mismatch",
        )
    if body is not None:
        body.overrides()  # refuse bad overrides before anything starts
    if not channel.enabled:
        raise Conflict(f"channel {channel.name} is disabled", code="channel_disabled")
    return channel


def _release(session: Session) -> None:
    # The flow works in its own transactions: don't hold this request's locks meanwhile.
    session.commit()


def _result(outcome: FlowOutcome) -> SyncResult:
    data = outcome.result if isinstance(outcome.result, dict) else {}
    errors = [public_error(str(e)) for e in data.get("errors") or []]
    if outcome.error is not None and not errors:
        errors = [public_error(str(outcome.error))]
    known = {"success", "errors", "recordsProcessed", "recordsSuccess", "recordsFailed"}
    return SyncResult(
        success=bool(data.get("success", outcome.ok)) and outcome.ok,
        finished=outcome.finished,
        flow_run_id=str(outcome.flow_run_id) if outcome.flow_run_id else None,
        records_processed=int(data.get("recordsProcessed", data.get("processed", 0)) or 0),
        records_success=int(data.get("recordsSuccess", data.get("success_count", 0)) or 0),
        records_failed=int(data.get("recordsFailed", data.get("failed", 0)) or 0),
        errors=errors,
        details={k: v for k, v in data.items() if k not in known},
    )


def _resolve(
    session: Session,
    channel: Channel,
    table: str,
    wanted: list[str | int],
    extra_where: str = "",
    params: dict[str, Any] | None = None,
) -> list[int]:
    """PMS ids for codes or ids of room types / rate plans of the channel's property."""
    rows = session.execute(
        text(f"SELECT id, code FROM {table} WHERE property_id = :p {extra_where}"),
        {"p": channel.property_id, **(params or {})},
    ).all()
    by_code = {r.code: r.id for r in rows}
    ids = {r.id for r in rows}
    out: list[int] = []
    for item in wanted:
        found = item if isinstance(item, int) and item in ids else by_code.get(str(item))
        if found is None:
            raise Unprocessable(
                f"unknown {table[:-1].replace('_', ' ')} {item!r} for this channel's property",
                code="unknown_reference",
            )
        out.append(found)
    return out


def _room_codes(session: Session, channel_id: int, room_type_ids: list[int]) -> dict[int, str]:
    rows = session.execute(
        text(
            "SELECT room_type_id, partner_room_code FROM channel_room_mappings "
            "WHERE channel_id = :c AND room_type_id = ANY(CAST(:ids AS bigint[]))"
        ),
        {"c": channel_id, "ids": room_type_ids},
    ).all()
    return {r.room_type_id: r.partner_room_code for r in rows}


# ---------------------------------------------------------------- triggers


@router.post("/channels/{channel_id}/sync-bookings", response_model=SyncResult)
def sync_bookings(
    channel_id: Id,
    body: SyncBookingsBody,
    session: SessionDep,
    _: OperatorDep,
    wait: WaitDep = False,
) -> SyncResult:
    """Pull bookings from the partner now (a `sync-bookings` flow run)."""
    from flows.channel_sync import sync_bookings as flow

    _channel(session, channel_id, body)
    _release(session)
    return _result(
        start_flow(
            flow,
            wait=wait,
            channel_id=channel_id,
            start_date=body.start_date,
            end_date=body.end_date,
            config_overrides=body.overrides(),
        )
    )


@router.post("/channels/{channel_id}/sync-availability", response_model=SyncResult)
def sync_availability(
    channel_id: Id,
    body: SyncAvailabilityBody,
    session: SessionDep,
    _: OperatorDep,
    wait: WaitDep = False,
) -> SyncResult:
    """Push availability: the PMS values as a delta, or an explicit `available` as given."""
    from flows.channel_sync import push_ari_values, push_availability

    channel = _channel(session, channel_id, body)
    wanted = ([body.room_type] if body.room_type is not None else []) + (body.room_types or [])
    room_type_ids = _resolve(session, channel, "room_types", wanted) if wanted else None
    start, end = body.window()
    if body.available is not None:
        if not room_type_ids or start is None or end is None:
            raise Unprocessable(
                "an explicit `available` needs roomType and date(s)", code="incomplete_request"
            )
        codes = _room_codes(session, channel_id, room_type_ids)
        missing = [rt for rt in room_type_ids if rt not in codes]
        if missing:
            raise Unprocessable(
                f"room types {missing} are not mapped on this channel", code="unmapped_room_type"
            )
        updates = [
            {
                "partner_room_type_code": codes[rt],
                "start": start.isoformat(),
                "end": end.isoformat(),
                "available": body.available,
                "stop_sell": body.available == 0,
            }
            for rt in room_type_ids
        ]
        _release(session)
        return _result(
            start_flow(
                push_ari_values,
                wait=wait,
                channel_id=channel_id,
                updates=updates,
                config_overrides=body.overrides(),
            )
        )
    _release(session)
    return _result(
        start_flow(
            push_availability,
            wait=wait,
            channel_id=channel_id,
            room_type_ids=room_type_ids,
            start_date=start,
            end_date=end,
            config_overrides=body.overrides(),
        )
    )


@router.post("/channels/{channel_id}/sync-rates", response_model=SyncResult)
def sync_rates(
    channel_id: Id, body: SyncRatesBody, session: SessionDep, _: OperatorDep, wait: WaitDep = False
) -> SyncResult:
    """Push rates and restrictions: the PMS values as a delta, or an explicit `rate`."""
    from flows.channel_sync import push_ari_values, push_rates

    channel = _channel(session, channel_id, body)
    rooms = ([body.room_type] if body.room_type is not None else []) + (body.room_types or [])
    plans = ([body.rate_plan] if body.rate_plan is not None else []) + (body.rate_plans or [])
    room_type_ids = _resolve(session, channel, "room_types", rooms) if rooms else None
    where = " AND room_type_id = ANY(CAST(:rts AS bigint[]))" if room_type_ids else ""
    params = {"rts": room_type_ids} if room_type_ids else {}
    if plans:
        rate_plan_ids: list[int] | None = _resolve(
            session, channel, "rate_plans", plans, where, params
        )
    elif room_type_ids:
        rate_plan_ids = list(
            session.execute(
                text(f"SELECT id FROM rate_plans WHERE property_id = :p {where}"),
                {"p": channel.property_id, **params},
            ).scalars()
        )
    else:
        rate_plan_ids = None
    start, end = body.window()
    if body.rate is not None:
        if not rate_plan_ids or start is None or end is None:
            raise Unprocessable(
                "an explicit `rate` needs roomType or ratePlan and date(s)",
                code="incomplete_request",
            )
        rows = session.execute(
            text(
                "SELECT m.partner_room_code, m.partner_rate_code, p.currency "
                "FROM channel_rate_mappings m JOIN rate_plans p ON p.id = m.rate_plan_id "
                "WHERE m.channel_id = :c AND m.rate_plan_id = ANY(CAST(:ids AS bigint[]))"
            ),
            {"c": channel_id, "ids": rate_plan_ids},
        ).all()
        if not rows:
            raise Unprocessable(
                "none of these rate plans is mapped on this channel", code="unmapped_rate_plan"
            )
        updates = [
            {
                "partner_room_type_code": r.partner_room_code,
                "partner_rate_plan_code": r.partner_rate_code,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "rate": str(body.rate),
                "currency": r.currency,
            }
            for r in rows
        ]
        _release(session)
        return _result(
            start_flow(
                push_ari_values,
                wait=wait,
                channel_id=channel_id,
                updates=updates,
                config_overrides=body.overrides(),
            )
        )
    _release(session)
    return _result(
        start_flow(
            push_rates,
            wait=wait,
            channel_id=channel_id,
            rate_plan_ids=rate_plan_ids,
            start_date=start,
            end_date=end,
            config_overrides=body.overrides(),
        )
    )


@router.post("/ari/full-sync", response_model=SyncResult)
def full_sync(
    body: FullSyncBody, session: SessionDep, _: OperatorDep, wait: WaitDep = False
) -> SyncResult:
    """Availability, rates and restrictions of every enabled channel (delta over the horizon)."""
    from flows.channel_sync import full_ari_sync

    _release(session)
    return _result(
        start_flow(
            full_ari_sync, wait=wait, property_id=body.property_id, horizon_days=body.horizon_days
        )
    )


@router.post("/channel-bookings/{booking_id}/status", response_model=SyncResult)
def push_status(
    booking_id: Id, body: StatusBody, session: SessionDep, _: OperatorDep, wait: WaitDep = False
) -> SyncResult:
    """Push a PMS status change of one channel booking to its partner."""
    from flows.channel_sync import update_booking_status

    if session.get(ChannelBooking, booking_id) is None:
        raise NotFound(f"channel booking {booking_id} not found")
    _release(session)
    return _result(
        start_flow(
            update_booking_status,
            wait=wait,
            channel_booking_id=booking_id,
            status=body.status.value,
        )
    )


# ---------------------------------------------------------------- reads


def _filtered(
    stmt: Any, equals: list[tuple[Any, Any]], column: Any, start: date | None, end: date | None
) -> Any:
    """Add `column == value` for every given value, and a [start, end] day range."""
    for col, value in equals:
        if value is not None:
            stmt = stmt.where(col == value)
    return _between(stmt, column, start, end)


def _between(stmt: Any, column: Any, start: date | None, end: date | None) -> Any:
    if start is not None:
        stmt = stmt.where(column >= start)
    if end is not None:
        stmt = stmt.where(column < end + timedelta(days=1))
    return stmt


def _page(session: Session, stmt: Any, page: Any, out: type[APIModel]) -> Page[Any]:
    """One page plus a count that stops at COUNT_CAP (sync logs grow by ~3,000 rows a day)."""
    counted = stmt.order_by(None).limit(COUNT_CAP + 1).subquery()
    total = session.scalar(select(func.count()).select_from(counted)) or 0
    rows = session.scalars(stmt.limit(page.limit).offset(page.offset)).all()
    return Page(
        items=[out.model_validate(r) for r in rows],
        total=min(total, COUNT_CAP),
        total_capped=total > COUNT_CAP,
        limit=page.limit,
        offset=page.offset,
    )


class SyncLogOut(APIModel):
    id: int
    channel_id: int | None
    operation: str
    status: str
    records_processed: int
    records_success: int
    records_failed: int
    error_messages: list[Any]
    details: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    flow_run_id: Any | None


@router.get("/channel-sync-logs", response_model=Page[SyncLogOut])
def list_sync_logs(
    session: SessionDep,
    _: ViewerDep,
    page: PageDep,
    channel_id: Id | None = Query(None, alias="channelId"),
    operation: str | None = None,
    status: str | None = None,
    started_from: Day | None = Query(None, alias="from"),
    started_to: Day | None = Query(None, alias="to"),
) -> Page[SyncLogOut]:
    """One row per sync run and channel: counts, errors, the Prefect flow-run id."""
    stmt = _filtered(
        select(ChannelSyncLog).order_by(ChannelSyncLog.started_at.desc(), ChannelSyncLog.id.desc()),
        [
            (ChannelSyncLog.channel_id, channel_id),
            (ChannelSyncLog.operation, operation),
            (ChannelSyncLog.status, status),
        ],
        ChannelSyncLog.started_at,
        started_from,
        started_to,
    )
    return _page(session, stmt, page, SyncLogOut)


class OverbookingOut(APIModel):
    reservation_id: int
    channel_booking_id: int | None
    channel_id: int | None
    channel: str | None
    external_booking_id: str | None
    room_type_id: int | None
    check_in: date
    check_out: date
    guest: str
    status: str


@router.get("/overbookings", response_model=Page[OverbookingOut])
def list_overbookings(session: SessionDep, _: ViewerDep, page: PageDep) -> Page[OverbookingOut]:
    """Open reservations accepted on sold-out nights: relocate or contact these guests."""
    base = """
        FROM reservations r
        JOIN guests g ON g.id = r.guest_id
        LEFT JOIN channels c ON c.id = r.channel_id
        LEFT JOIN channel_bookings cb
          ON cb.channel_id = r.channel_id AND cb.external_booking_id = r.external_ref
        WHERE r.overbooked AND r.status <> 'cancelled'
    """
    total = session.execute(text(f"SELECT count(*) {base}")).scalar() or 0
    rows = (
        session.execute(
            text(f"""
        SELECT r.id AS reservation_id, cb.id AS channel_booking_id, r.channel_id,
               c.name AS channel, r.external_ref AS external_booking_id, r.room_type_id,
               r.check_in, r.check_out, g.first_name || ' ' || g.last_name AS guest, r.status
        {base} ORDER BY r.check_in, r.id LIMIT :l OFFSET :o
    """),
            {"l": page.limit, "o": page.offset},
        )
        .mappings()
        .all()
    )
    return Page(
        items=[OverbookingOut.model_validate(dict(r)) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
