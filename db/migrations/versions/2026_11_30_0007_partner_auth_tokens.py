"""Partner auth tokens shared by every process and flow run (encrypted, advisory-locked).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 03:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "partner_auth_tokens",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("channel_name", sa.String(length=50), nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("token_encrypted", sa.Text(), nullable=True),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("refreshed_at", TZ, nullable=True),
        sa.Column("retry_not_before", TZ, nullable=True),
        sa.Column("exchange_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "channel_name IN ('booking.com', 'agoda', 'expedia', 'airbnb')",
            name=op.f("ck_partner_auth_tokens_channel_name_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_auth_tokens")),
        sa.UniqueConstraint(
            "channel_name",
            "account_key",
            name=op.f("uq_partner_auth_tokens_channel_name_account_key"),
        ),
    )


def downgrade() -> None:
    op.drop_table("partner_auth_tokens")
