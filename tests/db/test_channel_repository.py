"""Channel repository: encryption at rest, config updates, sync marks, code maps."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from channels.base import ChannelConfig
from db.models import ChannelRateMapping, ChannelRoomMapping, Property, RatePlan, RoomType
from db.repositories import channels as repo
from db.repositories.base import DuplicateError
from innsync.crypto import DecryptionError, derive_key

CONFIG = ChannelConfig(apiKey="key-AAAA-1234567890", apiSecret="secret-BBBB-0987654321",
                       propertyId="P1", endpoint="http://127.0.0.1:9", hotelId="H1")


def test_round_trip_and_ciphertext_in_column(db_session):
    chan = repo.create_channel(db_session, name="rt", channel_name="agoda", config=CONFIG)
    stored = db_session.execute(
        text("SELECT config_encrypted, config_public::text FROM channels WHERE id = :i"),
        {"i": chan.id}).one()
    for secret in ("key-AAAA-1234567890", "secret-BBBB-0987654321"):
        assert secret not in stored[0] and secret not in stored[1]
    loaded = repo.load_channel_config(db_session, chan.id)
    assert loaded.api_key.get_secret_value() == "key-AAAA-1234567890"
    assert loaded.api_secret.get_secret_value() == "secret-BBBB-0987654321"
    assert (loaded.property_id, loaded.endpoint, loaded.hotel_id) == ("P1", "http://127.0.0.1:9",
                                                                      "H1")
    assert chan.config_public["masked"] == {"apiKey": "****7890", "apiSecret": "****4321",
                                             "webhookSecret": None}


def test_wrong_key_fails(db_session):
    chan = repo.create_channel(db_session, name="wk", channel_name="agoda", config=CONFIG)
    with pytest.raises(DecryptionError):
        repo.open_config(chan.config_encrypted, derive_key("another-secret"))
    blob = bytearray(base64.urlsafe_b64decode(chan.config_encrypted[3:]))
    blob[20] ^= 1
    tampered = "v1:" + base64.urlsafe_b64encode(bytes(blob)).decode()
    with pytest.raises(DecryptionError):
        repo.open_config(tampered)


def test_duplicate_name_and_missing_channel(db_session):
    repo.create_channel(db_session, name="dup", channel_name="expedia", config=CONFIG)
    with pytest.raises(DuplicateError):
        repo.create_channel(db_session, name="dup", channel_name="expedia", config=CONFIG)
    with pytest.raises(repo.ChannelNotFoundError):
        repo.load_channel_config(db_session, 999_999)


def test_update_channel_config_merges(db_session):
    chan = repo.create_channel(db_session, name="up", channel_name="airbnb", config=CONFIG)
    repo.update_channel_config(db_session, chan.id, {"apiSecret": "new-secret-CCCC-1111",
                                                     "hotelId": None})
    loaded = repo.load_channel_config(db_session, chan.id)
    assert loaded.api_secret.get_secret_value() == "new-secret-CCCC-1111"
    assert loaded.api_key.get_secret_value() == "key-AAAA-1234567890"
    assert loaded.hotel_id is None and chan.config_public["hotelId"] is None
    repo.update_channel_config(db_session, chan.id, ChannelConfig(endpoint="http://x:1"))
    loaded = repo.load_channel_config(db_session, chan.id)
    assert loaded.endpoint == "http://x:1" and loaded.property_id == "P1"


def test_mark_sync_success_never_moves_backwards(db_session):
    chan = repo.create_channel(db_session, name="sy", channel_name="agoda", config=CONFIG)
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    repo.mark_sync_success(db_session, chan.id, "bookings", now)
    repo.mark_sync_success(db_session, chan.id, "bookings", now - timedelta(hours=1))
    repo.mark_sync_success(db_session, chan.id, "ari", now - timedelta(days=1))
    db_session.refresh(chan)
    assert datetime.fromisoformat(chan.last_successful_sync["bookings"]) == now
    assert datetime.fromisoformat(chan.last_successful_sync["ari"]) == now - timedelta(days=1)
    with pytest.raises(ValueError):
        repo.mark_sync_success(db_session, chan.id, "ari", datetime(2030, 1, 2))


def test_get_mappings(db_session):
    prop = Property(code="MAP", name="Map")
    db_session.add(prop)
    db_session.flush()
    rt = RoomType(property_id=prop.id, code="STD", name="Std")
    db_session.add(rt)
    db_session.flush()
    plan = RatePlan(property_id=prop.id, room_type_id=rt.id, code="BAR", name="Bar")
    db_session.add(plan)
    chan = repo.create_channel(db_session, name="mp", channel_name="booking.com", config=CONFIG)
    db_session.add_all([
        ChannelRoomMapping(channel_id=chan.id, room_type_id=rt.id, partner_room_code="R1"),
        ChannelRateMapping(channel_id=chan.id, rate_plan_id=plan.id, partner_room_code="R1",
                           partner_rate_code="T1"),
    ])
    db_session.flush()
    maps = repo.get_mappings(db_session, chan.id)
    assert maps.rooms == {rt.id: "R1"} and maps.rates == {plan.id: ("R1", "T1")}
    assert repo.get_mappings(db_session, 999_999) == repo.ChannelMappings({}, {})


def test_mask_secret():
    assert repo.mask_secret(None) is None and repo.mask_secret("") is None
    assert repo.mask_secret("12345678901") == "****"
    assert repo.mask_secret("123456789012") == "****9012"
