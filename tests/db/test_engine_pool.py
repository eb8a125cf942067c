"""The pool's liveness check: a connection idle a while is pinged and replaced when dead
(PostgreSQL restarted, a socket dropped); one checked in moments ago is not pinged."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text

import db.engine as engine_module
from db.engine import make_engine, to_libpq_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def pool(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, list[bool]]]:
    monkeypatch.setattr(engine_module, "PING_IDLE_SECONDS", 0.3)
    eng = make_engine(database_url)
    pings: list[bool] = []
    real = eng.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        try:
            alive = bool(real(dbapi_connection))  # type: ignore[arg-type]
        except Exception:
            pings.append(False)
            raise
        pings.append(alive)
        return alive

    monkeypatch.setattr(eng.dialect, "do_ping", counted)
    yield eng, pings
    eng.dispose()


def _backend_pid(eng: Engine) -> int:
    with eng.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_used_moments_ago_is_not_pinged(pool: tuple[Engine, list[bool]]) -> None:
    eng, pings = pool
    pids = {_backend_pid(eng) for _ in range(20)}
    assert len(pids) == 1 and pings == []  # one pooled connection, reused, never pinged
    time.sleep(0.4)
    assert _backend_pid(eng) in pids and pings == [True]  # idle a while: pinged, alive


def test_a_connection_that_died_while_idle_is_replaced_unseen(
        pool: tuple[Engine, list[bool]], database_url: str) -> None:
    eng, pings = pool
    dead = _backend_pid(eng)
    with psycopg.connect(to_libpq_url(database_url), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (dead,))
    time.sleep(0.4)
    # The caller gets a working connection: the ping found the old one dead, the pool
    # connected anew.
    fresh = _backend_pid(eng)
    assert fresh != dead and pings == [False]
    assert _backend_pid(eng) == fresh and pings == [False]  # reused at once: no ping
