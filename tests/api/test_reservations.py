"""Guests and reservations: filters, create/update, sold inventory kept in step, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import Inventory, Reservation
from tests.api.helpers import (
    D,
    assert_error,
    audit_rows,
    make_guest,
    make_property,
    make_rate_plan,
    make_room_type,
    total_of,
)


@pytest.fixture
def world(db_session):
    prop = make_property(db_session, "RSV", currency="CHF")
    rt = make_room_type(db_session, prop, total_units=5)
    plan = make_rate_plan(db_session, rt)
    for day in range(1, 11):
        db_session.add(Inventory(room_type_id=rt.id, date=D(f"2030-05-{day:02d}"), total=5))
    db_session.flush()
    return prop, rt, plan, make_guest(db_session, email="zoe@example.com", country="DE")


def sold(db_session, rt_id):
    db_session.expire_all()
    rows = db_session.scalars(select(Inventory).where(Inventory.room_type_id == rt_id)
                              .order_by(Inventory.date))
    return {r.date.day: r.sold for r in rows if r.sold}


def test_guests_create_search_update(client, operator_headers, viewer_headers, db_session):
    resp = client.post("/api/guests", headers=operator_headers,
                       json={"firstName": "Łukasz", "lastName": "Wróbel",
                             "email": "lw@example.pl", "country": "PL"})
    assert resp.status_code == 201, resp.text
    guest = resp.json()
    make_guest(db_session, "山田")
    found = client.get("/api/guests", params={"q": "wrób"}, headers=viewer_headers)
    assert total_of(found) == 1 and found.json()[0]["lastName"] == "Wróbel"
    assert total_of(client.get("/api/guests", params={"q": "%"}, headers=viewer_headers)) == 0
    assert total_of(client.get("/api/guests", params={"country": "PL"},
                               headers=viewer_headers)) == 1
    resp = client.patch(f"/api/guests/{guest['id']}", headers=operator_headers,
                        json={"phone": "+48 600 000 000"})
    assert resp.json()["phone"] == "+48 600 000 000"
    assert_error(client.post("/api/guests", headers=operator_headers,
                             json={"firstName": "A", "lastName": "B", "email": "nope"}),
                 422, "validation_error")
    assert_error(client.post("/api/guests", headers=viewer_headers,
                             json={"firstName": "A", "lastName": "B"}), 403, "forbidden")
    assert_error(client.get("/api/guests/999999", headers=viewer_headers), 404, "not_found")
    assert [a.action for a in audit_rows(db_session, "guest")] == ["create", "update"]


def test_reservation_create_counts_sold_nights(client, operator_headers, world, db_session):
    prop, rt, plan, guest = world
    resp = client.post("/api/reservations", headers=operator_headers, json={
        "propertyId": prop.id, "guestId": guest.id, "roomTypeId": rt.id,
        "ratePlanId": plan.id, "checkIn": "2030-05-02", "checkOut": "2030-05-05",
        "amount": "300.00", "sourceChannel": "direct", "confirmationCode": "ABC1"})
    assert resp.status_code == 201, resp.text
    res = resp.json()
    assert res["currency"] == "CHF" and res["status"] == "confirmed"
    assert res["sourceChannel"] is None and res["amount"] == "300.00"
    assert sold(db_session, rt.id) == {2: 1, 3: 1, 4: 1}
    [row] = audit_rows(db_session, "reservation", "create")
    assert row.after["confirmation_code"] == "ABC1"
    # same confirmation code again: 409
    dup = {"propertyId": prop.id, "guestId": guest.id, "roomTypeId": rt.id,
           "checkIn": "2030-05-02", "checkOut": "2030-05-03", "amount": "1",
           "confirmationCode": "ABC1"}
    assert_error(client.post("/api/reservations", json=dup, headers=operator_headers),
                 409, "conflict")
    assert sold(db_session, rt.id) == {2: 1, 3: 1, 4: 1}


def test_reservation_update_moves_sold_nights(client, operator_headers, world, db_session):
    prop, rt, plan, guest = world
    res = client.post("/api/reservations", headers=operator_headers, json={
        "propertyId": prop.id, "guestId": guest.id, "roomTypeId": rt.id,
        "checkIn": "2030-05-02", "checkOut": "2030-05-04", "amount": "200"}).json()
    url = f"/api/reservations/{res['id']}"
    resp = client.patch(url, headers=operator_headers,
                        json={"checkIn": "2030-05-06", "checkOut": "2030-05-08"})
    assert resp.status_code == 200, resp.text
    assert sold(db_session, rt.id) == {6: 1, 7: 1}
    client.patch(url, headers=operator_headers, json={"status": "cancelled"})
    assert sold(db_session, rt.id) == {}
    [upd, cancel] = audit_rows(db_session, "reservation", "update")
    assert upd.before["check_in"] == "2030-05-02" and cancel.after["status"] == "cancelled"
    assert_error(client.patch(url, headers=operator_headers, json={"checkOut": "2030-05-01"}),
                 422, "validation_error")
    assert_error(client.patch(url, headers=operator_headers, json={"status": None}),
                 422, "validation_error")
    assert_error(client.patch(url, headers=operator_headers, json={"status": "lost"}),
                 422, "validation_error")


def test_reservation_create_validation(client, operator_headers, world, db_session):
    prop, rt, plan, guest = world
    other_rt = make_room_type(db_session, make_property(db_session, "OTH"))
    base = {"propertyId": prop.id, "guestId": guest.id, "roomTypeId": rt.id,
            "checkIn": "2030-05-02", "checkOut": "2030-05-04", "amount": "200"}
    for change in ({"checkOut": "2030-05-02"}, {"amount": "-5"}, {"guestId": 999999},
                   {"roomTypeId": other_rt.id}, {"status": "booked"}, {"adults": -1},
                   {"currency": "eur"}, {"sourceChannel": "trivago"}):
        assert_error(client.post("/api/reservations", json={**base, **change},
                                 headers=operator_headers), 422, "validation_error")
    assert db_session.scalar(select(Reservation).where(Reservation.property_id == prop.id)) is None


def test_reservation_filters_and_pagination(client, viewer_headers, world, db_session):
    prop, rt, plan, guest = world
    for i, (status, channel) in enumerate([("confirmed", "booking.com"), ("cancelled", "agoda"),
                                           ("confirmed", None), ("no_show", "booking.com")]):
        db_session.add(Reservation(property_id=prop.id, guest_id=guest.id, room_type_id=rt.id,
                                   check_in=D(f"2030-05-0{i + 1}"), check_out=D("2030-05-09"),
                                   status=status, source_channel=channel))
    db_session.flush()

    def total(**params):
        resp = client.get("/api/reservations", params={"propertyId": prop.id, **params},
                          headers=viewer_headers)
        return total_of(resp)

    assert total() == 4
    assert total(status="confirmed") == 2
    assert total(channel="booking.com") == 2
    assert total(channel="direct") == 1
    assert total(checkInFrom="2030-05-02", checkInTo="2030-05-03") == 2
    assert total(stayingOn="2030-05-01") == 1
    assert total(guestId=guest.id, roomTypeId=rt.id) == 4
    page = client.get("/api/reservations", params={"propertyId": prop.id, "limit": 3,
                                                   "offset": 3}, headers=viewer_headers).json()
    assert len(page) == 1 and page[0]["checkIn"] == "2030-05-04"
    one = page[0]["id"]
    assert client.get(f"/api/reservations/{one}", headers=viewer_headers).json()["status"] \
        == "no_show"
    assert_error(client.get("/api/reservations/999999", headers=viewer_headers),
                 404, "not_found")
    assert_error(client.get("/api/reservations", params={"status": "x"},
                            headers=viewer_headers), 422, "validation_error")
