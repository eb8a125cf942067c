"""The real API served by uvicorn on a free port, with committed data (no test transaction):
for tests about what a second connection sees, and about the HTTP connection itself."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    admin_key: str
    engine: object


def truncate_all(session: Session) -> None:
    tables = session.execute(
        text(
            "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
    ).scalar()
    session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    session.commit()


@pytest.fixture
def live_api(engine) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """uvicorn serving create_app() (its own sessions, real commits) and a committed admin key;
    every table is emptied afterwards."""
    from api.app import create_app

    yield from serve(create_app(), engine)


def serve(app, engine) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """Serve `app` with uvicorn on a free port until the generator is closed."""
    import uvicorn

    from api.auth import create_api_key

    with Session(bind=engine) as session:
        _, admin_key = create_api_key(session, "live-admin", "admin")
        session.commit()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical",
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", admin_key, engine)
    finally:
        server.should_exit = True
        thread.join(10)
        with Session(bind=engine) as session:
            truncate_all(session)


def client(live: LiveServer, key: str | None = None) -> httpx.Client:
    """A client with its own connection pool (so its requests use another connection)."""
    headers = {"X-API-Key": key or live.admin_key}
    return httpx.Client(base_url=live.url, headers=headers, timeout=30)
