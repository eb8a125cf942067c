"""Data-sync queue: one pending item per entity and operation (coalescing), fast claims.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 05:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Before the unique index: merge duplicate pending items into the oldest one.
    op.execute("""
        DELETE FROM data_sync_queue q USING data_sync_queue keep
        WHERE q.status = 'pending' AND keep.status = 'pending'
          AND keep.entity_type = q.entity_type AND keep.entity_id = q.entity_id
          AND keep.operation = q.operation AND keep.id < q.id
    """)
    op.create_index(
        "ix_data_sync_queue_pending_entity",
        "data_sync_queue",
        ["entity_type", "entity_id", "operation"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_data_sync_queue_pending_id",
        "data_sync_queue",
        ["id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_data_sync_queue_lease",
        "data_sync_queue",
        ["lease_expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'processing'"),
    )


def downgrade() -> None:
    op.drop_index("ix_data_sync_queue_lease", table_name="data_sync_queue")
    op.drop_index("ix_data_sync_queue_pending_id", table_name="data_sync_queue")
    op.drop_index("ix_data_sync_queue_pending_entity", table_name="data_sync_queue")
