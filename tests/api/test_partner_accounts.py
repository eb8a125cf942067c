"""Partner accounts API (issue 13): credentials on the account, channels as its hotel
connections; clear 4xx for every wrong combination; install-wide, never for scoped keys."""

from __future__ import annotations

import json

from api.auth import create_api_key
from db.models import Channel, PartnerAccount
from db.repositories.accounts import effective_config, sealed_configs
from tests.api.helpers import assert_error, make_property

KEY = "machine-account-KEY-0123456789"
SECRET = "machine-SECRET-value-wxyz"
ACCOUNT = {"name": "Booking.com machine account", "channelName": "booking.com",
           "config": {"apiKey": KEY, "apiSecret": SECRET, "endpoint": "http://127.0.0.1:8101"}}


def _account(client, headers, **changes):  # type: ignore[no-untyped-def]
    resp = client.post("/api/partner-accounts", json={**ACCOUNT, **changes}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _channel(client, headers, account_id, hotel, **changes):  # type: ignore[no-untyped-def]
    body = {"name": f"hotel {hotel}", "channelName": "booking.com", "accountId": account_id,
            "config": {"hotelId": hotel}, **changes}
    return client.post("/api/channels", json=body, headers=headers)


def test_an_account_serves_several_hotels_with_one_set_of_credentials(
        client, admin_headers, viewer_headers, db_session):  # type: ignore[no-untyped-def]
    account = _account(client, admin_headers)
    assert account["config"]["apiKey"] == "****6789" and account["config"]["hotelId"] is None
    ids = []
    for hotel in ("1234567", "1234568"):
        resp = _channel(client, admin_headers, account["id"], hotel)
        assert resp.status_code == 201, resp.text
        assert resp.json()["accountId"] == account["id"]
        assert resp.json()["config"]["apiKey"] is None  # not the channel's: the account's
        ids.append(resp.json()["id"])
    for cid, hotel in zip(ids, ("1234567", "1234568"), strict=True):
        sealed = sealed_configs(db_session, cid)
        config = effective_config(sealed.channel, sealed.account)
        assert config.hotel_id == hotel and config.api_key.get_secret_value() == KEY
    # New credentials on the account reach every hotel at once.
    resp = client.patch(f"/api/partner-accounts/{account['id']}",
                        json={"config": {"apiSecret": "rotated-SECRET-9876"}},
                        headers=admin_headers)
    assert resp.status_code == 200, resp.text
    db_session.expire_all()
    for cid in ids:
        sealed = sealed_configs(db_session, cid)
        config = effective_config(sealed.channel, sealed.account)
        assert config.api_secret.get_secret_value() == "rotated-SECRET-9876"
        assert config.api_key.get_secret_value() == KEY
    listed = client.get("/api/partner-accounts", headers=viewer_headers)
    assert listed.status_code == 200 and [a["id"] for a in listed.json()] == [account["id"]]
    for text in (listed.text, json.dumps(account), client.get("/api/audit-logs",
                                                               headers=admin_headers).text):
        assert KEY not in text and SECRET not in text and "rotated-SECRET" not in text
    row = db_session.get(PartnerAccount, account["id"])
    assert row.config_encrypted.startswith("v1:")


def test_wrong_combinations_are_clear_4xx(client, admin_headers, db_session):  # type: ignore[no-untyped-def]
    account = _account(client, admin_headers)
    # Credentials on a channel of an account: they belong to the account.
    resp = _channel(client, admin_headers, account["id"], "1", config={"hotelId": "1",
                                                                       "apiKey": "x"})
    assert "belong to partner account" in assert_error(resp, 422, "validation_error")["message"]
    # An account of another partner.
    resp = _channel(client, admin_headers, account["id"], "1", channelName="agoda")
    assert "not agoda" in assert_error(resp, 422, "validation_error")["message"]
    assert_error(_channel(client, admin_headers, 999999, "1"), 422, "validation_error")
    # Channel fields on an account.
    resp = client.post("/api/partner-accounts", json={**ACCOUNT, "name": "other",
                                                      "config": {"hotelId": "1"}},
                       headers=admin_headers)
    assert "belong to its channels" in assert_error(resp, 422, "validation_error")["message"]
    assert_error(client.post("/api/partner-accounts", json=ACCOUNT, headers=admin_headers),
                 409, "conflict")
    # An account in use is not deleted.
    assert _channel(client, admin_headers, account["id"], "2").status_code == 201
    assert_error(client.delete(f"/api/partner-accounts/{account['id']}",
                               headers=admin_headers), 409, "conflict")
    assert db_session.query(Channel).filter_by(account_id=account["id"]).count() == 1
    assert_error(client.get("/api/partner-accounts/424242", headers=admin_headers), 404,
                 "not_found")


def test_attaching_a_channel_moves_its_credentials_to_the_account(
        client, admin_headers, db_session):  # type: ignore[no-untyped-def]
    account = _account(client, admin_headers)
    own = client.post("/api/channels", headers=admin_headers, json={
        "name": "standalone", "channelName": "booking.com",
        "config": {"apiKey": "old-KEY-000000000", "apiSecret": "old-secret", "hotelId": "77"}})
    assert own.status_code == 201
    resp = client.patch(f"/api/channels/{own.json()['id']}", headers=admin_headers,
                        json={"accountId": account["id"]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["accountId"] == account["id"] and body["config"]["apiKey"] is None
    assert body["config"]["hotelId"] == "77"
    sealed = sealed_configs(db_session, own.json()["id"])
    assert effective_config(sealed.channel, None).api_key is None
    assert effective_config(sealed.channel, sealed.account).api_key.get_secret_value() == KEY


def test_a_property_scoped_key_sees_no_account(client, admin_headers, db_session):  # type: ignore[no-untyped-def]
    account = _account(client, admin_headers)
    prop = make_property(db_session, "SCP")
    _, key = create_api_key(db_session, "scoped-admin", "admin", [prop.id])
    db_session.commit()
    scoped = {"X-API-Key": key}
    for resp in (client.get("/api/partner-accounts", headers=scoped),
                 client.get(f"/api/partner-accounts/{account['id']}", headers=scoped),
                 client.get(f"/api/partner-accounts/{account['id']}/unroutable", headers=scoped),
                 client.post("/api/partner-accounts", json={**ACCOUNT, "name": "x"},
                             headers=scoped)):
        assert_error(resp, 403, "outside_key_scope")


def test_unroutable_reservations_are_listed_for_operators(client, admin_headers, viewer_headers,
                                                          db_session):  # type: ignore[no-untyped-def]
    from datetime import date

    from db.repositories.accounts import Unroutable, record_unroutable

    account = _account(client, admin_headers)
    item = Unroutable("9999999", "4100000001", "new", date(2026, 12, 24), date(2026, 12, 26))
    record_unroutable(db_session, account["id"], [item])
    record_unroutable(db_session, account["id"], [item])  # seen again next minute
    db_session.commit()
    resp = client.get(f"/api/partner-accounts/{account['id']}/unroutable",
                      headers=viewer_headers)
    assert resp.status_code == 200, resp.text
    (row,) = resp.json()
    assert row["hotelCode"] == "9999999" and row["externalId"] == "4100000001"
    assert row["timesSeen"] == 2 and row["checkIn"] == "2026-12-24"
