"""Migrations are the schema: up, down, up again, and the models agree with them."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from db import migrate
from db.engine import to_sqlalchemy_url
from db.models import Base
from tests.conftest import create_scratch_database, drop_database

EXPECTED_TABLES = {
    "properties", "room_types", "rooms", "rate_plans", "inventory", "rates", "guests",
    "reservations", "channels", "channel_room_mappings", "channel_rate_mappings",
    "channel_bookings", "channel_sync_logs", "system_backups", "data_sync_queue",
    "audit_logs", "system_settings", "api_keys", "channel_availability_state",
    "channel_rate_state", "webhook_events", "channel_booking_rooms", "partner_accounts",
    "unroutable_reservations",
}


def test_upgrade_downgrade_upgrade(pg_server):
    admin, _ = pg_server
    url = to_sqlalchemy_url(create_scratch_database(admin, "innsync_migr"))
    engine = create_engine(url)
    try:
        migrate.upgrade("head", url)
        assert EXPECTED_TABLES <= set(inspect(engine).get_table_names())
        assert migrate.current_revision(url) == migrate.head_revision()

        migrate.downgrade("base", url)
        engine.dispose()
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert migrate.current_revision(url) is None

        migrate.upgrade("head", url)
        engine.dispose()
        assert EXPECTED_TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
        drop_database(admin, url)


def test_models_match_migrations(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_unknown_revision_is_detected():
    assert migrate.is_known_revision(migrate.head_revision())
    assert not migrate.is_known_revision("ffffffffffff")


def test_existing_channels_move_their_credentials_to_accounts(pg_server):
    """0013: the channels of a partner that share credentials and endpoint become one
    account's connections; their credentials leave the channel; a downgrade puts them back."""
    from sqlalchemy import text

    from innsync.crypto import app_key, decrypt_json, encrypt_json

    admin, _ = pg_server
    url = to_sqlalchemy_url(create_scratch_database(admin, "innsync_acct"))
    engine = create_engine(url)
    shared = {"apiKey": "machine-1", "apiSecret": "s1", "endpoint": "http://b:1"}
    configs = {
        "hotel a": ("booking.com", {**shared, "hotelId": "111"}),
        "hotel b": ("booking.com", {**shared, "hotelId": "222"}),
        "hotel c": ("booking.com", {**shared, "apiKey": "machine-2", "hotelId": "333"}),
        "agoda a": ("agoda", {"hotelId": "9"}),  # no credentials: nothing to move
    }
    try:
        migrate.upgrade("0012", url)
        with engine.begin() as conn:
            for name, (partner, plain) in configs.items():
                conn.execute(text("INSERT INTO channels (name, channel_name, config_encrypted) "
                                  "VALUES (:n, :p, :c)"),
                             {"n": name, "p": partner, "c": encrypt_json(app_key(), plain)})
        migrate.upgrade("head", url)
        with engine.connect() as conn:
            rows = {r.name: r for r in conn.execute(text(
                "SELECT c.name, c.account_id, c.config_encrypted, a.config_encrypted AS acct "
                "FROM channels c LEFT JOIN partner_accounts a ON a.id = c.account_id"))}
            accounts = conn.execute(text("SELECT count(*) FROM partner_accounts")).scalar()
        assert accounts == 2
        assert rows["hotel a"].account_id == rows["hotel b"].account_id is not None
        assert rows["hotel c"].account_id not in (None, rows["hotel a"].account_id)
        assert rows["agoda a"].account_id is None
        a = decrypt_json(app_key(), rows["hotel a"].config_encrypted)
        assert a.get("apiKey") is None and a["hotelId"] == "111"
        assert decrypt_json(app_key(), rows["hotel c"].acct)["apiKey"] == "machine-2"
        migrate.downgrade("0012", url)
        with engine.connect() as conn:
            back = {n: decrypt_json(app_key(), c) for n, c in conn.execute(text(
                "SELECT name, config_encrypted FROM channels"))}
        for name, (_, plain) in configs.items():
            assert {k: v for k, v in back[name].items() if v is not None} == plain
    finally:
        engine.dispose()
        drop_database(admin, url)
