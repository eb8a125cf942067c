"""API keys scoped to properties: a key with rows here may act on those properties only
(none: every property, as before). A scoped property cannot be deleted while the key
refers to it (RESTRICT), so a key never widens to every property by a deletion.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 04:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_key_properties",
        sa.Column(
            "api_key_id",
            sa.BigInteger(),
            sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "property_id",
            sa.BigInteger(),
            sa.ForeignKey("properties.id", ondelete="RESTRICT"),
            primary_key=True,
        ),
    )
    op.create_index("ix_api_key_properties_property_id", "api_key_properties", ["property_id"])


def downgrade() -> None:
    op.drop_index("ix_api_key_properties_property_id", table_name="api_key_properties")
    op.drop_table("api_key_properties")
