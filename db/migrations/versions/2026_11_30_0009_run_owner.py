"""Owner of a running sync log or backup (host, pid): the reaper tells a dead run from a live one.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 03:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("channel_sync_logs", "system_backups")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("host", sa.String(255), nullable=True))
        op.add_column(table, sa.Column("pid", sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "pid")
        op.drop_column(table, "host")
