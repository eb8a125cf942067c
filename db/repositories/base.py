"""Shared repository helpers: typed errors, savepoint-guarded flushes, pagination."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from psycopg import errors as pg_errors
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

T = TypeVar("T")


class RepositoryError(Exception):
    """A write the database refused for a business reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DuplicateError(RepositoryError):
    """A unique constraint refused the write."""


class InUseError(RepositoryError):
    """A foreign key still points at the row being deleted."""


class InvalidDataError(RepositoryError):
    """A check constraint (or a bad reference) refused the write."""


def classify(exc: IntegrityError, what: str) -> RepositoryError:
    """Map an IntegrityError to a typed error with a message a client can act on."""
    orig = exc.orig
    constraint = getattr(getattr(orig, "diag", None), "constraint_name", None) or "a constraint"
    if isinstance(orig, pg_errors.UniqueViolation):
        return DuplicateError(f"{what} already exists ({constraint})")
    if isinstance(orig, pg_errors.ForeignKeyViolation):
        detail = getattr(getattr(orig, "diag", None), "message_detail", None) or ""
        if "is still referenced" in detail:
            return InUseError(f"{what} is still in use ({constraint})")
        return InvalidDataError(f"{what} refers to a row that does not exist ({constraint})")
    return InvalidDataError(f"{what} is not valid ({constraint})")


@contextmanager
def guarded(session: Session, what: str) -> Iterator[None]:
    """Run the block's changes in a savepoint and flush them; a constraint violation
    becomes a typed error and the session stays usable."""
    try:
        with session.begin_nested():
            yield
            session.flush()
    except IntegrityError as exc:
        raise classify(exc, what) from None


def execute_guarded(session: Session, what: str, statement: Any, params: Any = None) -> Any:
    """Execute one statement in a savepoint, mapping constraint violations like `guarded`."""
    with guarded(session, what):
        result = session.execute(statement, params)
    return result


def delete_guarded(session: Session, obj: object, what: str) -> None:
    """Delete a row; a row still referenced raises InUseError."""
    with guarded(session, what):
        session.delete(obj)


def paginate(
    session: Session, stmt: Select[tuple[T]], limit: int, offset: int
) -> tuple[Sequence[T], int]:
    """One page of `stmt` (already filtered and ordered) and the total matching rows."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.scalars(stmt.limit(limit).offset(offset)).all()
    return rows, total


def add_guarded(session: Session, obj: T, what: str) -> T:
    """Insert one ORM object (guarded flush) and return it with its id."""
    with guarded(session, what):
        session.add(obj)
    return obj


def update_guarded(session: Session, obj: T, values: dict[str, Any], what: str) -> T:
    """Set attributes on an ORM object and flush (guarded)."""
    with guarded(session, what):
        for key, value in values.items():
            setattr(obj, key, value)
    return obj
