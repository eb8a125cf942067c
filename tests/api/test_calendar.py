"""Inventory and rate calendars: range reads, range updates, validation, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from db.models import Inventory, Rate
from tests.api.helpers import (
    D,
    M,
    assert_error,
    audit_rows,
    make_property,
    make_rate_plan,
    make_room_type,
)


@pytest.fixture
def room_type(db_session):
    return make_room_type(db_session, make_property(db_session))


@pytest.fixture
def rate_plan(db_session, room_type):
    return make_rate_plan(db_session, room_type, currency="EUR")


def inv(db_session, rt_id):
    db_session.expire_all()
    return {r.date: r for r in db_session.scalars(
        select(Inventory).where(Inventory.room_type_id == rt_id))}


def test_inventory_range_update_creates_and_updates(client, operator_headers, room_type,
                                                    db_session):
    url = f"/api/room-types/{room_type.id}/inventory"
    resp = client.put(url, headers=operator_headers,
                      json={"from": "2030-01-01", "to": "2030-01-10", "total": 8})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"roomTypeId": room_type.id, "from": "2030-01-01",
                           "to": "2030-01-10", "days": 10}
    # weekends only (Sat=5, Sun=6): 2030-01-05/06 are a Saturday and Sunday
    resp = client.patch(url, headers=operator_headers,
                        json={"from": "2030-01-01", "to": "2030-01-10", "weekdays": [5, 6],
                              "stopSell": True})
    assert resp.json()["days"] == 2
    days = inv(db_session, room_type.id)
    assert len(days) == 10 and all(d.total == 8 for d in days.values())
    assert {d for d, r in days.items() if r.stop_sell} == {D("2030-01-05"), D("2030-01-06")}
    [first, second] = audit_rows(db_session, "inventory", "range_update")
    assert first.entity_id == str(room_type.id) and first.after["total"] == 8
    assert second.after["weekdays"] == [5, 6] and second.after["days"] == 2


def test_inventory_get_range_paginated(client, viewer_headers, operator_headers, room_type):
    url = f"/api/room-types/{room_type.id}/inventory"
    client.put(url, headers=operator_headers,
               json={"from": "2030-03-01", "to": "2030-03-31", "total": 5, "held": 1})
    resp = client.get(url, params={"from": "2030-03-10", "to": "2030-03-20", "limit": 4,
                                   "offset": 2}, headers=viewer_headers)
    page = resp.json()
    assert resp.headers["X-Total-Count"] == "11" and len(page) == 4
    assert page[0] == {**page[0], "date": "2030-03-12", "total": 5, "sold": 0,
                                "held": 1, "stopSell": False}
    assert_error(client.get(url, params={"from": "2030-03-20", "to": "2030-03-10"},
                            headers=viewer_headers), 422, "validation_error")
    assert_error(client.get(url, headers=viewer_headers), 422, "validation_error")
    assert_error(client.get("/api/room-types/999999/inventory",
                            params={"from": "2030-03-10", "to": "2030-03-20"},
                            headers=viewer_headers), 404, "not_found")


@pytest.mark.parametrize("body", [
    {"from": "2030-01-10", "to": "2030-01-01", "total": 1},  # from after to
    {"from": "2030-01-01", "to": "2033-01-02", "total": 1},  # over three years
    {"from": "2030-01-01", "to": "2030-01-02", "total": -1},  # negative
    {"from": "2030-01-01", "to": "2030-01-02"},  # nothing to set
    {"from": "2030-01-01", "to": "2030-01-02", "total": None},  # null
    {"from": "2030-01-01", "to": "2030-01-02", "sold": 3},  # not settable
    {"from": "2030-01-01", "to": "2030-01-02", "total": 1, "weekdays": [7]},
    {"from": "2030-01-01", "to": "2030-01-02", "total": 1, "weekdays": []},
])
def test_inventory_range_validation(client, operator_headers, room_type, body, db_session):
    assert_error(client.put(f"/api/room-types/{room_type.id}/inventory", json=body,
                            headers=operator_headers), 422, "validation_error")
    assert inv(db_session, room_type.id) == {}


def test_three_years_is_allowed(client, operator_headers, room_type):
    resp = client.put(f"/api/room-types/{room_type.id}/inventory", headers=operator_headers,
                      json={"from": "2030-01-01", "to": "2032-12-31", "total": 3})
    assert resp.status_code == 200 and resp.json()["days"] == 1096


def test_calendar_roles(client, viewer_headers, room_type, rate_plan):
    body = {"from": "2030-01-01", "to": "2030-01-02", "total": 1}
    assert_error(client.put(f"/api/room-types/{room_type.id}/inventory", json=body,
                            headers=viewer_headers), 403, "forbidden")
    assert_error(client.put(f"/api/rate-plans/{rate_plan.id}/rates", headers=viewer_headers,
                            json={"from": "2030-01-01", "to": "2030-01-02", "amount": "1"}),
                 403, "forbidden")
    assert_error(client.put(f"/api/rate-plans/{rate_plan.id}/rates",
                            json={"from": "2030-01-01", "to": "2030-01-02", "amount": "1"}),
                 401, "unauthorized")


def rates(db_session, rp_id):
    db_session.expire_all()
    return {r.date: r for r in db_session.scalars(select(Rate).where(Rate.rate_plan_id == rp_id))}


def test_rate_range_update(client, operator_headers, viewer_headers, rate_plan, db_session):
    url = f"/api/rate-plans/{rate_plan.id}/rates"
    resp = client.put(url, headers=operator_headers,
                      json={"from": "2030-06-01", "to": "2030-06-07", "amount": "129.90",
                            "minLos": 2, "maxLos": 7})
    assert resp.status_code == 200, resp.text
    assert resp.json()["days"] == 7
    # restrictions only, on existing days (Fridays: 2030-06-07 is a Friday)
    resp = client.patch(url, headers=operator_headers,
                        json={"from": "2030-06-01", "to": "2030-06-30", "weekdays": [4],
                              "closedToArrival": True, "minLos": None})
    assert resp.json()["days"] == 1
    days = rates(db_session, rate_plan.id)
    assert len(days) == 7 and all(r.amount == M("129.90") for r in days.values())
    friday = days[D("2030-06-07")]
    assert friday.closed_to_arrival and friday.min_los is None and friday.max_los == 7
    assert days[D("2030-06-06")].min_los == 2 and not days[D("2030-06-06")].closed_to_arrival
    got = client.get(url, params={"from": "2030-06-07", "to": "2030-06-07"},
                     headers=viewer_headers).json()
    assert got[0]["amount"] == "129.90" and got[0]["closedToArrival"] is True
    assert got[0]["currency"] == "EUR"
    assert len(audit_rows(db_session, "rates", "range_update")) == 2


@pytest.mark.parametrize("body", [
    {"from": "2030-01-01", "to": "2030-01-02", "amount": "-1"},
    {"from": "2030-01-01", "to": "2030-01-02", "amount": "1.001"},
    {"from": "2030-01-01", "to": "2030-01-02", "amount": "1", "minLos": 5, "maxLos": 2},
    {"from": "2030-01-01", "to": "2030-01-02", "amount": "1", "minLos": 0},
    {"from": "2030-01-01", "to": "2030-01-02", "amount": None},
    {"from": "2030-01-01", "to": "2030-01-02", "closed": None},
    {"from": "2030-01-02", "to": "2030-01-01", "amount": "1"},
])
def test_rate_range_validation(client, operator_headers, rate_plan, body, db_session):
    assert_error(client.put(f"/api/rate-plans/{rate_plan.id}/rates", json=body,
                            headers=operator_headers), 422, "validation_error")
    assert rates(db_session, rate_plan.id) == {}


def test_rate_los_crossing_stored_value_is_422(client, operator_headers, rate_plan, db_session):
    url = f"/api/rate-plans/{rate_plan.id}/rates"
    client.put(url, headers=operator_headers,
               json={"from": "2030-01-01", "to": "2030-01-05", "amount": "100", "maxLos": 3})
    assert_error(client.patch(url, headers=operator_headers,
                              json={"from": "2030-01-01", "to": "2030-01-05", "minLos": 4}),
                 422, "validation_error")
    assert all(r.min_los is None for r in rates(db_session, rate_plan.id).values())


def test_rate_update_without_amount_needs_stored_days(client, operator_headers, rate_plan):
    err = assert_error(client.patch(f"/api/rate-plans/{rate_plan.id}/rates",
                                    headers=operator_headers,
                                    json={"from": "2030-01-01", "to": "2030-01-05",
                                          "closed": True}), 422, "validation_error")
    assert "amount" in err["message"]


def test_range_update_unknown_target_is_404(client, operator_headers):
    body = {"from": "2030-01-01", "to": "2030-01-02", "total": 1}
    assert_error(client.put("/api/room-types/999999/inventory", json=body,
                            headers=operator_headers), 404, "not_found")
    assert_error(client.put("/api/rate-plans/999999/rates", headers=operator_headers,
                            json={"from": "2030-01-01", "to": "2030-01-02", "amount": "1"}),
                 404, "not_found")


def test_one_day_range(client, operator_headers, room_type):
    day = D("2030-02-28")
    resp = client.put(f"/api/room-types/{room_type.id}/inventory", headers=operator_headers,
                      json={"from": str(day), "to": str(day + timedelta(days=0)), "held": 2})
    assert resp.json()["days"] == 1
