"""Database URL resolution (configured server or embedded PostgreSQL), engine and sessions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
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


#: A pooled connection idle this long is pinged (`SELECT 1`) before it is handed out: it may
#: have died meanwhile (PostgreSQL restarted, a socket dropped), and a dead one is replaced
#: then, unseen by the caller. One checked in moments ago is handed out as it is: pinging on
#: every checkout was ~12 % of a busy pull worker's CPU (plus the round trip in PostgreSQL).
#: Should one still fail, SQLAlchemy's disconnect handling invalidates the pool and the
#: statement's error reaches the caller (the partner tasks retry).
PING_IDLE_SECONDS = 5.0
_IDLE_SINCE = "innsync_idle_since"


def make_engine(url: str) -> Engine:
    """An engine whose pool pings connections idle longer than PING_IDLE_SECONDS."""
    engine = create_engine(url, pool_size=10, max_overflow=10, future=True)

    @event.listens_for(engine, "checkin")
    def _idle_from_now(dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_IDLE_SECONDS:
            return  # just connected, or used moments ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:
            alive = False
        if not alive:
            record.info.pop(_IDLE_SINCE, None)
            # The pool drops this connection and hands out a new one (up to three tries).
            raise exc.DisconnectionError("pooled connection died while idle")

    return engine


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    return make_engine(url or database_url())


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
