"""API keys: generation, hashing, lookup; roles viewer < operator < admin."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from api.errors import Forbidden
from db.models import ROLES, ApiKey
from db.repositories.api_keys import active_key, scopes_of, set_scope, touch_last_used

KEY_PREFIX = "isk_"
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the API key's name and role, and the properties it may act on
    (`property_ids` None: every property)."""

    key_id: int
    name: str
    role: str
    property_ids: frozenset[int] | None = None

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[minimum]

    @property
    def actor(self) -> str:
        return f"apikey:{self.name}"

    @property
    def scoped(self) -> bool:
        return self.property_ids is not None

    def may_act_on(self, property_id: int | None) -> bool:
        """True for an unscoped key, or a property in the key's scope (a row of no
        property is outside every scope)."""
        return self.property_ids is None or property_id in self.property_ids

    def require_property(self, property_id: int | None, what: str = "this") -> None:
        """403 unless the key may act on `property_id`."""
        if not self.may_act_on(property_id):
            raise Forbidden(
                f"{what} is outside this API key's properties", code="outside_key_scope"
            )

    def require_unscoped(self, what: str) -> None:
        """403 for a property-scoped key (for things that span every property)."""
        if self.scoped:
            raise Forbidden(
                f"{what} spans every property: a property-scoped API key may not",
                code="outside_key_scope",
            )

    def property_filter(self, requested: int | None) -> list[int] | None:
        """The properties a list shows: the requested one (403 outside the scope), else the
        key's scope, else None (every property)."""
        if requested is not None:
            self.require_property(requested, f"property {requested}")
            return [requested]
        return None if self.property_ids is None else sorted(self.property_ids)


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is safe (no dictionary to attack).
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_api_key(
    session: Session, name: str, role: str, property_ids: Iterable[int] | None = None
) -> tuple[ApiKey, str]:
    """Create a key, scoped to `property_ids` when given (None: every property); returns
    the row and the plaintext key (shown once, never stored)."""
    if role not in ROLE_RANK:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    plaintext = generate_key()
    row = ApiKey(name=name, role=role, key_prefix=plaintext[:10], key_hash=hash_key(plaintext))
    session.add(row)
    session.flush()
    if property_ids is not None:
        scope = list(property_ids)
        if not scope:
            raise ValueError("a property scope needs at least one property")
        set_scope(session, row.id, scope)
    return row, plaintext


def lookup_key(session: Session, plaintext: str) -> Principal | None:
    """The principal for a presented key, or None when unknown or revoked."""
    row = active_key(session, hash_key(plaintext))
    if row is None:
        return None
    touch_last_used(session, row.id)
    scope = scopes_of(session, [row.id]).get(row.id)
    return Principal(
        key_id=row.id,
        name=row.name,
        role=row.role,
        property_ids=frozenset(scope) if scope is not None else None,
    )
