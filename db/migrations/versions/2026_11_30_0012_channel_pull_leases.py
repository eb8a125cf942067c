"""Channel pull leases: which batch run pulls a channel now, shared by every worker.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 21:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "channel_pull_leases",
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("acquired_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"],
            name=op.f("fk_channel_pull_leases_channel_id_channels"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_channel_pull_leases")),
    )


def downgrade() -> None:
    op.drop_table("channel_pull_leases")
