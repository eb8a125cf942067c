"""Initial schema: PMS core, channels, sync logs, backups, queue, audit, settings, API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 04:31:00.863908

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("revoked_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('viewer', 'operator', 'admin')", name=op.f("ck_api_keys_role_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("entity_type", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_logs")),
    )
    op.create_index("ix_audit_logs_at", "audit_logs", ["at"], unique=False)
    op.create_index(
        "ix_audit_logs_entity", "audit_logs", ["entity_type", "entity_id"], unique=False
    )
    op.create_table(
        "data_sync_queue",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("entity_type", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=20), nullable=False),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "status", sa.String(length=20), server_default=sa.text("'pending'"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("3"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "next_attempt_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("processed_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')",
            name=op.f("ck_data_sync_queue_status_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_sync_queue")),
    )
    op.create_index(
        "ix_data_sync_queue_entity", "data_sync_queue", ["entity_type", "entity_id"], unique=False
    )
    op.create_index(
        "ix_data_sync_queue_ready",
        "data_sync_queue",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_data_sync_queue_status", "data_sync_queue", ["status"], unique=False)
    op.create_table(
        "guests",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=50), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guests")),
    )
    op.create_index(op.f("ix_guests_email"), "guests", ["email"], unique=False)
    op.create_index("ix_guests_name", "guests", ["last_name", "first_name"], unique=False)
    op.create_table(
        "properties",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "timezone", sa.String(length=64), server_default=sa.text("'UTC'"), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), server_default=sa.text("'EUR'"), nullable=False),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_properties")),
        sa.UniqueConstraint("code", name=op.f("uq_properties_code")),
    )
    op.create_table(
        "system_backups",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "backup_type", sa.String(length=20), server_default=sa.text("'full'"), nullable=False
        ),
        sa.Column(
            "status", sa.String(length=20), server_default=sa.text("'running'"), nullable=False
        ),
        sa.Column("file_path", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("flow_run_id", sa.UUID(), nullable=True),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["system_backups.id"],
            name=op.f("fk_system_backups_parent_id_system_backups"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_backups")),
    )
    op.create_index("ix_system_backups_created_at", "system_backups", ["created_at"], unique=False)
    op.create_index("ix_system_backups_status", "system_backups", ["status"], unique=False)
    op.create_table(
        "system_settings",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_system_settings")),
    )
    op.create_table(
        "channels",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("property_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("channel_name", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("config_encrypted", sa.Text(), nullable=False),
        sa.Column(
            "config_public",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "last_successful_sync",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "channel_name IN ('booking.com', 'agoda', 'expedia', 'airbnb')",
            name=op.f("ck_channels_channel_name_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_channels_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("name", name=op.f("uq_channels_name")),
    )
    op.create_index(op.f("ix_channels_channel_name"), "channels", ["channel_name"], unique=False)
    op.create_index(op.f("ix_channels_property_id"), "channels", ["property_id"], unique=False)
    op.create_table(
        "room_types",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("property_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("max_occupancy", sa.Integer(), server_default=sa.text("2"), nullable=False),
        sa.Column("total_units", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_room_types_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_room_types")),
        sa.UniqueConstraint("property_id", "code", name=op.f("uq_room_types_property_id_code")),
    )
    op.create_table(
        "channel_room_mappings",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("room_type_id", sa.BigInteger(), nullable=False),
        sa.Column("partner_room_code", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_room_mappings_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_type_id"],
            ["room_types.id"],
            name=op.f("fk_channel_room_mappings_room_type_id_room_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_room_mappings")),
        sa.UniqueConstraint(
            "channel_id",
            "partner_room_code",
            name=op.f("uq_channel_room_mappings_channel_id_partner_room_code"),
        ),
        sa.UniqueConstraint(
            "channel_id",
            "room_type_id",
            name=op.f("uq_channel_room_mappings_channel_id_room_type_id"),
        ),
    )
    op.create_index(
        op.f("ix_channel_room_mappings_room_type_id"),
        "channel_room_mappings",
        ["room_type_id"],
        unique=False,
    )
    op.create_table(
        "channel_sync_logs",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column(
            "status", sa.String(length=20), server_default=sa.text("'running'"), nullable=False
        ),
        sa.Column("records_processed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("records_success", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("records_failed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "error_messages",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "started_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("flow_run_id", sa.UUID(), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_sync_logs_channel_id_channels"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_sync_logs")),
    )
    op.create_index(
        "ix_channel_sync_logs_channel_started",
        "channel_sync_logs",
        ["channel_id", "started_at"],
        unique=False,
    )
    op.create_index(
        "ix_channel_sync_logs_operation", "channel_sync_logs", ["operation"], unique=False
    )
    op.create_index(
        "ix_channel_sync_logs_started_at", "channel_sync_logs", ["started_at"], unique=False
    )
    op.create_index("ix_channel_sync_logs_status", "channel_sync_logs", ["status"], unique=False)
    op.create_table(
        "inventory",
        sa.Column("room_type_id", sa.BigInteger(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("total", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("sold", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("held", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("stop_sell", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("held >= 0", name=op.f("ck_inventory_held_nonnegative")),
        sa.CheckConstraint("sold >= 0", name=op.f("ck_inventory_sold_nonnegative")),
        sa.CheckConstraint("total >= 0", name=op.f("ck_inventory_total_nonnegative")),
        sa.ForeignKeyConstraint(
            ["room_type_id"],
            ["room_types.id"],
            name=op.f("fk_inventory_room_type_id_room_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("room_type_id", "date", name=op.f("pk_inventory")),
    )
    op.create_index("ix_inventory_date", "inventory", ["date"], unique=False)
    op.create_table(
        "rate_plans",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("property_id", sa.BigInteger(), nullable=False),
        sa.Column("room_type_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default=sa.text("'EUR'"), nullable=False),
        sa.Column("meal_plan", sa.String(length=32), nullable=True),
        sa.Column("refundable", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_rate_plans_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_type_id"],
            ["room_types.id"],
            name=op.f("fk_rate_plans_room_type_id_room_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_plans")),
        sa.UniqueConstraint("room_type_id", "code", name=op.f("uq_rate_plans_room_type_id_code")),
    )
    op.create_index(op.f("ix_rate_plans_property_id"), "rate_plans", ["property_id"], unique=False)
    op.create_table(
        "rooms",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("property_id", sa.BigInteger(), nullable=False),
        sa.Column("room_type_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("floor", sa.Integer(), nullable=True),
        sa.Column(
            "status", sa.String(length=20), server_default=sa.text("'clean'"), nullable=False
        ),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_rooms_property_id_properties"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_type_id"],
            ["room_types.id"],
            name=op.f("fk_rooms_room_type_id_room_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rooms")),
        sa.UniqueConstraint("property_id", "number", name=op.f("uq_rooms_property_id_number")),
    )
    op.create_index(op.f("ix_rooms_room_type_id"), "rooms", ["room_type_id"], unique=False)
    op.create_table(
        "channel_rate_mappings",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("rate_plan_id", sa.BigInteger(), nullable=False),
        sa.Column("partner_room_code", sa.String(length=64), nullable=False),
        sa.Column("partner_rate_code", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_rate_mappings_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rate_plan_id"],
            ["rate_plans.id"],
            name=op.f("fk_channel_rate_mappings_rate_plan_id_rate_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_rate_mappings")),
        sa.UniqueConstraint(
            "channel_id",
            "partner_room_code",
            "partner_rate_code",
            name=op.f("uq_channel_rate_mappings_channel_id_partner_room_code_partner_rate_code"),
        ),
        sa.UniqueConstraint(
            "channel_id",
            "rate_plan_id",
            name=op.f("uq_channel_rate_mappings_channel_id_rate_plan_id"),
        ),
    )
    op.create_index(
        op.f("ix_channel_rate_mappings_rate_plan_id"),
        "channel_rate_mappings",
        ["rate_plan_id"],
        unique=False,
    )
    op.create_table(
        "rates",
        sa.Column("rate_plan_id", sa.BigInteger(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default=sa.text("'EUR'"), nullable=False),
        sa.Column("min_los", sa.Integer(), nullable=True),
        sa.Column("max_los", sa.Integer(), nullable=True),
        sa.Column(
            "closed_to_arrival", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column(
            "closed_to_departure", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("closed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_rates_amount_nonnegative")),
        sa.CheckConstraint(
            "max_los IS NULL OR min_los IS NULL OR max_los >= min_los",
            name=op.f("ck_rates_los_order"),
        ),
        sa.ForeignKeyConstraint(
            ["rate_plan_id"],
            ["rate_plans.id"],
            name=op.f("fk_rates_rate_plan_id_rate_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("rate_plan_id", "date", name=op.f("pk_rates")),
    )
    op.create_index("ix_rates_date", "rates", ["date"], unique=False)
    op.create_table(
        "reservations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("property_id", sa.BigInteger(), nullable=False),
        sa.Column("guest_id", sa.BigInteger(), nullable=False),
        sa.Column("room_type_id", sa.BigInteger(), nullable=True),
        sa.Column("room_id", sa.BigInteger(), nullable=True),
        sa.Column("rate_plan_id", sa.BigInteger(), nullable=True),
        sa.Column("confirmation_code", sa.String(length=64), nullable=True),
        sa.Column("check_in", sa.Date(), nullable=False),
        sa.Column("check_out", sa.Date(), nullable=False),
        sa.Column("adults", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("children", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "amount", sa.Numeric(precision=12, scale=2), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), server_default=sa.text("'EUR'"), nullable=False),
        sa.Column(
            "status", sa.String(length=20), server_default=sa.text("'confirmed'"), nullable=False
        ),
        sa.Column("source_channel", sa.String(length=32), nullable=True),
        sa.Column("overbooked", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'cancelled', 'no_show', 'checked_in', 'checked_out')",
            name=op.f("ck_reservations_status_valid"),
        ),
        sa.CheckConstraint(
            "adults >= 0 AND children >= 0", name=op.f("ck_reservations_guests_nonnegative")
        ),
        sa.CheckConstraint("check_out > check_in", name=op.f("ck_reservations_stay_order")),
        sa.ForeignKeyConstraint(
            ["guest_id"],
            ["guests.id"],
            name=op.f("fk_reservations_guest_id_guests"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["property_id"],
            ["properties.id"],
            name=op.f("fk_reservations_property_id_properties"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["rate_plan_id"],
            ["rate_plans.id"],
            name=op.f("fk_reservations_rate_plan_id_rate_plans"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_reservations_room_id_rooms"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["room_type_id"],
            ["room_types.id"],
            name=op.f("fk_reservations_room_type_id_room_types"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
        sa.UniqueConstraint("confirmation_code", name=op.f("uq_reservations_confirmation_code")),
    )
    op.create_index(op.f("ix_reservations_guest_id"), "reservations", ["guest_id"], unique=False)
    op.create_index(
        "ix_reservations_property_check_in",
        "reservations",
        ["property_id", "check_in"],
        unique=False,
    )
    op.create_index(
        "ix_reservations_room_type_stay",
        "reservations",
        ["room_type_id", "check_in", "check_out"],
        unique=False,
    )
    op.create_index(
        "ix_reservations_source_channel", "reservations", ["source_channel"], unique=False
    )
    op.create_index("ix_reservations_status", "reservations", ["status"], unique=False)
    op.create_table(
        "channel_bookings",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("reservation_id", sa.BigInteger(), nullable=True),
        sa.Column("external_booking_id", sa.String(length=128), nullable=False),
        sa.Column("revision", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column(
            "raw_payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "sync_status", sa.String(length=20), server_default=sa.text("'pending'"), nullable=False
        ),
        sa.Column("sync_error", sa.Text(), nullable=True),
        sa.Column("overbooked", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("acknowledged_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("last_synced_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_bookings_channel_id_channels"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name=op.f("fk_channel_bookings_reservation_id_reservations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_bookings")),
        sa.UniqueConstraint(
            "channel_id",
            "external_booking_id",
            name=op.f("uq_channel_bookings_channel_id_external_booking_id"),
        ),
    )
    op.create_index(
        "ix_channel_bookings_created_at", "channel_bookings", ["created_at"], unique=False
    )
    op.create_index(
        op.f("ix_channel_bookings_reservation_id"),
        "channel_bookings",
        ["reservation_id"],
        unique=False,
    )
    op.create_index("ix_channel_bookings_status", "channel_bookings", ["status"], unique=False)
    op.create_index(
        "ix_channel_bookings_sync_status", "channel_bookings", ["sync_status"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_channel_bookings_sync_status", table_name="channel_bookings")
    op.drop_index("ix_channel_bookings_status", table_name="channel_bookings")
    op.drop_index(op.f("ix_channel_bookings_reservation_id"), table_name="channel_bookings")
    op.drop_index("ix_channel_bookings_created_at", table_name="channel_bookings")
    op.drop_table("channel_bookings")
    op.drop_index("ix_reservations_status", table_name="reservations")
    op.drop_index("ix_reservations_source_channel", table_name="reservations")
    op.drop_index("ix_reservations_room_type_stay", table_name="reservations")
    op.drop_index("ix_reservations_property_check_in", table_name="reservations")
    op.drop_index(op.f("ix_reservations_guest_id"), table_name="reservations")
    op.drop_table("reservations")
    op.drop_index("ix_rates_date", table_name="rates")
    op.drop_table("rates")
    op.drop_index(op.f("ix_channel_rate_mappings_rate_plan_id"), table_name="channel_rate_mappings")
    op.drop_table("channel_rate_mappings")
    op.drop_index(op.f("ix_rooms_room_type_id"), table_name="rooms")
    op.drop_table("rooms")
    op.drop_index(op.f("ix_rate_plans_property_id"), table_name="rate_plans")
    op.drop_table("rate_plans")
    op.drop_index("ix_inventory_date", table_name="inventory")
    op.drop_table("inventory")
    op.drop_index("ix_channel_sync_logs_status", table_name="channel_sync_logs")
    op.drop_index("ix_channel_sync_logs_started_at", table_name="channel_sync_logs")
    op.drop_index("ix_channel_sync_logs_operation", table_name="channel_sync_logs")
    op.drop_index("ix_channel_sync_logs_channel_started", table_name="channel_sync_logs")
    op.drop_table("channel_sync_logs")
    op.drop_index(op.f("ix_channel_room_mappings_room_type_id"), table_name="channel_room_mappings")
    op.drop_table("channel_room_mappings")
    op.drop_table("room_types")
    op.drop_index(op.f("ix_channels_property_id"), table_name="channels")
    op.drop_index(op.f("ix_channels_channel_name"), table_name="channels")
    op.drop_table("channels")
    op.drop_table("system_settings")
    op.drop_index("ix_system_backups_status", table_name="system_backups")
    op.drop_index("ix_system_backups_created_at", table_name="system_backups")
    op.drop_table("system_backups")
    op.drop_table("properties")
    op.drop_index("ix_guests_name", table_name="guests")
    op.drop_index(op.f("ix_guests_email"), table_name="guests")
    op.drop_table("guests")
    op.drop_index("ix_data_sync_queue_status", table_name="data_sync_queue")
    op.drop_index(
        "ix_data_sync_queue_ready",
        table_name="data_sync_queue",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_data_sync_queue_entity", table_name="data_sync_queue")
    op.drop_table("data_sync_queue")
    op.drop_index("ix_audit_logs_entity", table_name="audit_logs")
    op.drop_index("ix_audit_logs_at", table_name="audit_logs")
    op.drop_table("audit_logs")
    op.drop_table("api_keys")
