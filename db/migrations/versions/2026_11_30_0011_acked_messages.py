"""Digests of the partner messages acknowledged per channel booking.

A message delivered again (partners re-deliver at least once; Booking.com's revision is the
answer's TimeStamp, new on every fetch) is recognised by its content, never applied twice
and never re-applied over a later one.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 10:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "channel_bookings",
        sa.Column(
            "acked_messages",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("channel_bookings", "acked_messages")
