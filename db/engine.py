"""Database URL resolution (configured server or embedded PostgreSQL), engine and sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from innsync.settings import get_settings

APP_DATABASE = "innsync"


def to_sqlalchemy_url(url: str, driver: str = "psycopg") -> str:
    """Normalise postgres:// / postgresql:// URLs to an explicit SQLAlchemy driver."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"innsync needs PostgreSQL, got {parsed.get_backend_name()!r}")
    return parsed.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def to_libpq_url(url: str) -> str:
    """A plain libpq URL (for psql, pg_dump, psycopg.connect)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_url() -> str:
    """The application database URL: INNSYNC_DATABASE_URL, else the embedded cluster."""
    settings = get_settings()
    if settings.database_url is not None:
        return to_sqlalchemy_url(settings.database_url.get_secret_value())
    from db.embedded import embedded_database_url

    return to_sqlalchemy_url(embedded_database_url(APP_DATABASE))


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    return create_engine(
        url or database_url(),
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        future=True,
    )


def get_sessionmaker(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    session = get_sessionmaker(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
