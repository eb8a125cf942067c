"""Planning a batch (pure): grouping per channel, status pushes, notes."""

from __future__ import annotations

from datetime import date, timedelta

from db.repositories.queue import ClaimedItem
from db.repositories.queue_targets import BatchFacts, ReservationFacts
from tasks.queue_plan import GUEST_NOT_APPLICABLE, plan_batch

TODAY = date(2027, 3, 1)


def item(i: int, etype: str, eid: object, op: str = "update", **data: object) -> ClaimedItem:
    return ClaimedItem(i, etype, str(eid), op, dict(data), 1, 3)


def facts(**kw: object) -> BatchFacts:
    f = BatchFacts(channels_of_property={1: [10, 11], 2: [20]})
    for k, v in kw.items():
        setattr(f, k, v)
    return f


def test_inventory_and_room_items_of_one_property_make_one_push_per_channel():
    f = facts(room_type_property={5: 1, 6: 1}, rooms={99: (1, 6)})
    plan = plan_batch([
        item(1, "inventory", 5, start="2027-03-10", end="2027-03-12"),
        item(2, "inventory", 6, start="2027-03-02", end="2027-03-04"),
        item(3, "room", 99),
    ], f, TODAY)
    assert set(plan.pushes) == {(10, "availability"), (11, "availability")}
    push = plan.pushes[(10, "availability")]
    assert push.ids == {5, 6} and push.items == {1, 2, 3}
    # a room change has no range: the whole horizon
    assert push.start == TODAY and push.end == TODAY + timedelta(days=364)
    assert not plan.notes and not plan.errors


def test_rates_go_to_rate_pushes_and_past_nights_are_dropped():
    f = facts(rate_plan_property={7: 2})
    plan = plan_batch([item(1, "rate", 7, start="2027-02-01", end="2027-03-05")], f, TODAY)
    push = plan.pushes[(20, "rates")]
    assert push.ids == {7} and (push.start, push.end) == (TODAY, date(2027, 3, 5))
    old = plan_batch([item(2, "rate", 7, start="2027-01-01", end="2027-01-05")], f, TODAY)
    assert not old.pushes and old.notes == {2: "no future nights to push"}


def test_reservation_status_change_pushes_status_and_frees_nights():
    res = ReservationFacts(4, 1, 5, date(2027, 3, 5), date(2027, 3, 8), "cancelled", 11,
                           "HM123", True)
    f = facts(reservations={4: res}, room_type_property={5: 1})
    plan = plan_batch([item(1, "reservation", 4, "status_change", room_type_ids=[5],
                            start="2027-03-05", end="2027-03-07")], f, TODAY)
    assert plan.statuses[(11, "HM123")].status == "cancelled"
    assert plan.statuses[(11, "HM123")].items == {1}
    push = plan.pushes[(10, "availability")]
    assert (push.start, push.end) == (date(2027, 3, 5), date(2027, 3, 7))


def test_reservation_move_covers_old_and_new_nights():
    res = ReservationFacts(4, 1, 6, date(2027, 4, 1), date(2027, 4, 3), "confirmed", None,
                           None, True)
    f = facts(reservations={4: res})
    plan = plan_batch([item(1, "reservation", 4, room_type_ids=[5], start="2027-03-10",
                            end="2027-03-11")], f, TODAY)
    push = plan.pushes[(11, "availability")]
    assert push.ids == {5, 6} and (push.start, push.end) == (date(2027, 3, 10), date(2027, 4, 2))
    assert not plan.statuses


def test_status_not_sent_for_direct_partial_or_pending_reservations():
    direct = ReservationFacts(1, 1, 5, date(2027, 3, 5), date(2027, 3, 6), "cancelled", None,
                              None, True)
    partial = ReservationFacts(2, 1, 5, date(2027, 3, 5), date(2027, 3, 6), "cancelled", 10,
                               "B1", False)
    pending = ReservationFacts(3, 1, 5, date(2027, 3, 5), date(2027, 3, 6), "pending", 10,
                               "B2", True)
    f = facts(reservations={1: direct, 2: partial, 3: pending})
    plan = plan_batch([item(i, "reservation", i, "status_change") for i in (1, 2, 3)], f, TODAY)
    assert not plan.statuses
    assert plan.notes[1].startswith("direct reservation")
    assert plan.notes[2].startswith("other rooms")
    assert plan.notes[3] == "status pending is not sent to partners"


def test_guest_changes_are_not_applicable_and_bad_items_fail_alone():
    f = facts(room_type_property={5: 1})
    plan = plan_batch([item(1, "guest", 3), item(2, "inventory", 5, start="not a date"),
                       item(3, "inventory", 5)], f, TODAY)
    assert plan.notes == {1: GUEST_NOT_APPLICABLE}
    assert set(plan.errors) == {2}
    assert plan.pushes[(10, "availability")].items == {3}


def test_missing_entities_and_channel_less_properties_are_noted():
    f = facts(room_type_property={5: 3})
    plan = plan_batch([item(1, "inventory", 5), item(2, "inventory", 404)], f, TODAY)
    assert plan.notes == {1: "no enabled channel", 2: "inventory 404 not found"}
