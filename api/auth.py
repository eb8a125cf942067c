"""API keys: generation, hashing, lookup; roles viewer < operator < admin."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db.models import ROLES, ApiKey

KEY_PREFIX = "isk_"
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the API key's name and role."""

    key_id: int
    name: str
    role: str

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[minimum]

    @property
    def actor(self) -> str:
        return f"apikey:{self.name}"


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is safe (no dictionary to attack).
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_api_key(session: Session, name: str, role: str) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext key (shown once, never stored)."""
    if role not in ROLE_RANK:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    plaintext = generate_key()
    row = ApiKey(name=name, role=role, key_prefix=plaintext[:10], key_hash=hash_key(plaintext))
    session.add(row)
    session.flush()
    return row, plaintext


def lookup_key(session: Session, plaintext: str) -> Principal | None:
    """The principal for a presented key, or None when unknown or revoked."""
    row = session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.role).where(
            ApiKey.key_hash == hash_key(plaintext), ApiKey.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    # Touch last_used_at at most once a minute: no write on every request.
    session.execute(
        text(
            "UPDATE api_keys SET last_used_at = now() WHERE id = :id AND "
            "(last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
        ),
        {"id": row.id},
    )
    return Principal(key_id=row.id, name=row.name, role=row.role)
