"""Partner accounts and property connections; unroutable reservations.

A partner account (one Booking.com machine account, one Expedia EQC user, one Agoda key)
holds the credentials and the endpoint; each channel of it connects one property (its hotel
id). Existing channels move over: the channels of one partner that share credentials and
endpoint become one account's connections, their credentials leave the channel's config.
A channel whose config cannot be decrypted (another install's key) stays as it was (no
account; its own credentials keep working).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 01:00:00

"""

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = postgresql.TIMESTAMP(timezone=True)
CHANNEL_NAMES = ("booking.com", "agoda", "expedia", "airbnb")
#: The fields that belong to the account (the same as db/repositories/accounts.ACCOUNT_FIELDS
#: today; written out because a migration must not change when the code does).
ACCOUNT_FIELDS = ("apiKey", "apiSecret", "endpoint", "webhookSecret")
SECRET_FIELDS = ("apiKey", "apiSecret", "webhookSecret")
PUBLIC_FIELDS = ("propertyId", "endpoint", "hotelId")
log = logging.getLogger("alembic.runtime.migration")


def _public(plain: dict[str, Any]) -> dict[str, Any]:
    def mask(value: Any) -> str | None:
        if not value:
            return None
        return "****" + str(value)[-4:] if len(str(value)) >= 12 else "****"

    out: dict[str, Any] = {k: plain.get(k) for k in PUBLIC_FIELDS}
    out["masked"] = {k: mask(plain.get(k)) for k in SECRET_FIELDS}
    return out


def upgrade() -> None:
    names = ", ".join(repr(n) for n in CHANNEL_NAMES)
    op.create_table(
        "partner_accounts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("channel_name", sa.String(length=32), nullable=False),
        sa.Column("config_encrypted", sa.Text(), nullable=False),
        sa.Column("config_public", postgresql.JSONB(astext_type=sa.Text()),
                  server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(f"channel_name IN ({names})",
                           name=op.f("ck_partner_accounts_channel_name_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_partner_accounts_name")),
        sa.UniqueConstraint("id", "channel_name", name=op.f("uq_partner_accounts_id_channel_name")),
    )
    op.add_column("channels", sa.Column("account_id", sa.BigInteger(), nullable=True))
    op.create_index(op.f("ix_channels_account_id"), "channels", ["account_id"])
    op.create_foreign_key(
        "fk_channels_account_partner", "channels", "partner_accounts",
        ["account_id", "channel_name"], ["id", "channel_name"], ondelete="RESTRICT",
    )
    op.create_table(
        "unroutable_reservations",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("hotel_code", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("check_in", sa.Date(), nullable=True),
        sa.Column("check_out", sa.Date(), nullable=True),
        sa.Column("first_seen_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("times_seen", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["partner_accounts.id"],
            name=op.f("fk_unroutable_reservations_account_id_partner_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unroutable_reservations")),
        sa.UniqueConstraint("account_id", "hotel_code", "external_id",
                            name=op.f("uq_unroutable_reservations_account_id_hotel_code_external_id")),
    )
    op.create_index(op.f("ix_unroutable_reservations_account_id"), "unroutable_reservations",
                    ["account_id"])
    _move_credentials()


def _move_credentials() -> None:
    """Group the channels of each partner by credentials + endpoint into accounts."""
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT id, channel_name, config_encrypted FROM channels ORDER BY id")).all()
    if not rows:
        return
    from innsync.crypto import DecryptionError, app_key, decrypt_json, encrypt_json

    key = app_key()
    groups: dict[tuple[str, ...], list[tuple[int, dict[str, Any]]]] = {}
    for channel_id, partner, sealed in rows:
        try:
            plain = decrypt_json(key, sealed)
        except DecryptionError:
            log.warning("channel %s: config not readable under this key; left without an "
                        "account", channel_id)
            continue
        if not plain.get("apiKey"):
            continue  # no credentials to move (a partner that needs none, or not set yet)
        group = (partner, *(str(plain.get(f) or "") for f in ACCOUNT_FIELDS))
        groups.setdefault(group, []).append((channel_id, plain))
    counts: dict[str, int] = {}
    for group, members in groups.items():
        partner = group[0]
        counts[partner] = counts.get(partner, 0) + 1
        first = members[0][1]
        account = {f: first.get(f) for f in ACCOUNT_FIELDS}
        account_id = conn.execute(sa.text(
            "INSERT INTO partner_accounts (name, channel_name, config_encrypted, config_public) "
            "VALUES (:n, :p, :c, CAST(:pub AS jsonb)) RETURNING id"),
            {"n": f"{partner} account {counts[partner]}", "p": partner,
             "c": encrypt_json(key, account), "pub": _json(_public(account))}).scalar_one()
        for channel_id, plain in members:
            rest = {k: (None if k in ACCOUNT_FIELDS else v) for k, v in plain.items()}
            conn.execute(sa.text(
                "UPDATE channels SET account_id = :a, config_encrypted = :c, "
                "config_public = CAST(:pub AS jsonb) WHERE id = :id"),
                {"a": account_id, "c": encrypt_json(key, rest), "pub": _json(_public(rest)),
                 "id": channel_id})


def _json(value: dict[str, Any]) -> str:
    import json

    return json.dumps(value)


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT c.id, c.config_encrypted, a.config_encrypted FROM channels c "
        "JOIN partner_accounts a ON a.id = c.account_id ORDER BY c.id")).all()
    if rows:
        from innsync.crypto import app_key, decrypt_json, encrypt_json

        key = app_key()
        for channel_id, sealed, account_sealed in rows:
            account = decrypt_json(key, account_sealed)
            plain = {**decrypt_json(key, sealed),
                     **{k: v for k, v in account.items() if v is not None}}
            conn.execute(sa.text(
                "UPDATE channels SET config_encrypted = :c, config_public = CAST(:pub AS jsonb) "
                "WHERE id = :id"),
                {"c": encrypt_json(key, plain), "pub": _json(_public(plain)), "id": channel_id})
    op.drop_index(op.f("ix_unroutable_reservations_account_id"),
                  table_name="unroutable_reservations")
    op.drop_table("unroutable_reservations")
    op.drop_constraint("fk_channels_account_partner", "channels", type_="foreignkey")
    op.drop_index(op.f("ix_channels_account_id"), table_name="channels")
    op.drop_column("channels", "account_id")
    op.drop_table("partner_accounts")
