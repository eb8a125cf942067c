"""Channel bookings keep what hotels need: amounts, payment, booker, policy, requests, rooms.

Booking-level facts the PMS works with become columns of channel_bookings; one row per
booked room goes to channel_booking_rooms (nightly prices, extras and requests as jsonb).
The masked raw payload stays for everything else. Card data: the last 4 digits at most.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 03:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(12, 2)
TZ = sa.DateTime(timezone=True)
PAYMENT_MODELS = ("ota_collect", "hotel_collect", "virtual_card", "unknown")
BOOKING_COLUMNS: list[sa.Column] = [
    sa.Column("hotel_code", sa.Text()),
    sa.Column("check_in", sa.Date()),
    sa.Column("check_out", sa.Date()),
    sa.Column("booked_at", TZ),
    sa.Column("total_amount", MONEY),
    sa.Column("amount_before_tax", MONEY),
    sa.Column("taxes", MONEY),
    sa.Column("commission", MONEY),
    sa.Column("currency", sa.String(3)),
    sa.Column("payment_model", sa.String(20)),
    sa.Column("card_type", sa.String(20)),
    sa.Column("card_last4", sa.String(4)),
    sa.Column("card_activation_date", sa.Date()),
    sa.Column("card_deactivation_date", sa.Date()),
    sa.Column("card_amount", MONEY),
    sa.Column("booker_first_name", sa.Text()),
    sa.Column("booker_last_name", sa.Text()),
    sa.Column("booker_email", sa.Text()),
    sa.Column("booker_phone", sa.Text()),
    sa.Column("booker_country", sa.String(2)),
    sa.Column("language", sa.Text()),
    sa.Column("loyalty", postgresql.ARRAY(sa.Text())),
    sa.Column("group_id", sa.String(128)),
    sa.Column("source", sa.Text()),
    sa.Column("cancel_policy", sa.Text()),
    sa.Column("cancel_penalties", postgresql.JSONB()),
    sa.Column("extras", postgresql.JSONB()),
    sa.Column("special_requests", postgresql.JSONB()),
    sa.Column("comments", sa.Text()),
]


def upgrade() -> None:
    for column in BOOKING_COLUMNS:
        op.add_column("channel_bookings", column)
    op.create_check_constraint(
        op.f("ck_channel_bookings_payment_model_valid"),
        "channel_bookings",
        f"payment_model IS NULL OR payment_model IN ({', '.join(repr(m) for m in PAYMENT_MODELS)})",
    )
    # PCI DSS: never more than the last four digits of a card.
    op.create_check_constraint(
        op.f("ck_channel_bookings_card_last4_digits"),
        "channel_bookings",
        "card_last4 ~ '^[0-9]{1,4}$'",
    )
    # Expedia splits a multi-room order into one booking per room: find them together.
    op.create_index(
        op.f("ix_channel_bookings_group"),
        "channel_bookings",
        ["channel_id", "group_id"],
        postgresql_where=sa.text("group_id IS NOT NULL"),
    )
    op.create_index(op.f("ix_channel_bookings_check_in"), "channel_bookings", ["check_in"])
    op.create_table(
        "channel_booking_rooms",
        sa.Column("channel_booking_id", sa.BigInteger(), nullable=False),
        sa.Column("room_index", sa.Integer(), nullable=False),
        sa.Column("reservation_id", sa.BigInteger()),
        sa.Column("external_room_id", sa.Text()),
        sa.Column("partner_room_type_code", sa.Text(), nullable=False),
        sa.Column("partner_rate_plan_code", sa.Text()),
        sa.Column("room_name", sa.Text()),
        sa.Column("rate_plan_name", sa.Text()),
        sa.Column("meal_plan", sa.Text()),
        sa.Column("check_in", sa.Date()),
        sa.Column("check_out", sa.Date()),
        sa.Column("adults", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.Column("children", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column(
            "child_ages",
            postgresql.ARRAY(sa.Integer()),
            nullable=False,
            server_default=sa.text("'{}'::int[]"),
        ),
        sa.Column("extra_beds", sa.Integer()),
        sa.Column("smoking", sa.Boolean()),
        sa.Column("amount", MONEY),
        sa.Column("amount_before_tax", MONEY),
        sa.Column("taxes", MONEY),
        sa.Column("commission", MONEY),
        sa.Column("currency", sa.String(3)),
        sa.Column("guest_first_name", sa.Text()),
        sa.Column("guest_last_name", sa.Text()),
        sa.Column("guest_email", sa.Text()),
        sa.Column("guest_phone", sa.Text()),
        sa.Column("guest_country", sa.String(2)),
        sa.Column(
            "nightly_prices",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
        sa.Column(
            "extras", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")
        ),
        sa.Column(
            "special_requests",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
        sa.Column("requests_note", sa.Text()),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.text("now()")),
        sa.ForeignKeyConstraint(
            ["channel_booking_id"],
            ["channel_bookings.id"],
            name=op.f("fk_channel_booking_rooms_channel_booking_id_channel_bookings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name=op.f("fk_channel_booking_rooms_reservation_id_reservations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint(
            "channel_booking_id", "room_index", name=op.f("pk_channel_booking_rooms")
        ),
    )
    op.create_index(
        op.f("ix_channel_booking_rooms_reservation_id"),
        "channel_booking_rooms",
        ["reservation_id"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_channel_booking_rooms_reservation_id"), table_name="channel_booking_rooms"
    )
    op.drop_table("channel_booking_rooms")
    op.drop_index(op.f("ix_channel_bookings_check_in"), table_name="channel_bookings")
    op.drop_index(op.f("ix_channel_bookings_group"), table_name="channel_bookings")
    op.drop_constraint(
        op.f("ck_channel_bookings_card_last4_digits"), "channel_bookings", type_="check"
    )
    op.drop_constraint(
        op.f("ck_channel_bookings_payment_model_valid"), "channel_bookings", type_="check"
    )
    for column in reversed(BOOKING_COLUMNS):
        op.drop_column("channel_bookings", column.name)
