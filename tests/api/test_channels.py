"""Channels API: the seed's body, encrypted config, masked reads, no secret anywhere."""

from __future__ import annotations

import json
import logging

from sqlalchemy import select

from db.models import AuditLog, Channel, ChannelBooking
from tests.api.helpers import (
    assert_error,
    audit_rows,
    make_property,
    make_rate_plan,
    make_room_type,
    total_of,
)

API_KEY = "bk-live-KEY-0123456789abcd"
API_SECRET = "s3cr3t-SECRET-value-wxyz"
SEED_BODY = {
    "name": "Booking.com Lisbon",
    "channelName": "booking.com",
    "config": {"apiKey": API_KEY, "apiSecret": API_SECRET, "propertyId": "1234567",
               "endpoint": "http://127.0.0.1:8101", "hotelId": "1234567"},
    "enabled": True,
}


def create(client, headers, **changes):
    resp = client.post("/api/channels", json={**SEED_BODY, **changes}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_create_channel_masks_secrets_and_encrypts(client, admin_headers, viewer_headers,
                                                  db_session, caplog):
    caplog.set_level(logging.DEBUG)
    body = create(client, admin_headers)
    assert body["channelName"] == "booking.com" and body["enabled"] is True
    assert body["config"] == {"apiKey": "****abcd", "apiSecret": "****wxyz",
                              "propertyId": "1234567", "endpoint": "http://127.0.0.1:8101",
                              "hotelId": "1234567", "webhookSecret": None}
    texts = [json.dumps(body),
             client.get(f"/api/channels/{body['id']}", headers=viewer_headers).text,
             client.get("/api/channels", headers=viewer_headers).text,
             client.get("/api/audit-logs", headers=admin_headers).text]
    row = db_session.get(Channel, body["id"])
    assert row.config_encrypted.startswith("v1:")
    audit = db_session.scalars(select(AuditLog).where(AuditLog.entity_type == "channel")).all()
    texts += [json.dumps(a.after) for a in audit]
    texts += [row.config_encrypted, json.dumps(row.config_public), caplog.text]
    for text in texts:
        assert API_KEY not in text and API_SECRET not in text
    assert audit and audit[0].after["config_encrypted"] == "***"


def test_short_secret_is_fully_masked(client, admin_headers):
    body = create(client, admin_headers, config={"apiKey": "abc", "apiSecret": "short-one"})
    assert body["config"]["apiKey"] == "****" and body["config"]["apiSecret"] == "****"
    assert body["config"]["endpoint"] is None


def test_invalid_bodies_never_echo_secrets(client, admin_headers, caplog):
    caplog.set_level(logging.DEBUG)
    bad = [
        {**SEED_BODY, "channelName": "trivago"},
        {**SEED_BODY, "config": {**SEED_BODY["config"], "apiKeyy": API_KEY}},
        {**SEED_BODY, "config": {**SEED_BODY["config"], "endpoint": "ftp://x"}},
        {**SEED_BODY, "config": {**SEED_BODY["config"], "apiSecret": {"x": API_SECRET}}},
        {**SEED_BODY, "name": ""},
    ]
    for body in bad:
        resp = client.post("/api/channels", json=body, headers=admin_headers)
        assert_error(resp, 422, "validation_error")
        assert API_KEY not in resp.text and API_SECRET not in resp.text
    assert API_KEY not in caplog.text and API_SECRET not in caplog.text


def test_channel_roles_and_404(client, admin_headers, operator_headers, viewer_headers):
    assert_error(client.post("/api/channels", json=SEED_BODY, headers=operator_headers),
                 403, "forbidden")
    assert_error(client.post("/api/channels", json=SEED_BODY), 401, "unauthorized")
    body = create(client, admin_headers)
    assert_error(client.delete(f"/api/channels/{body['id']}", headers=viewer_headers),
                 403, "forbidden")
    assert_error(client.patch(f"/api/channels/{body['id']}", json={"enabled": False},
                              headers=operator_headers), 403, "forbidden")
    assert_error(client.get("/api/channels/999999", headers=viewer_headers), 404, "not_found")


def test_duplicate_channel_name_is_409(client, admin_headers):
    create(client, admin_headers)
    assert_error(client.post("/api/channels", json=SEED_BODY, headers=admin_headers),
                 409, "conflict")


def test_patch_merges_config_and_reencrypts(client, admin_headers, db_session, engine):
    from db.repositories.channels import load_channel_config

    body = create(client, admin_headers)
    old_cipher = db_session.get(Channel, body["id"]).config_encrypted
    resp = client.patch(f"/api/channels/{body['id']}", headers=admin_headers,
                        json={"enabled": False, "config": {"apiSecret": "rotated-secret-9876"}})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["enabled"] is False and out["config"]["apiSecret"] == "****9876"
    assert out["config"]["apiKey"] == "****abcd" and out["config"]["hotelId"] == "1234567"
    row = db_session.get(Channel, body["id"])
    assert row.config_encrypted != old_cipher
    config = load_channel_config(db_session, body["id"])
    assert config.api_secret.get_secret_value() == "rotated-secret-9876"
    assert config.api_key.get_secret_value() == API_KEY
    [upd] = audit_rows(db_session, "channel", "update")
    assert upd.before["enabled"] is True and upd.after["enabled"] is False
    assert "rotated-secret-9876" not in json.dumps(upd.after)
    assert_error(client.patch(f"/api/channels/{body['id']}", headers=admin_headers,
                              json={"name": None}), 422, "validation_error")


def test_list_filters_and_pagination(client, admin_headers, viewer_headers, db_session):
    prop = make_property(db_session)
    for i, partner in enumerate(["booking.com", "agoda", "expedia"]):
        create(client, admin_headers, name=f"chan-{i}", channelName=partner,
               propertyId=prop.id, enabled=partner != "agoda")
    params = {"propertyId": prop.id}
    assert total_of(client.get("/api/channels", params=params, headers=viewer_headers)) == 3
    agoda = client.get("/api/channels", params={**params, "channelName": "agoda"},
                       headers=viewer_headers)
    assert total_of(agoda) == 1 and agoda.json()[0]["enabled"] is False
    on = client.get("/api/channels", params={**params, "enabled": "true", "limit": 1},
                    headers=viewer_headers)
    assert total_of(on) == 2 and len(on.json()) == 1
    assert_error(client.post("/api/channels", json={**SEED_BODY, "propertyId": 999999},
                             headers=admin_headers), 422, "validation_error")


def test_delete_channel(client, admin_headers, db_session):
    body = create(client, admin_headers)
    busy = create(client, admin_headers, name="busy")
    db_session.add(ChannelBooking(channel_id=busy["id"], external_booking_id="X1",
                                  status="confirmed"))
    db_session.flush()
    assert_error(client.delete(f"/api/channels/{busy['id']}", headers=admin_headers),
                 409, "conflict")
    assert client.delete(f"/api/channels/{body['id']}", headers=admin_headers).status_code == 204
    assert db_session.get(Channel, body["id"]) is None
    [deleted] = audit_rows(db_session, "channel", "delete")
    assert deleted.before["name"] == SEED_BODY["name"] and deleted.after is None


def test_mappings(client, admin_headers, viewer_headers, db_session):
    prop = make_property(db_session)
    rt = make_room_type(db_session, prop)
    plan = make_rate_plan(db_session, rt)
    chan = create(client, admin_headers, propertyId=prop.id)
    base = f"/api/channels/{chan['id']}"
    resp = client.post(f"{base}/room-mappings", headers=admin_headers,
                       json={"roomTypeId": rt.id, "partnerRoomCode": "123456701"})
    assert resp.status_code == 201, resp.text
    room_map = resp.json()
    assert_error(client.post(f"{base}/room-mappings", headers=admin_headers,
                             json={"roomTypeId": rt.id, "partnerRoomCode": "other"}),
                 409, "conflict")
    resp = client.post(f"{base}/rate-mappings", headers=admin_headers,
                       json={"ratePlanId": plan.id, "partnerRoomCode": "123456701",
                             "partnerRateCode": "8001001"})
    assert resp.status_code == 201, resp.text
    listed = client.get(f"{base}/rate-mappings", headers=viewer_headers)
    assert total_of(listed) == 1 and listed.json()[0]["partnerRateCode"] == "8001001"
    foreign_rt = make_room_type(db_session, make_property(db_session, "OTH"))
    assert_error(client.post(f"{base}/room-mappings", headers=admin_headers,
                             json={"roomTypeId": foreign_rt.id, "partnerRoomCode": "9"}),
                 422, "validation_error")
    assert_error(client.post(f"{base}/room-mappings", headers=viewer_headers,
                             json={"roomTypeId": rt.id, "partnerRoomCode": "9"}),
                 403, "forbidden")
    assert_error(client.get("/api/channels/999999/room-mappings", headers=viewer_headers),
                 404, "not_found")
    assert client.delete(f"{base}/room-mappings/{room_map['id']}",
                         headers=admin_headers).status_code == 204
    assert_error(client.delete(f"{base}/room-mappings/{room_map['id']}", headers=admin_headers),
                 404, "not_found")
    actions = [(a.entity_type, a.action) for a in audit_rows(db_session, "channel_room_mapping")]
    assert actions == [("channel_room_mapping", "create"), ("channel_room_mapping", "delete")]


def test_audit_logs_admin_only_and_filtered(client, admin_headers, operator_headers):
    create(client, admin_headers)
    assert_error(client.get("/api/audit-logs", headers=operator_headers), 403, "forbidden")
    page = client.get("/api/audit-logs", params={"entityType": "channel", "action": "create"},
                      headers=admin_headers)
    assert total_of(page) == 1 and page.json()[0]["actor"] == "apikey:test-admin"
    assert page.json()[0]["entityType"] == "channel"
