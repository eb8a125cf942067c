"""Per-channel acknowledged ARI state (for deltas); reservations linked to their channel booking.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 04:35:59.672236

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "channel_availability_state",
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("room_type_id", sa.BigInteger(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("stop_sell", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "acked_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_availability_state_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_type_id"],
            ["room_types.id"],
            name=op.f("fk_channel_availability_state_room_type_id_room_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "channel_id", "room_type_id", "date", name=op.f("pk_channel_availability_state")
        ),
    )
    op.create_table(
        "channel_rate_state",
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("rate_plan_id", sa.BigInteger(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("min_los", sa.Integer(), nullable=True),
        sa.Column("max_los", sa.Integer(), nullable=True),
        sa.Column("closed_to_arrival", sa.Boolean(), nullable=False),
        sa.Column("closed_to_departure", sa.Boolean(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column(
            "acked_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_channel_rate_state_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rate_plan_id"],
            ["rate_plans.id"],
            name=op.f("fk_channel_rate_state_rate_plan_id_rate_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "channel_id", "rate_plan_id", "date", name=op.f("pk_channel_rate_state")
        ),
    )
    op.add_column("reservations", sa.Column("channel_id", sa.BigInteger(), nullable=True))
    op.add_column("reservations", sa.Column("external_ref", sa.String(length=128), nullable=True))
    op.add_column(
        "reservations",
        sa.Column("room_index", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_unique_constraint(
        op.f("uq_reservations_channel_id_external_ref_room_index"),
        "reservations",
        ["channel_id", "external_ref", "room_index"],
    )
    op.create_foreign_key(
        op.f("fk_reservations_channel_id_channels"),
        "reservations",
        "channels",
        ["channel_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_constraint(
        op.f("fk_reservations_channel_id_channels"), "reservations", type_="foreignkey"
    )
    op.drop_constraint(
        op.f("uq_reservations_channel_id_external_ref_room_index"), "reservations", type_="unique"
    )
    op.drop_column("reservations", "room_index")
    op.drop_column("reservations", "external_ref")
    op.drop_column("reservations", "channel_id")
    op.drop_table("channel_rate_state")
    op.drop_table("channel_availability_state")
