"""The seed's channel API: trigger syncs (each a Prefect flow run) and read their results.

Paths and camelCase shapes follow the seed: `POST /api/channels/{id}/sync-bookings`,
`/sync-availability`, `/sync-rates`, `GET /api/channel-sync-logs` (the channel-booking reads
are in api/routers/channel_bookings.py).
Every trigger waits for its run at most `api_wait_seconds` (60 s) and answers its result
(api/runs.py: counts from the run's sync logs); past that, or with `?async=true`, 202 with
the `flowRunId` and `Location: /api/flow-runs/{id}`. A `config` in a body overrides the
channel's non-secret fields (endpoint, hotelId, propertyId) for that run: the adapter is built
from the stored config with those fields replaced. Any other key (apiKey, apiSecret,
webhookSecret, unknown) answers 422 naming it; values are never echoed, stored or logged.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import OperatorDep, SessionDep, SettingsDep
from api.errors import Conflict, NotFound, Unprocessable
from api.runs import RUN_RESPONSES, SyncResult, answer, launch
from api.schemas import APIInput, APIModel
from api.validators import Day, Id, Int4
from channels.base import BookingStatus, ChannelName
from db.models import Channel, ChannelBooking, RatePlan, RoomType
from db.repositories.sync_targets import codes_and_ids, rate_plan_ids_of, rate_targets, room_codes
from innsync.settings import Settings
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


AsyncDep = Annotated[
    bool,
    Query(
        alias="async",
        description="answer 202 at once with the flow-run id (poll GET /api/flow-runs/{id}) "
        "instead of waiting for the run",
    ),
]


# ---------------------------------------------------------------- helpers


def _channel(
    session: Session, principal: Principal, channel_id: int, body: _SyncBody | None = None
) -> Channel:
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"channel {channel_id} not found")
    principal.require_property(channel.property_id, f"channel {channel_id}")
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


def _run(
    session: Session, settings: Settings, run_async: bool, flow: Any, **parameters: Any
) -> SyncResult | JSONResponse:
    # The flow works in its own transactions: don't hold this request's locks meanwhile.
    session.commit()
    wait = 0.0 if run_async else settings.api_wait_seconds
    return answer(launch(flow, wait, **parameters), force_async=run_async)


def _resolve(
    session: Session,
    channel: Channel,
    kind: type[RoomType] | type[RatePlan],
    wanted: list[str | int],
    room_type_ids: list[int] | None = None,
) -> list[int]:
    """PMS ids for codes or ids of room types / rate plans of the channel's property."""
    rows = codes_and_ids(session, kind, channel.property_id, room_type_ids)
    by_code = {code: ident for ident, code in rows}
    ids = {ident for ident, _ in rows}
    label = "room type" if kind is RoomType else "rate plan"
    out: list[int] = []
    for item in wanted:
        found = item if isinstance(item, int) and item in ids else by_code.get(str(item))
        if found is None:
            raise Unprocessable(
                f"unknown {label} {item!r} for this channel's property",
                code="unknown_reference",
            )
        out.append(found)
    return out


def _channel_scope(session: Session, principal: Principal, channel_id: int, what: str) -> None:
    if principal.scoped:
        channel = session.get(Channel, channel_id)
        principal.require_property(channel.property_id if channel else None, what)


# ---------------------------------------------------------------- triggers

_RUN: dict[str, Any] = {"response_model": SyncResult, "responses": RUN_RESPONSES}


@router.post("/channels/{channel_id}/sync-bookings", **_RUN)
def sync_bookings(
    channel_id: Id,
    body: SyncBookingsBody,
    session: SessionDep,
    settings: SettingsDep,
    principal: OperatorDep,
    run_async: AsyncDep = False,
) -> Any:
    """Pull bookings from the partner now (a `sync-bookings` flow run)."""
    from flows.channel_sync import sync_bookings as flow

    _channel(session, principal, channel_id, body)
    return _run(
        session, settings, run_async, flow,
        channel_id=channel_id,
        start_date=body.start_date,
        end_date=body.end_date,
        config_overrides=body.overrides(),
    )


@router.post("/channels/{channel_id}/sync-availability", **_RUN)
def sync_availability(
    channel_id: Id,
    body: SyncAvailabilityBody,
    session: SessionDep,
    settings: SettingsDep,
    principal: OperatorDep,
    run_async: AsyncDep = False,
) -> Any:
    """Push availability: the PMS values as a delta, or an explicit `available` as given."""
    from flows.channel_sync import push_ari_values, push_availability

    channel = _channel(session, principal, channel_id, body)
    wanted = ([body.room_type] if body.room_type is not None else []) + (body.room_types or [])
    room_type_ids = _resolve(session, channel, RoomType, wanted) if wanted else None
    start, end = body.window()
    if body.available is not None:
        if not room_type_ids or start is None or end is None:
            raise Unprocessable(
                "an explicit `available` needs roomType and date(s)", code="incomplete_request"
            )
        codes = room_codes(session, channel_id, room_type_ids)
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
        return _run(
            session, settings, run_async, push_ari_values,
            channel_id=channel_id, updates=updates, config_overrides=body.overrides(),
        )
    return _run(
        session, settings, run_async, push_availability,
        channel_id=channel_id,
        room_type_ids=room_type_ids,
        start_date=start,
        end_date=end,
        config_overrides=body.overrides(),
    )


@router.post("/channels/{channel_id}/sync-rates", **_RUN)
def sync_rates(
    channel_id: Id,
    body: SyncRatesBody,
    session: SessionDep,
    settings: SettingsDep,
    principal: OperatorDep,
    run_async: AsyncDep = False,
) -> Any:
    """Push rates and restrictions: the PMS values as a delta, or an explicit `rate`."""
    from flows.channel_sync import push_ari_values, push_rates

    channel = _channel(session, principal, channel_id, body)
    rooms = ([body.room_type] if body.room_type is not None else []) + (body.room_types or [])
    plans = ([body.rate_plan] if body.rate_plan is not None else []) + (body.rate_plans or [])
    room_type_ids = _resolve(session, channel, RoomType, rooms) if rooms else None
    rate_plan_ids: list[int] | None
    if plans:
        rate_plan_ids = _resolve(session, channel, RatePlan, plans, room_type_ids)
    elif room_type_ids:
        rate_plan_ids = rate_plan_ids_of(session, channel.property_id, room_type_ids)
    else:
        rate_plan_ids = None
    start, end = body.window()
    if body.rate is not None:
        if not rate_plan_ids or start is None or end is None:
            raise Unprocessable(
                "an explicit `rate` needs roomType or ratePlan and date(s)",
                code="incomplete_request",
            )
        targets = rate_targets(session, channel_id, rate_plan_ids)
        if not targets:
            raise Unprocessable(
                "none of these rate plans is mapped on this channel", code="unmapped_rate_plan"
            )
        updates = [
            {
                "partner_room_type_code": t.partner_room_code,
                "partner_rate_plan_code": t.partner_rate_code,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "rate": str(body.rate),
                "currency": t.currency,
            }
            for t in targets
        ]
        return _run(
            session, settings, run_async, push_ari_values,
            channel_id=channel_id, updates=updates, config_overrides=body.overrides(),
        )
    return _run(
        session, settings, run_async, push_rates,
        channel_id=channel_id,
        rate_plan_ids=rate_plan_ids,
        start_date=start,
        end_date=end,
        config_overrides=body.overrides(),
    )


@router.post("/ari/full-sync", **_RUN)
def full_sync(
    body: FullSyncBody,
    session: SessionDep,
    settings: SettingsDep,
    principal: OperatorDep,
    run_async: AsyncDep = False,
) -> Any:
    """Availability, rates and restrictions of every enabled channel (delta over the horizon);
    a property-scoped key must name one of its properties."""
    from flows.channel_sync import full_ari_sync

    if body.property_id is None:
        principal.require_unscoped("a full sync of every property")
    else:
        principal.require_property(body.property_id, f"property {body.property_id}")
    return _run(
        session, settings, run_async, full_ari_sync,
        property_id=body.property_id, horizon_days=body.horizon_days,
    )


@router.post("/channel-bookings/{booking_id}/status", **_RUN)
def push_status(
    booking_id: Id,
    body: StatusBody,
    session: SessionDep,
    settings: SettingsDep,
    principal: OperatorDep,
    run_async: AsyncDep = False,
) -> Any:
    """Push a PMS status change of one channel booking to its partner."""
    from flows.channel_sync import update_booking_status

    booking = session.get(ChannelBooking, booking_id)
    if booking is None:
        raise NotFound(f"channel booking {booking_id} not found")
    _channel_scope(session, principal, booking.channel_id, f"channel booking {booking_id}")
    return _run(
        session, settings, run_async, update_booking_status,
        channel_booking_id=booking_id, status=body.status.value,
    )
