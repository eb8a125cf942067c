"""Issue 11: hostile inputs at the API edge each get a 4xx with the error body, never a 500.

Kinds: integers beyond their column (int4/int8) in paths, queries and bodies; numbers as dates;
NUL in the URL, in any text field and inside nested JSON; wrong JSON types; NaN/Infinity;
oversized bodies (Content-Length and streamed); malformed and hostile backup paths.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import assert_error

pytestmark = pytest.mark.postgres

BIG4 = 2**31
BIG8 = 2**63
HUGE = 10**30
NUL = "a\u0000b"

# (method, path, query params, json body) -> every one is a 4xx with the error body.
ID_PATHS = [
    "/api/properties/{}", "/api/guests/{}", "/api/reservations/{}", "/api/rooms/{}",
    "/api/room-types/{}", "/api/rate-plans/{}", "/api/channels/{}",
    "/api/channel-bookings/{}", "/api/channels/{}/room-mappings",
    "/api/channels/{}/rate-mappings",
]
BAD_IDS = [BIG8, -BIG8 - 1, HUGE, 0, -1, "1.5", "abc", "%00"]

CASES: list[tuple[str, str, dict[str, Any] | None, Any]] = []
for path in ID_PATHS:
    for bad in BAD_IDS:
        CASES.append(("GET", path.format(bad), None, None))
for bad in (BIG8, HUGE):
    CASES += [
        ("DELETE", f"/api/api-keys/{bad}", None, None),
        ("DELETE", f"/api/backup/{bad}", None, None),
        ("POST", f"/api/sync/queue/{bad}/retry", None, None),
        ("PATCH", f"/api/properties/{bad}", None, {"name": "x"}),
        ("GET", f"/api/room-types/{bad}/inventory", {"from": "2030-01-01", "to": "2030-01-02"},
         None),
        ("GET", f"/api/rate-plans/{bad}/rates", {"from": "2030-01-01", "to": "2030-01-02"}, None),
        ("POST", f"/api/channels/{bad}/sync-bookings", None, {}),
        ("POST", f"/api/channel-bookings/{bad}/status", None, {"status": "confirmed"}),
    ]
LISTS = ["/api/properties", "/api/guests", "/api/reservations", "/api/rooms", "/api/room-types",
         "/api/rate-plans", "/api/channels", "/api/channel-bookings", "/api/channel-sync-logs",
         "/api/audit-logs", "/api/sync/queue", "/api/api-keys", "/api/backup/list",
         "/api/overbookings"]
for path in LISTS:
    CASES += [
        ("GET", path, {"offset": BIG8}, None),
        ("GET", path, {"offset": HUGE}, None),
        ("GET", path, {"limit": BIG8}, None),
        ("GET", path, {"limit": "NaN"}, None),
    ]
for key in ("propertyId", "guestId", "roomTypeId"):
    CASES += [("GET", "/api/reservations", {key: BIG8}, None),
              ("GET", "/api/reservations", {key: HUGE}, None)]
CASES += [
    ("GET", "/api/rooms", {"propertyId": BIG8}, None),
    ("GET", "/api/channels", {"propertyId": BIG8}, None),
    ("GET", "/api/channel-bookings", {"channelId": BIG8}, None),
    ("GET", "/api/channel-sync-logs", {"channelId": HUGE}, None),
    ("GET", "/api/reports/channels", {"propertyId": BIG8}, None),
]
# Numbers (and other junk) as dates.
for params in ({"to": "0"}, {"from": "0"}, {"to": "1700000000"}, {"from": "-1"},
               {"to": "20300101"}, {"from": "2030-13-01"}, {"to": "2030-02-30"},
               {"from": "1e10"}):
    CASES += [("GET", "/api/channel-bookings", params, None),
              ("GET", "/api/channel-sync-logs", params, None),
              ("GET", "/api/reports/channels", params, None)]
CASES += [
    ("GET", "/api/reservations", {"checkInFrom": "0"}, None),
    ("GET", "/api/reservations", {"stayingOn": "1700000000"}, None),
    ("GET", "/api/room-types/1/inventory", {"from": "0", "to": "1"}, None),
    ("GET", "/api/rate-plans/1/rates", {"from": "2030-01-01", "to": "0"}, None),
    ("GET", "/api/audit-logs", {"since": "0"}, None),
    ("GET", "/api/audit-logs", {"until": "1700000000"}, None),
]
# NUL in queries.
for path in LISTS:
    CASES.append(("GET", path, {"q": NUL, "status": NUL}, None))
CASES += [
    ("GET", "/api/guests", {"q": "\u0000"}, None),
    ("GET", "/api/guests", {"email": NUL}, None),
    ("GET", "/api/channel-bookings", {"externalBookingId": NUL}, None),
    ("GET", "/api/properties", {"code": NUL}, None),
]
# Bodies: NUL in text fields, nested JSON, keys; out-of-range numbers; wrong types.
GUEST = {"firstName": "Ann", "lastName": "Lee"}
CASES += [
    ("POST", "/api/guests", None, {**GUEST, "firstName": NUL}),
    ("POST", "/api/guests", None, {**GUEST, "lastName": NUL}),
    ("POST", "/api/guests", None, {**GUEST, "phone": NUL}),
    ("POST", "/api/guests", None, {**GUEST, "email": "a\u0000@b.c"}),
    ("POST", "/api/properties", None, {"code": NUL, "name": "x"}),
    ("POST", "/api/properties", None, {"code": "X", "name": NUL}),
    ("POST", "/api/properties", None, {"code": "X", "name": "x", "timezone": NUL}),
    ("POST", "/api/api-keys", None, {"name": NUL, "role": "viewer"}),
    ("POST", "/api/channels", None, {"name": "x", "channelName": "agoda",
                                      "config": {"hotelId": NUL}}),
    ("POST", "/api/channels", None, {"name": "x", "channelName": "agoda",
                                      "config": {"apiSecret": NUL}}),
    ("POST", "/api/sync/queue", None, {"entityType": "guest", "entityId": NUL,
                                        "operation": "update"}),
    ("POST", "/api/sync/queue", None, {"entityType": "guest", "entityId": "1",
                                        "operation": "update", "data": {"a": NUL}}),
    ("POST", "/api/sync/queue", None, {"entityType": "guest", "entityId": "1",
                                        "operation": "update", "data": {NUL: 1}}),
    ("POST", "/api/sync/queue", None, {"entityType": "guest", "entityId": "1",
                                        "operation": "update",
                                        "data": {"a": [{"b": [[["x\u0000"]]]}]}}),
    ("POST", "/api/sync/queue", None, {"entityType": "guest", "entityId": HUGE,
                                        "operation": "update"}),
    ("POST", "/api/reservations", None, {"propertyId": BIG8, "guestId": 1, "roomTypeId": 1,
                                          "checkIn": "2030-01-01", "checkOut": "2030-01-02",
                                          "amount": "1"}),
    ("POST", "/api/reservations", None, {"propertyId": 1, "guestId": 1, "roomTypeId": 1,
                                          "checkIn": "2030-01-01", "checkOut": "2030-01-02",
                                          "amount": "1", "adults": BIG4}),
    ("POST", "/api/reservations", None, {"propertyId": 1, "guestId": 1, "roomTypeId": 1,
                                          "checkIn": 0, "checkOut": 86400, "amount": "1"}),
    ("POST", "/api/reservations", None, {"propertyId": 1, "guestId": 1, "roomTypeId": 1,
                                          "checkIn": "2030-01-01", "checkOut": "2030-01-02",
                                          "amount": "1", "notes": NUL}),
    ("POST", "/api/reservations", None, {"propertyId": 1, "guestId": 1, "roomTypeId": 1,
                                          "checkIn": "2030-01-01", "checkOut": "2030-01-02",
                                          "amount": "1e400"}),
    ("PATCH", "/api/reservations/1", None, {"children": BIG4}),
    ("PATCH", "/api/reservations/1", None, {"checkIn": 1700000000}),
    ("POST", "/api/room-types", None, {"propertyId": 1, "code": "X", "name": "x",
                                        "totalUnits": BIG4}),
    ("POST", "/api/room-types", None, {"propertyId": 1, "code": "X", "name": "x",
                                        "maxOccupancy": HUGE}),
    ("POST", "/api/rooms", None, {"roomTypeId": 1, "number": "1", "floor": BIG4}),
    ("POST", "/api/rooms", None, {"roomTypeId": 1, "number": "1", "floor": -BIG4 - 1}),
    ("POST", "/api/rooms", None, {"roomTypeId": BIG8, "number": "1"}),
    ("POST", "/api/rate-plans", None, {"roomTypeId": HUGE, "code": "X", "name": "x"}),
    ("PUT", "/api/room-types/1/inventory", None, {"from": "2030-01-01", "to": "2030-01-02",
                                                   "total": BIG4}),
    ("PUT", "/api/room-types/1/inventory", None, {"from": "2030-01-01", "to": "2030-01-02",
                                                   "held": HUGE}),
    ("PUT", "/api/room-types/1/inventory", None, {"from": 0, "to": 1, "total": 1}),
    ("PUT", "/api/rate-plans/1/rates", None, {"from": "2030-01-01", "to": "2030-01-02",
                                               "amount": "NaN"}),
    ("PUT", "/api/rate-plans/1/rates", None, {"from": "2030-01-01", "to": "2030-01-02",
                                               "minLos": BIG4}),
    ("POST", "/api/channels/1/sync-availability", None,
     {"roomType": "STD", "date": "2030-01-01", "available": BIG4}),
    ("POST", "/api/channels/1/sync-availability", None,
     {"roomType": "STD", "date": "2030-01-01", "available": BIG8}),
    ("POST", "/api/channels/1/sync-availability", None,
     {"roomType": "STD", "date": 1700000000, "available": 1}),
    ("POST", "/api/channels/1/sync-rates", None,
     {"roomType": "STD", "date": "2030-01-01", "rate": "1e30"}),
    ("POST", "/api/channels/1/sync-bookings", None, {"startDate": 0}),
    ("POST", "/api/ari/full-sync", None, {"propertyId": BIG8}),
    ("POST", "/api/ari/full-sync", None, {"horizonDays": BIG4}),
    ("POST", "/api/channels/1/room-mappings", None, {"roomTypeId": BIG8,
                                                      "partnerRoomCode": "X"}),
    ("POST", "/api/channels/1/rate-mappings", None, {"ratePlanId": 1, "partnerRoomCode": NUL,
                                                      "partnerRateCode": "X"}),
    ("POST", "/api/sync/process", None, {"batchSize": BIG8}),
    ("POST", "/api/backup/prune", None, {"keepLast": BIG8}),
    ("POST", "/api/backup/prune", None, {"keepWithinHours": 1e308}),
    ("POST", "/api/backup/restore", None, {"backupId": BIG8}),
    ("POST", "/api/backup/verify", None, {"backupId": HUGE}),
    ("POST", "/api/backup/create", None, {"options": {"location": "file::/tmp/x"}}),
    ("POST", "/api/backup/create", None, {"options": {"location": NUL}}),
    ("POST", "/api/backup/create", None, {"options": {"location": "x" * 10_000}}),
    ("POST", "/api/backup/create", None, {"options": {"location": "../../etc"}}),
    ("POST", "/api/backup/create", None, {"options": {"location": "/etc"}}),
    ("POST", "/api/backup/create", None, {"options": {"location": "s3://elsewhere/x"}}),
    ("POST", "/api/backup/create", None, {"options": {"location": "memory://x"}}),
    ("POST", "/api/backup/create", None, {"options": {"location": "simplecache::file:///x"}}),
    ("POST", "/api/backup/create", None, {"options": {"parentId": BIG8, "incremental": True}}),
    ("POST", "/api/backup/verify", None, {"filePath": "file::/etc"}),
    ("POST", "/api/backup/verify", None, {"filePath": "/etc/passwd"}),
    ("POST", "/api/backup/restore", None, {"filePath": "a\u0001b"}),
    ("POST", "/api/backup/restore", None, {"filePath": "y" * 10_000}),
    # Wrong JSON types and shapes.
    ("POST", "/api/guests", None, [GUEST]),
    ("POST", "/api/guests", None, "text"),
    ("POST", "/api/guests", None, {**GUEST, "firstName": 5}),
    ("POST", "/api/guests", None, {**GUEST, "country": ["DE"]}),
    ("POST", "/api/properties", None, {"code": "X", "name": "x", "extra": 1}),
    ("POST", "/api/api-keys", None, {"name": "x", "role": "root"}),
]


def _request(client, headers, method, path, params, body):  # type: ignore[no-untyped-def]
    return client.request(method, path, params=params, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "params", "body"), CASES,
                         ids=[f"{i:03d}-{c[0]}-{c[1][:40]}" for i, c in enumerate(CASES)])
def test_hostile_input_is_a_4xx_with_the_error_body(client, admin_headers, method, path,
                                                    params, body):
    resp = _request(client, admin_headers, method, path, params, body)
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
    err = resp.json()["error"]
    assert set(err) == {"code", "message", "details"}
    assert "SELECT" not in resp.text and "INSERT" not in resp.text and "[SQL" not in resp.text


def test_the_table_is_large():
    assert len(CASES) >= 200


def test_numbers_as_dates_are_422(client, viewer_headers):
    for value in ("0", "1700000000", "-5"):
        resp = client.get("/api/channel-sync-logs", params={"to": value}, headers=viewer_headers)
        assert_error(resp, 422, "validation_error")
    ok = client.get("/api/channel-sync-logs", params={"to": "2030-01-01"}, headers=viewer_headers)
    assert ok.status_code == 200, ok.text


def test_ids_at_the_column_bounds(client, viewer_headers):
    """The largest BIGINT is a well-formed id (404), one more is a 422."""
    assert_error(client.get(f"/api/guests/{BIG8 - 1}", headers=viewer_headers), 404, "not_found")
    assert_error(client.get(f"/api/guests/{BIG8}", headers=viewer_headers), 422,
                 "validation_error")


def test_nul_in_a_body_is_422_and_nothing_is_stored(client, operator_headers, db_session):
    from sqlalchemy import func, select

    from db.models import DataSyncQueueItem, Guest

    before = db_session.scalar(select(func.count()).select_from(Guest))
    resp = client.post("/api/guests", json={"firstName": NUL, "lastName": "x"},
                       headers=operator_headers)
    assert_error(resp, 422, "validation_error")
    assert db_session.scalar(select(func.count()).select_from(Guest)) == before
    resp = client.post("/api/sync/queue", headers=operator_headers,
                       json={"entityType": "guest", "entityId": "1", "operation": "update",
                             "data": {"deep": {"list": ["ok", "no\u0000"]}}})
    assert_error(resp, 422, "validation_error")
    assert db_session.scalar(select(func.count()).select_from(DataSyncQueueItem)) == 0


def test_a_literal_backslash_u0000_text_is_not_a_nul(client, operator_headers):
    """The six characters \\u0000 typed as text are fine; only a real NUL is refused."""
    resp = client.post("/api/guests", json={"firstName": "back\\u0000slash", "lastName": "x"},
                       headers=operator_headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["firstName"] == "back\\u0000slash"


def test_available_beyond_int4_never_reaches_the_partner(client, operator_headers, db_session):
    from tests.sync.conftest import make_hotel

    hotel = make_hotel(db_session, days=2)
    channel_id = next(iter(hotel.channels.values()))
    body = {"roomType": "STD", "date": hotel.start.isoformat(), "available": 2**31}
    resp = client.post(f"/api/channels/{channel_id}/sync-availability", json=body,
                       headers=operator_headers)
    err = assert_error(resp, 422, "validation_error")
    assert err["details"][0]["loc"][-1] == "available"


def test_sync_results_never_carry_sql(db_session):
    """A run that failed on a database error answers the reason, not the SQL (whether the
    error is the run's or in its sync log)."""
    import uuid

    from api.runs import sync_result
    from db.models import ChannelSyncLog

    raw = ("(psycopg.errors.NumericValueOutOfRange) integer out of range\n"
           "[SQL: INSERT INTO ari_pushes (available) VALUES (%(available)s)]\n"
           "[parameters: {'available': 2147483648}]\n"
           "(Background on this error at: https://sqlalche.me/e/20/9h9h)")
    logged = uuid.uuid4()
    db_session.add(ChannelSyncLog(operation="push_values", status="failed", flow_run_id=logged,
                                  records_processed=1, records_failed=1, error_messages=[raw]))
    db_session.flush()
    for run_id, error in ((uuid.uuid4(), RuntimeError(raw)), (logged, None)):
        result = sync_result(db_session, run_id, "failed", True, False, error)
        assert result.errors == ["(psycopg.errors.NumericValueOutOfRange) integer out of range"]
        assert "SQL" not in result.model_dump_json() and result.success is False


def test_a_percent_encoded_secret_parameter_name_is_refused(client):
    """`?%74oken=` means `?token=` to the app but would slip past the log redaction."""
    resp = client.post("/api/webhooks/agoda?%74oken=s3cret", json={"property_id": "1",
                                                                   "booking_id": "2"})
    assert_error(resp, 400, "bad_request")
    plain = client.post("/api/webhooks/agoda?token=s3cret", json={"property_id": "1",
                                                                  "booking_id": "2"})
    assert_error(plain, 401, "unauthorized")


def test_a_repeated_query_parameter_is_422_not_last_one_wins(client, viewer_headers):
    for query in ("q=a&q=b", "limit=1&limit=500", "q=a&%71=b", "q=a;q=b"):
        resp = client.get(f"/api/guests?{query}", headers=viewer_headers)
        assert_error(resp, 422, "validation_error")
        assert "more than once" in resp.json()["error"]["message"]
    assert client.get("/api/guests?q=a&limit=5", headers=viewer_headers).status_code == 200
