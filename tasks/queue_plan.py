"""Turn a batch of queue items into partner work (pure): one ARI push per channel and kind,
one status push per channel booking, and notes for items with nothing to send."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from db.repositories.queue import ClaimedItem
from db.repositories.queue_targets import BatchFacts

PushKind = Literal["availability", "rates"]
DEFAULT_HORIZON_DAYS = 365
#: PMS reservation statuses a partner can be told about (channels.base.BookingStatus).
PUSHABLE_STATUSES = frozenset({"confirmed", "cancelled", "no_show", "checked_in", "checked_out"})
GUEST_NOT_APPLICABLE = "not applicable: no connected partner accepts guest edits"


@dataclass
class Push:
    """One ARI delta push: a channel, a kind, the ids (room types or rate plans), a range."""

    channel_id: int
    kind: PushKind
    ids: set[int]
    start: date
    end: date
    items: set[int] = field(default_factory=set)


@dataclass
class StatusPush:
    """One booking status to send to the channel a booking came from."""

    channel_id: int
    external_ref: str
    status: str
    items: set[int] = field(default_factory=set)


@dataclass
class Plan:
    """What a batch needs done; `notes` are items complete with nothing (more) to send."""

    pushes: dict[tuple[int, PushKind], Push] = field(default_factory=dict)
    statuses: dict[tuple[int, str], StatusPush] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    def add_push(self, item: int, channel_id: int, kind: PushKind, ids: set[int],
                 start: date, end: date) -> None:
        """Merge one item's need into the push of its channel and kind."""
        push = self.pushes.get((channel_id, kind))
        if push is None:
            self.pushes[(channel_id, kind)] = Push(channel_id, kind, set(ids), start, end, {item})
            return
        push.ids |= ids
        push.start, push.end = min(push.start, start), max(push.end, end)
        push.items.add(item)


@dataclass
class _Need:
    property_id: int | None
    kind: PushKind
    ids: set[int]
    start: date | None
    end: date | None


def _date(value: Any) -> date | None:
    return None if value in (None, "") else date.fromisoformat(str(value))


def _ids(value: Any) -> set[int]:
    return {int(v) for v in value or []}


def _range_of(data: dict[str, Any]) -> tuple[date | None, date | None]:
    return _date(data.get("start")), _date(data.get("end"))


def _widen(a: tuple[date | None, date | None], b: tuple[date, date]) -> tuple[date, date]:
    return min(a[0] or b[0], b[0]), max(a[1] or b[1], b[1])


def _reservation_need(item: ClaimedItem, facts: BatchFacts, plan: Plan) -> _Need:
    data = item.data
    res = facts.reservations.get(int(item.entity_id))
    ids = _ids(data.get("room_type_ids"))
    start, end = _range_of(data)
    property_id = data.get("property_id")
    if res is not None:
        property_id = res.property_id
        if res.room_type_id is not None:
            ids.add(res.room_type_id)
        start, end = _widen((start, end), (res.check_in, res.check_out - timedelta(days=1)))
    if item.operation == "status_change":
        _status_need(item, res, plan)
    return _Need(property_id, "availability", ids, start, end)


def _status_need(item: ClaimedItem, res: Any, plan: Plan) -> None:
    if res is None:
        plan.notes[item.id] = "reservation not found: no status to send"
    elif res.channel_id is None or not res.external_ref:
        plan.notes[item.id] = "direct reservation: no partner booking to update"
    elif res.status not in PUSHABLE_STATUSES:
        plan.notes[item.id] = f"status {res.status} is not sent to partners"
    elif not res.booking_all_same_status:
        plan.notes[item.id] = "other rooms of this booking differ in status: not sent"
    else:
        key = (res.channel_id, res.external_ref)
        push = plan.statuses.setdefault(
            key, StatusPush(res.channel_id, res.external_ref, res.status)
        )
        push.items.add(item.id)


def _need(item: ClaimedItem, facts: BatchFacts, plan: Plan) -> _Need | None:
    data, entity = item.data, item.entity_id
    start, end = _range_of(data)
    if item.entity_type == "reservation":
        return _reservation_need(item, facts, plan)
    if item.entity_type == "inventory":
        rt = int(entity)
        ids = _ids(data.get("room_type_ids")) or {rt}
        return _Need(facts.room_type_property.get(rt), "availability", ids, start, end)
    if item.entity_type == "rate":
        rp = int(entity)
        ids = _ids(data.get("rate_plan_ids")) or {rp}
        return _Need(facts.rate_plan_property.get(rp), "rates", ids, start, end)
    if item.entity_type == "room":
        ids = _ids(data.get("room_type_ids"))
        room = facts.rooms.get(int(entity))
        if room is None:
            return _Need(data.get("property_id"), "availability", ids, start, end)
        return _Need(room[0], "availability", ids | {room[1]}, start, end)
    if item.entity_type == "room_type":
        rt = int(entity)
        prop = facts.room_type_property.get(rt, data.get("property_id"))
        return _Need(prop, "availability", {rt}, start, end)
    if item.entity_type == "guest":
        plan.notes[item.id] = GUEST_NOT_APPLICABLE
        return None
    raise ValueError(f"no handler for entity type {item.entity_type!r}")


def plan_batch(
    items: list[ClaimedItem],
    facts: BatchFacts,
    today: date,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> Plan:
    """The partner work of a batch: ARI grouped per channel, past nights dropped, a missing
    range meaning today..horizon."""
    plan = Plan()
    horizon_end = today + timedelta(days=horizon_days - 1)
    for item in items:
        try:
            need = _need(item, facts, plan)
        except (ValueError, TypeError) as exc:
            plan.errors[item.id] = f"bad queue item: {exc}"
            continue
        if need is None:
            continue
        if need.property_id is None:
            plan.notes.setdefault(item.id, f"{item.entity_type} {item.entity_id} not found")
            continue
        channels = facts.channels_of_property.get(int(need.property_id), [])
        start = max(need.start or today, today)
        end = min(need.end or horizon_end, horizon_end)
        if not channels or not need.ids or end < start:
            plan.notes.setdefault(
                item.id, "no enabled channel" if not channels else "no future nights to push"
            )
            continue
        for channel_id in channels:
            plan.add_push(item.id, channel_id, need.kind, need.ids, start, end)
    return plan


def property_ids_of(items: list[ClaimedItem], facts: BatchFacts) -> set[int]:
    """Every property a batch may touch (to load its channels in one query)."""
    props = {f.property_id for f in facts.reservations.values()}
    props |= set(facts.room_type_property.values()) | set(facts.rate_plan_property.values())
    props |= {p for p, _ in facts.rooms.values()}
    for item in items:
        if item.data.get("property_id") is not None:
            try:
                props.add(int(item.data["property_id"]))
            except (TypeError, ValueError):
                continue
    return props
