"""Authentication, roles and the one error body."""

from __future__ import annotations

from sqlalchemy import select

from db.models import ApiKey, AuditLog


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


def test_health_needs_no_key(client):
    resp = client.get("/api/health")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"


def test_missing_key_is_401(client):
    assert_error(client.get("/api/api-keys"), 401, "unauthorized")


def test_bad_key_is_401(client):
    assert_error(client.get("/api/api-keys", headers={"X-API-Key": "isk_nope"}), 401, "unauthorized")


def test_bearer_is_accepted(client, make_key):
    key = make_key("admin")["X-API-Key"]
    resp = client.get("/api/api-keys", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text


def test_role_too_low_is_403(client, viewer_headers, operator_headers):
    assert_error(client.get("/api/api-keys", headers=viewer_headers), 403, "forbidden")
    assert_error(client.get("/api/api-keys", headers=operator_headers), 403, "forbidden")


def test_revoked_key_is_401(client, admin_headers, make_key, db_session):
    victim = make_key("viewer", name="victim")
    row = db_session.scalar(select(ApiKey).where(ApiKey.name == "victim"))
    assert client.delete(f"/api/api-keys/{row.id}", headers=admin_headers).status_code == 200
    assert_error(client.get("/api/api-keys", headers=victim), 401, "unauthorized")


def test_create_key_returns_it_once_and_stores_only_hash(client, admin_headers, db_session):
    resp = client.post("/api/api-keys", json={"name": "frontdesk", "role": "operator"},
                       headers=admin_headers)
    assert resp.status_code == 201, resp.text
    key = resp.json()["key"]
    row = db_session.scalar(select(ApiKey).where(ApiKey.name == "frontdesk"))
    assert row.key_hash != key and key not in row.key_hash
    listing = client.get("/api/api-keys", headers=admin_headers).text
    assert key not in listing
    # the new key works, with its role
    assert client.get("/api/api-keys", headers={"X-API-Key": key}).status_code == 403
    audit = db_session.scalars(select(AuditLog).where(AuditLog.entity_type == "api_key")).all()
    assert any(a.action == "create" and a.after["key_hash"] == "***" for a in audit)


def test_invalid_body_is_422_with_details(client, admin_headers):
    err = assert_error(
        client.post("/api/api-keys", json={"name": "x", "role": "root"}, headers=admin_headers),
        422, "validation_error",
    )
    assert err["details"] and err["details"][0]["loc"][-1] == "role"


def test_unknown_field_is_rejected(client, admin_headers):
    assert_error(
        client.post("/api/api-keys", json={"name": "x", "role": "viewer", "rol": "admin"},
                    headers=admin_headers),
        422, "validation_error",
    )


def test_unknown_route_uses_error_body(client, admin_headers):
    assert_error(client.get("/api/nope", headers=admin_headers), 404, "not_found")
