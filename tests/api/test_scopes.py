"""API keys scoped to properties: 403 outside them (reads filtered, writes refused);
unscoped keys see every property as before."""

from __future__ import annotations

from api.auth import create_api_key
from db.models import Channel, ChannelSyncLog
from tests.api.helpers import (
    assert_error,
    make_guest,
    make_property,
    make_rate_plan,
    make_room_type,
    total_of,
)


def _scoped(db_session, role: str, *props) -> dict[str, str]:  # type: ignore[no-untyped-def]
    _, key = create_api_key(db_session, f"scoped-{role}", role, [p.id for p in props])
    db_session.flush()
    return {"X-API-Key": key}


def _two_hotels(db_session):  # type: ignore[no-untyped-def]
    mine, other = make_property(db_session, "MINE"), make_property(db_session, "OTHR")
    rts = {p.code: make_room_type(db_session, p) for p in (mine, other)}
    return mine, other, rts


def test_create_a_scoped_key_through_the_api(client, admin_headers, db_session):
    mine, other, _ = _two_hotels(db_session)
    resp = client.post("/api/api-keys", headers=admin_headers,
                       json={"name": "front desk", "role": "operator", "propertyIds": [mine.id]})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["propertyIds"] == [mine.id] and body["key"].startswith("isk_")
    listed = {k["name"]: k for k in client.get("/api/api-keys", headers=admin_headers).json()}
    assert listed["front desk"]["propertyIds"] == [mine.id]
    assert listed["test-admin"]["propertyIds"] is None
    scoped = {"X-API-Key": body["key"]}
    props = client.get("/api/properties", headers=scoped)
    assert [p["id"] for p in props.json()] == [mine.id] and total_of(props) == 1
    # unknown property and empty scope are refused
    bad = client.post("/api/api-keys", headers=admin_headers,
                      json={"name": "x", "role": "viewer", "propertyIds": [99999999]})
    assert_error(bad, 422, "validation_error")
    assert_error(client.post("/api/api-keys", headers=admin_headers,
                             json={"name": "x", "role": "viewer", "propertyIds": []}),
                 422, "validation_error")


def test_scoped_reads_are_filtered_and_other_properties_are_403(client, db_session):
    mine, other, rts = _two_hotels(db_session)
    headers = _scoped(db_session, "viewer", mine)
    listed = client.get("/api/room-types", headers=headers)
    assert [r["propertyId"] for r in listed.json()] == [mine.id]
    assert client.get(f"/api/room-types?propertyId={mine.id}", headers=headers).status_code == 200
    assert_error(client.get(f"/api/room-types?propertyId={other.id}", headers=headers),
                 403, "outside_key_scope")
    assert_error(client.get(f"/api/properties/{other.id}", headers=headers),
                 403, "outside_key_scope")
    assert_error(client.get(f"/api/room-types/{rts['OTHR'].id}", headers=headers),
                 403, "outside_key_scope")
    plan = make_rate_plan(db_session, rts["OTHR"])
    assert_error(client.get(f"/api/rate-plans/{plan.id}/rates",
                            params={"from": "2030-01-01", "to": "2030-01-02"}, headers=headers),
                 403, "outside_key_scope")
    assert client.get(f"/api/properties/{mine.id}", headers=headers).status_code == 200
    # a row that does not exist is still a 404, not a 403
    assert_error(client.get("/api/room-types/99999999", headers=headers), 404, "not_found")


def test_scoped_writes_outside_are_refused(client, db_session):
    mine, other, rts = _two_hotels(db_session)
    admin = _scoped(db_session, "admin", mine)
    operator = _scoped(db_session, "operator", mine)
    guest = make_guest(db_session)
    assert_error(client.post("/api/room-types", headers=admin,
                             json={"propertyId": other.id, "code": "X", "name": "x"}),
                 403, "outside_key_scope")
    ok = client.post("/api/room-types", headers=admin,
                     json={"propertyId": mine.id, "code": "NEW", "name": "x"})
    assert ok.status_code == 201, ok.text
    assert_error(client.patch(f"/api/room-types/{rts['OTHR'].id}", headers=admin,
                              json={"name": "hijack"}), 403, "outside_key_scope")
    assert_error(client.delete(f"/api/properties/{other.id}", headers=admin),
                 403, "outside_key_scope")
    assert_error(client.post("/api/properties", headers=admin, json={"code": "NP", "name": "n"}),
                 403, "outside_key_scope")
    assert_error(client.post("/api/reservations", headers=operator, json={
        "propertyId": other.id, "guestId": guest.id, "roomTypeId": rts["OTHR"].id,
        "checkIn": "2030-01-01", "checkOut": "2030-01-02", "amount": "10.00"}),
        403, "outside_key_scope")
    # what spans every property is for unscoped keys only
    for path in ("/api/api-keys", "/api/audit-logs", "/api/backup/list", "/api/sync/queue"):
        assert_error(client.get(path, headers=admin), 403, "outside_key_scope")
    db_session.refresh(rts["OTHR"])
    assert rts["OTHR"].name != "hijack"


def test_sync_logs_and_overbookings_and_channels_follow_the_scope(client, db_session):
    mine, other, _ = _two_hotels(db_session)
    chans = {}
    for p in (mine, other):
        ch = Channel(property_id=p.id, name=f"ch-{p.code}", channel_name="agoda",
                     enabled=True, config_encrypted=b"x", config_public={})
        db_session.add(ch)
        db_session.flush()
        chans[p.code] = ch
        db_session.add(ChannelSyncLog(channel_id=ch.id, operation="sync_bookings",
                                      status="success"))
    db_session.flush()
    headers = _scoped(db_session, "operator", mine)
    logs = client.get("/api/channel-sync-logs", headers=headers)
    assert {r["channelId"] for r in logs.json()} == {chans["MINE"].id}
    assert_error(client.get(f"/api/channel-sync-logs?propertyId={other.id}", headers=headers),
                 403, "outside_key_scope")
    assert [c["id"] for c in client.get("/api/channels", headers=headers).json()] == [
        chans["MINE"].id]
    assert_error(client.get(f"/api/overbookings?propertyId={other.id}", headers=headers),
                 403, "outside_key_scope")
    assert client.get("/api/overbookings", headers=headers).status_code == 200
    assert_error(client.post(f"/api/channels/{chans['OTHR'].id}/sync-bookings", json={},
                             headers=headers), 403, "outside_key_scope")
    assert_error(client.post("/api/ari/full-sync", json={}, headers=headers),
                 403, "outside_key_scope")
    assert_error(client.get(f"/api/channel-bookings?propertyId={other.id}", headers=headers),
                 403, "outside_key_scope")


def test_unscoped_keys_see_every_property(client, viewer_headers, db_session):
    mine, other, _ = _two_hotels(db_session)
    ids = {p["id"] for p in client.get("/api/properties?limit=500", headers=viewer_headers).json()}
    assert {mine.id, other.id} <= ids
    assert client.get(f"/api/room-types?propertyId={other.id}",
                      headers=viewer_headers).status_code == 200


def test_a_scoped_property_cannot_be_deleted_while_a_key_uses_it(client, admin_headers,
                                                                 db_session):
    lone = make_property(db_session, "LONE")
    _scoped(db_session, "viewer", lone)
    assert_error(client.delete(f"/api/properties/{lone.id}", headers=admin_headers),
                 409, "conflict")


def test_channel_health_shows_only_the_scoped_channels(client, db_session):
    mine, other, _ = _two_hotels(db_session)
    ids = {}
    for p in (mine, other):
        ch = Channel(property_id=p.id, name=f"h-{p.code}", channel_name="expedia",
                     enabled=True, config_encrypted=b"x", config_public={})
        db_session.add(ch)
        db_session.flush()
        ids[p.code] = ch.id
        db_session.add(ChannelSyncLog(channel_id=ch.id, operation="sync_bookings",
                                      status="success"))
    db_session.flush()
    seen = client.get("/api/health/channels", headers=_scoped(db_session, "viewer", mine))
    assert seen.status_code == 200, seen.text
    assert {c["channelId"] for c in seen.json()["channels"]} == {ids["MINE"]}
