"""Indexes on reservations.room_id and reservations.rate_plan_id: deleting a room or a rate
plan (ON DELETE SET NULL) otherwise scans every reservation once per deleted row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 05:40:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_reservations_room_id"), "reservations", ["room_id"])
    op.create_index(op.f("ix_reservations_rate_plan_id"), "reservations", ["rate_plan_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reservations_rate_plan_id"), table_name="reservations")
    op.drop_index(op.f("ix_reservations_room_id"), table_name="reservations")
