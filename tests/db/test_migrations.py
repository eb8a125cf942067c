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
    "channel_rate_state", "webhook_events", "channel_booking_rooms",
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
