"""Shared repository helpers: typed errors, savepoint-guarded flushes, pagination."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.exc import DBAPIError
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


# SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html). PostgreSQL 18
# reports a delete blocked by an ON DELETE RESTRICT key as 23001 restrict_violation where 15
# said 23503 foreign_key_violation: both mean "still in use" when deleting.
UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"
RESTRICT_VIOLATION = "23001"
NOT_NULL_VIOLATION = "23502"
CHECK_VIOLATION = "23514"
EXCLUSION_VIOLATION = "23P01"
DATA_EXCEPTION_CLASS = "22"  # 22003 numeric out of range, 22001 too long, 22P02 bad text...
INTEGRITY_CLASS = "23"


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (SQLAlchemy-wrapped or raw psycopg), else None."""
    orig = getattr(exc, "orig", exc)
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_refused_write(exc: BaseException) -> bool:
    """A data exception (class 22) or an integrity violation (class 23): the client's fault."""
    state = sqlstate_of(exc) or ""
    return state[:2] in (DATA_EXCEPTION_CLASS, INTEGRITY_CLASS)


def classify(exc: BaseException, what: str, *, deleting: bool = False) -> RepositoryError:
    """Map a refused write to a typed error, by SQLSTATE and constraint (never by message
    text, which changes between server versions and locales). Row values are not echoed:
    they may be personal data."""
    orig = getattr(exc, "orig", exc)
    diag = getattr(orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    table = getattr(diag, "table_name", None)
    column = getattr(diag, "column_name", None)
    state = sqlstate_of(exc) or ""
    statement = str(getattr(exc, "statement", "") or "").lstrip().upper()
    deleting = deleting or statement.startswith("DELETE")
    named = f" ({constraint})" if constraint else ""
    if state == UNIQUE_VIOLATION:
        return DuplicateError(f"{what} already exists{named}")
    if state == RESTRICT_VIOLATION or (state == FOREIGN_KEY_VIOLATION and deleting):
        where = f"rows in {table} still refer to it" if table else "other rows still refer to it"
        return InUseError(f"{what} is still in use: {where}{named}")
    if state == FOREIGN_KEY_VIOLATION:
        return InvalidDataError(f"{what} refers to a row that does not exist{named}")
    if state == NOT_NULL_VIOLATION:
        field = f"{table}.{column}" if table and column else "a required value"
        return InvalidDataError(f"{what} is not valid: {field} is required")
    if state == EXCLUSION_VIOLATION:
        return DuplicateError(f"{what} conflicts with an existing row{named}")
    if state.startswith(DATA_EXCEPTION_CLASS):
        return InvalidDataError(f"{what} is not valid: a value is out of range or malformed "
                                f"(SQLSTATE {state})")
    return InvalidDataError(f"{what} is not valid{named or ' (a constraint)'}")


@contextmanager
def guarded(session: Session, what: str, *, deleting: bool = False) -> Iterator[None]:
    """Run the block's changes in a savepoint and flush them; a constraint violation or a
    data exception becomes a typed error and the session stays usable."""
    try:
        with session.begin_nested():
            yield
            session.flush()
    except DBAPIError as exc:
        if not is_refused_write(exc):
            raise
        raise classify(exc, what, deleting=deleting) from None


def execute_guarded(session: Session, what: str, statement: Any, params: Any = None) -> Any:
    """Execute one statement in a savepoint, mapping constraint violations like `guarded`."""
    with guarded(session, what):
        result = session.execute(statement, params)
    return result


def delete_guarded(session: Session, obj: object, what: str) -> None:
    """Delete a row; a row still referenced raises InUseError."""
    with guarded(session, what, deleting=True):
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
