"""Sync queue API: shapes, roles, validation; PMS writes through the API enqueue changes."""

from __future__ import annotations

from sqlalchemy import text

from db.repositories import queue
from tests.api.helpers import (
    assert_error,
    make_guest,
    make_property,
    make_rate_plan,
    make_room_type,
)


def _items(db_session, entity_type=None):
    db_session.expire_all()
    return db_session.execute(
        text("SELECT entity_type, entity_id, operation, data, status FROM data_sync_queue "
             "WHERE CAST(:t AS text) IS NULL OR entity_type = :t ORDER BY id"),
        {"t": entity_type},
    ).mappings().all()


def test_enqueue_status_and_roles(client, operator_headers, viewer_headers, db_session):
    body = {"entityType": "inventory", "entityId": "12", "operation": "update",
            "data": {"start": "2030-01-01", "end": "2030-01-03"}}
    resp = client.post("/api/sync/queue", json=body, headers=operator_headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["success"] is True
    again = client.post("/api/sync/queue", headers=operator_headers,
                        json={**body, "data": {"start": "2029-12-30"}})
    assert again.json()["id"] == resp.json()["id"]  # coalesced
    assert client.get("/api/sync/status", headers=viewer_headers).json() == {
        "pendingCount": 1, "failedCount": 0, "isProcessing": False}
    assert_error(client.post("/api/sync/queue", json=body, headers=viewer_headers),
                 403, "forbidden")
    assert_error(client.get("/api/sync/status"), 401, "unauthorized")


def test_unknown_entity_type_or_operation_is_422(client, operator_headers):
    for bad in ({"entityType": "spaceship", "entityId": "1", "operation": "update"},
                {"entityType": "guest", "entityId": "1", "operation": "teleport"},
                {"entityType": "guest", "operation": "update"},
                {"entityType": "guest", "entityId": "1", "operation": "update", "x": 1}):
        assert_error(client.post("/api/sync/queue", json=bad, headers=operator_headers),
                     422, "validation_error")


def test_failed_items_list_and_retry(client, operator_headers, viewer_headers, db_session):
    a = queue.enqueue(db_session, "guest", 1, "update")
    b = queue.enqueue(db_session, "guest", 2, "update")
    c = queue.enqueue(db_session, "guest", 3, "update")
    db_session.execute(text("UPDATE data_sync_queue SET status = 'failed', attempts = 3, "
                            "last_error = 'partner down' WHERE id IN (:a, :b)"), {"a": a, "b": b})
    resp = client.get("/api/sync/queue", params={"status": "failed", "limit": 1},
                      headers=viewer_headers)
    page = resp.json()
    assert resp.headers["X-Total-Count"] == "2" and len(page) == 1
    assert 'rel="next"' in resp.headers["Link"]
    first = page[0]
    assert first["id"] == a and first["lastError"] == "partner down"
    assert first["status"] == "failed" and first["attempts"] == 3
    assert_error(client.get("/api/sync/queue", params={"status": "lost"},
                            headers=viewer_headers), 422, "validation_error")
    assert_error(client.post(f"/api/sync/queue/{c}/retry", headers=operator_headers),
                 409, "conflict")
    assert_error(client.post("/api/sync/queue/999999/retry", headers=operator_headers),
                 404, "not_found")
    assert_error(client.post(f"/api/sync/queue/{a}/retry", headers=viewer_headers),
                 403, "forbidden")
    one = client.post(f"/api/sync/queue/{a}/retry", headers=operator_headers)
    assert one.json() == {"success": True, "requeued": 1}
    rest = client.post("/api/sync/queue/retry-failed", headers=operator_headers)
    assert rest.json() == {"success": True, "requeued": 1}
    status = client.get("/api/sync/status", headers=viewer_headers).json()
    assert status == {"pendingCount": 3, "failedCount": 0, "isProcessing": False}


def test_process_needs_operator(client, viewer_headers):
    assert_error(client.post("/api/sync/process", headers=viewer_headers), 403, "forbidden")


def test_pms_writes_enqueue_and_coalesce(client, operator_headers, admin_headers, db_session):
    prop = make_property(db_session, "QUE")
    rt = make_room_type(db_session, prop, total_units=3)
    other = make_room_type(db_session, prop, "DLX", total_units=3)
    plan = make_rate_plan(db_session, rt)
    guest = make_guest(db_session)
    h = operator_headers
    inv = {"from": "2030-06-01", "to": "2030-06-05", "total": 2}
    assert client.put(f"/api/room-types/{rt.id}/inventory", json=inv, headers=h).status_code == 200
    assert client.put(f"/api/room-types/{rt.id}/inventory", headers=h,
                      json={**inv, "from": "2030-05-28", "to": "2030-06-02"}).status_code == 200
    [item] = _items(db_session, "inventory")
    assert item["data"] == {"room_type_ids": [rt.id], "start": "2030-05-28", "end": "2030-06-05"}

    resp = client.put(f"/api/rate-plans/{plan.id}/rates", headers=h,
                      json={"from": "2030-06-01", "to": "2030-06-02", "amount": "90.00"})
    assert resp.status_code == 200
    assert [i["entity_id"] for i in _items(db_session, "rate")] == [str(plan.id)]

    res = client.post("/api/reservations", headers=h, json={
        "propertyId": prop.id, "guestId": guest.id, "roomTypeId": rt.id, "checkIn": "2030-06-01",
        "checkOut": "2030-06-03", "amount": "200.00"}).json()
    client.patch(f"/api/reservations/{res['id']}", json={"notes": "late arrival"}, headers=h)
    client.patch(f"/api/reservations/{res['id']}", json={"checkOut": "2030-06-04"}, headers=h)
    client.patch(f"/api/reservations/{res['id']}", json={"status": "cancelled"}, headers=h)
    rows = _items(db_session, "reservation")
    assert [r["operation"] for r in rows] == ["create", "update", "status_change"]
    assert rows[1]["data"]["start"] == "2030-06-01" and rows[1]["data"]["end"] == "2030-06-03"
    assert rows[2]["data"]["status"] == "cancelled"

    room = client.post("/api/rooms", headers=admin_headers,
                       json={"roomTypeId": rt.id, "number": "101"}).json()
    client.patch(f"/api/rooms/{room['id']}", json={"roomTypeId": other.id},
                 headers=admin_headers)
    rooms = _items(db_session, "room")
    assert [r["operation"] for r in rooms] == ["create", "update"]
    assert rooms[1]["data"]["room_type_ids"] == sorted([rt.id, other.id])
    client.patch(f"/api/room-types/{other.id}", json={"name": "Deluxe"}, headers=admin_headers)
    client.patch(f"/api/guests/{guest.id}", json={"phone": "+1 555"}, headers=h)
    assert [r["operation"] for r in _items(db_session, "room_type")] == ["update"]
    assert _items(db_session, "guest")[0]["data"] == {"fields": ["phone"]}
