"""Router helpers: 404 lookups, repository errors as API errors, audit of writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from api import audit
from api.auth import Principal
from api.errors import Conflict, NotFound, Unprocessable
from db.repositories.base import DuplicateError, InUseError, RepositoryError

M = TypeVar("M")
S = TypeVar("S", bound=BaseModel)


def get_or_404(session: Session, model: type[M], ident: Any, label: str) -> M:
    """The row with primary key `ident`, or a 404 naming it."""
    row = session.get(model, ident)
    if row is None:
        raise NotFound(f"{label} {ident} not found")
    return row


def require_ref(session: Session, model: type[M], ident: Any, label: str) -> M:
    """The row a request body refers to, or a 422 naming the missing reference."""
    row = session.get(model, ident)
    if row is None:
        raise Unprocessable(f"{label} {ident} does not exist")
    return row


@contextmanager
def repository_errors() -> Iterator[None]:
    """Duplicates and rows in use are 409; other refused writes are 422."""
    try:
        yield
    except (DuplicateError, InUseError) as exc:
        raise Conflict(exc.message) from None
    except RepositoryError as exc:
        raise Unprocessable(exc.message) from None


def audit_write(
    session: Session,
    principal: Principal,
    action: str,
    entity_type: str,
    row: Any,
    before: dict[str, Any] | None,
) -> None:
    """Record an audit row for a write on an ORM object (its state now is `after`)."""
    after = None if action == "delete" else audit.snapshot(row)
    audit.record(session, principal.actor, action, entity_type, row.id, before, after)
