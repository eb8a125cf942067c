"""API keys: lookup by hash, use stamps, and property scopes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from db.models import ApiKey, ApiKeyProperty, Property
from db.repositories.base import InvalidDataError


def active_key(session: Session, key_hash: str) -> ApiKey | None:
    """The unrevoked key with this hash, or None."""
    return session.scalar(
        select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )


def revoke_named(session: Session, name: str) -> int:
    """Revoke every active key with this name; how many were."""
    result = session.execute(
        update(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def touch_last_used(session: Session, key_id: int) -> None:
    """Stamp last_used_at at most once a minute (no write on every request)."""
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(
                ApiKey.last_used_at.is_(None),
                ApiKey.last_used_at < func.now() - timedelta(minutes=1),
            ),
        )
        .values(last_used_at=func.now())
        .execution_options(synchronize_session=False)
    )


def scopes_of(session: Session, key_ids: Sequence[int]) -> dict[int, list[int]]:
    """The property ids each key is scoped to (keys without scope are absent)."""
    out: dict[int, list[int]] = {}
    if not key_ids:
        return out
    rows = session.execute(
        select(ApiKeyProperty.api_key_id, ApiKeyProperty.property_id)
        .where(ApiKeyProperty.api_key_id.in_(list(key_ids)))
        .order_by(ApiKeyProperty.api_key_id, ApiKeyProperty.property_id)
    ).all()
    for key_id, property_id in rows:
        out.setdefault(key_id, []).append(property_id)
    return out


def set_scope(session: Session, key_id: int, property_ids: Iterable[int]) -> list[int]:
    """Scope a key to these properties (replacing any scope); an unknown property refuses."""
    wanted = sorted(set(property_ids))
    known = set(session.scalars(select(Property.id).where(Property.id.in_(wanted))))
    missing = [p for p in wanted if p not in known]
    if missing:
        raise InvalidDataError(f"unknown property ids: {', '.join(map(str, missing))}")
    session.execute(delete(ApiKeyProperty).where(ApiKeyProperty.api_key_id == key_id))
    if wanted:
        session.execute(
            insert(ApiKeyProperty), [{"api_key_id": key_id, "property_id": p} for p in wanted]
        )
    return wanted
