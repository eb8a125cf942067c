"""Channel push leases: one ARI push at a time per channel and month, across every process.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 04:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "channel_push_leases",
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("acquired_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"],
            name=op.f("fk_channel_push_leases_channel_id_channels"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", "month", name=op.f("pk_channel_push_leases")),
    )


def downgrade() -> None:
    op.drop_table("channel_push_leases")
