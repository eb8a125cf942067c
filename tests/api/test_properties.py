"""Properties, room types, rooms and rate plans: CRUD, roles, errors, pagination, audit."""

from __future__ import annotations

from tests.api.helpers import (
    assert_error,
    audit_rows,
    make_guest,
    make_property,
    make_rate_plan,
    make_room_type,
    total_of,
)


def test_create_property_is_camel_case_and_audited(client, admin_headers, db_session):
    resp = client.post("/api/properties", headers=admin_headers,
                       json={"code": "LIS", "name": "Hotel Alfama", "timezone": "Europe/Lisbon"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["code"] == "LIS" and body["currency"] == "EUR" and "createdAt" in body
    [row] = audit_rows(db_session, "property", "create")
    assert row.entity_id == str(body["id"]) and row.after["name"] == "Hotel Alfama"
    assert row.actor == "apikey:test-admin"


def test_duplicate_property_code_is_409(client, admin_headers, db_session):
    make_property(db_session, "DUP")
    err = assert_error(client.post("/api/properties", headers=admin_headers,
                                   json={"code": "DUP", "name": "Again"}), 409, "conflict")
    assert "already exists" in err["message"]
    # the session is still usable after the refused write
    assert client.get("/api/properties", headers=admin_headers).status_code == 200


def test_property_validation(client, admin_headers):
    for body in ({"code": "X", "name": "N", "timezone": "Mars/Olympus"},
                 {"code": "X", "name": "N", "currency": "euro"},
                 {"code": "", "name": "N"},
                 {"code": "X", "name": "N", "stars": 5}):
        assert_error(client.post("/api/properties", headers=admin_headers, json=body),
                     422, "validation_error")


def test_property_roles(client, viewer_headers, operator_headers, db_session):
    prop = make_property(db_session)
    assert client.get(f"/api/properties/{prop.id}", headers=viewer_headers).status_code == 200
    assert_error(client.post("/api/properties", headers=operator_headers,
                             json={"code": "NEW", "name": "N"}), 403, "forbidden")
    assert_error(client.delete(f"/api/properties/{prop.id}", headers=operator_headers),
                 403, "forbidden")
    assert_error(client.get("/api/properties", headers={"X-API-Key": "isk_bad"}),
                 401, "unauthorized")


def test_property_pagination_and_filter(client, viewer_headers, db_session):
    for i in range(5):
        make_property(db_session, f"PG{i}")
    resp = client.get("/api/properties?limit=2&offset=1", headers=viewer_headers)
    assert len(resp.json()) == 2 and total_of(resp) >= 5
    one = client.get("/api/properties?code=PG3", headers=viewer_headers)
    assert total_of(one) == 1 and one.json()[0]["code"] == "PG3"
    assert_error(client.get("/api/properties?limit=0", headers=viewer_headers),
                 422, "validation_error")


def test_update_and_delete_property(client, admin_headers, db_session):
    prop = make_property(db_session, "UPD")
    resp = client.patch(f"/api/properties/{prop.id}", headers=admin_headers,
                        json={"name": "Renamed", "currency": "USD"})
    assert resp.status_code == 200 and resp.json()["currency"] == "USD"
    [upd] = audit_rows(db_session, "property", "update")
    assert upd.before["name"] == "Hotel UPD" and upd.after["name"] == "Renamed"
    assert client.delete(f"/api/properties/{prop.id}", headers=admin_headers).status_code == 204
    assert audit_rows(db_session, "property", "delete")[0].before["code"] == "UPD"
    assert_error(client.get(f"/api/properties/{prop.id}", headers=admin_headers),
                 404, "not_found")
    assert_error(client.patch("/api/properties/999999", headers=admin_headers,
                              json={"name": "x"}), 404, "not_found")


def test_delete_property_with_reservations_is_409(client, admin_headers, db_session):
    from db.models import Reservation
    from tests.api.helpers import D

    prop = make_property(db_session, "RES")
    guest = make_guest(db_session)
    db_session.add(Reservation(property_id=prop.id, guest_id=guest.id, check_in=D("2030-01-01"),
                               check_out=D("2030-01-02")))
    db_session.flush()
    err = assert_error(client.delete(f"/api/properties/{prop.id}", headers=admin_headers),
                       409, "conflict")
    assert "in use" in err["message"]


def test_room_type_crud(client, admin_headers, viewer_headers, db_session):
    prop = make_property(db_session)
    resp = client.post("/api/room-types", headers=admin_headers,
                       json={"propertyId": prop.id, "code": "DLX", "name": "Deluxe",
                             "maxOccupancy": 3, "totalUnits": 10})
    assert resp.status_code == 201, resp.text
    rt = resp.json()
    assert rt["maxOccupancy"] == 3 and rt["totalUnits"] == 10
    assert_error(client.post("/api/room-types", headers=admin_headers,
                             json={"propertyId": prop.id, "code": "DLX", "name": "Again"}),
                 409, "conflict")
    assert_error(client.post("/api/room-types", headers=admin_headers,
                             json={"propertyId": 999999, "code": "X", "name": "X"}),
                 422, "validation_error")
    assert_error(client.post("/api/room-types", headers=admin_headers,
                             json={"propertyId": prop.id, "code": "NEG", "name": "X",
                                   "totalUnits": -1}), 422, "validation_error")
    listed = client.get(f"/api/room-types?propertyId={prop.id}", headers=viewer_headers)
    assert [i["code"] for i in listed.json()] == ["DLX"] and total_of(listed) == 1
    resp = client.patch(f"/api/room-types/{rt['id']}", headers=admin_headers,
                        json={"totalUnits": 12})
    assert resp.json()["totalUnits"] == 12
    assert client.delete(f"/api/room-types/{rt['id']}", headers=admin_headers).status_code == 204
    assert len(audit_rows(db_session, "room_type")) == 3


def test_rooms_crud(client, admin_headers, viewer_headers, db_session):
    prop = make_property(db_session)
    rt = make_room_type(db_session, prop)
    resp = client.post("/api/rooms", headers=admin_headers,
                       json={"roomTypeId": rt.id, "number": "101", "floor": 1})
    assert resp.status_code == 201, resp.text
    room = resp.json()
    assert room["propertyId"] == prop.id and room["status"] == "clean"
    assert_error(client.post("/api/rooms", headers=admin_headers,
                             json={"roomTypeId": rt.id, "number": "101"}), 409, "conflict")
    other = make_room_type(db_session, make_property(db_session, "OTH"))
    assert_error(client.patch(f"/api/rooms/{room['id']}", headers=admin_headers,
                              json={"roomTypeId": other.id}), 422, "validation_error")
    resp = client.patch(f"/api/rooms/{room['id']}", headers=admin_headers,
                        json={"status": "dirty"})
    assert resp.json()["status"] == "dirty"
    dirty = client.get(f"/api/rooms?roomTypeId={rt.id}&status=dirty", headers=viewer_headers)
    assert total_of(dirty) == 1
    assert client.delete(f"/api/rooms/{room['id']}", headers=admin_headers).status_code == 204
    assert_error(client.get(f"/api/rooms/{room['id']}", headers=viewer_headers), 404, "not_found")
    assert [a.action for a in audit_rows(db_session, "room")] == ["create", "update", "delete"]


def test_rate_plan_crud(client, admin_headers, viewer_headers, db_session):
    prop = make_property(db_session, currency="GBP")
    rt = make_room_type(db_session, prop)
    resp = client.post("/api/rate-plans", headers=admin_headers,
                       json={"roomTypeId": rt.id, "code": "NRF", "name": "Non-refundable",
                             "refundable": False, "mealPlan": "RO"})
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    assert plan["currency"] == "GBP" and plan["propertyId"] == prop.id
    assert plan["refundable"] is False and plan["mealPlan"] == "RO"
    assert_error(client.post("/api/rate-plans", headers=admin_headers,
                             json={"roomTypeId": rt.id, "code": "NRF", "name": "x"}),
                 409, "conflict")
    make_rate_plan(db_session, rt, "BAR")
    listed = client.get(f"/api/rate-plans?roomTypeId={rt.id}&limit=1", headers=viewer_headers)
    assert total_of(listed) == 2 and len(listed.json()) == 1
    assert_error(client.post("/api/rate-plans", headers=viewer_headers,
                             json={"roomTypeId": rt.id, "code": "X", "name": "x"}),
                 403, "forbidden")
    resp = client.patch(f"/api/rate-plans/{plan['id']}", headers=admin_headers,
                        json={"name": "NRF -10%"})
    assert resp.json()["name"] == "NRF -10%"
    assert client.delete(f"/api/rate-plans/{plan['id']}", headers=admin_headers).status_code == 204
    assert_error(client.delete(f"/api/rate-plans/{plan['id']}", headers=admin_headers),
                 404, "not_found")
